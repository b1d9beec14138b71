# %% [markdown]
# ## Pitfalls: why the usual timing lies
# The common check times `a @ b` on two 10000 x 10000 matrices with `time.time()` around it. Four
# things go wrong, and this cell shows each on this machine:
#
# 1. **Cold**: the first call loads CUDA kernels and creates the cuBLAS handle; it times start-up, not
#    the product (the seed articles' "about 1.2 s on an A100" is about 10x what that card's fp32 peak allows).
# 2. **No synchronize**: CUDA launches are asynchronous. Without `torch.cuda.synchronize()` (or CUDA
#    events) the host clock stops when the work is *queued*, giving impossible TFLOP/s.
# 3. **Zeros**: `torch.zeros` inputs toggle fewer bits, draw less power and run at higher clocks than
#    real data; always benchmark on random non-zero inputs.
# 4. **TF32 flags**: for float32, `torch.backends.cuda.matmul.allow_tf32` is **off** by default (true
#    fp32, slow), while `torch.backends.cudnn.allow_tf32` is **on** (convolutions use TF32). A float32
#    number depends on these flags: set them explicitly and report them.

# %%
def pitfalls():
    out = {}
    n = pitfall_size
    set_tf32(False)
    a = torch.randn(n, n, device=DEVICE)
    b = torch.randn(n, n, device=DEVICE)
    sync()
    flop = 2.0 * n**3
    # 1. cold: the very first product of this shape, host clock, synchronized (start-up included)
    t = time.perf_counter()
    c = a @ b
    sync()
    out["cold_s"] = time.perf_counter() - t
    # 2. warm but without synchronize: times the launch only
    for _ in range(3):
        c = a @ b
    sync()
    t = time.perf_counter()
    c = a @ b
    out["no_sync_s"] = time.perf_counter() - t
    sync()
    # correct: warm-up, events, median (fp32 with TF32 off, then on)
    out["fp32_s"] = median(time_fn(lambda: torch.matmul(a, b, out=c), repeats=max(3, repeats // 2)))
    set_tf32(True)
    out["tf32_s"] = (
        median(time_fn(lambda: torch.matmul(a, b, out=c), repeats=max(3, repeats // 2))) if HAS_GPU else None
    )
    set_tf32(False)
    # 3. zeros vs random, with the correct method, in the fastest common dtype
    dt = torch.bfloat16 if (BF16_NATIVE or not HAS_GPU) else torch.float16 if HAS_GPU else torch.float32
    m = pitfall_lowp_size
    za, zb = torch.zeros(m, m, device=DEVICE, dtype=dt), torch.zeros(m, m, device=DEVICE, dtype=dt)
    ra, rb = torch.randn(m, m, device=DEVICE, dtype=dt), torch.randn(m, m, device=DEVICE, dtype=dt)
    zc = torch.empty(m, m, device=DEVICE, dtype=dt)
    out["lowp_dtype"] = str(dt).replace("torch.", "")
    # a few tenths of a second of back-to-back load each: enough to reach the power limit, where zeros
    # (fewer bit flips, less power) keep higher clocks; in a short burst the two can tie
    out["random_s"] = median(time_fn(lambda: torch.matmul(ra, rb, out=zc), repeats=repeats, warmup=10, warmup_s=0.3))
    out["zeros_s"] = median(time_fn(lambda: torch.matmul(za, zb, out=zc), repeats=repeats, warmup=10, warmup_s=0.3))
    del a, b, c, za, zb, ra, rb, zc
    free_memory()
    tf = lambda s: flop / s / 1e12 if s else None
    rows = [
        [
            "cold (first call, start-up included)",
            f"{out['cold_s'] * 1e3:,.1f} ms",
            fmt(tf(out["cold_s"]), 2),
            "times start-up",
        ],
        [
            "no synchronize",
            f"{out['no_sync_s'] * 1e3:,.3f} ms",
            fmt(tf(out["no_sync_s"]), 0),
            "times the launch: impossible",
        ],
        [
            "correct, fp32 (TF32 off)",
            f"{out['fp32_s'] * 1e3:,.2f} ms",
            fmt(tf(out["fp32_s"]), 2),
            "warm-up, events, median",
        ],
    ]
    if out["tf32_s"]:
        rows.append(
            [
                "correct, fp32 with TF32 on",
                f"{out['tf32_s'] * 1e3:,.2f} ms",
                fmt(tf(out["tf32_s"]), 2),
                "same call, one flag: 10 mantissa bits",
            ]
        )
    lf = 2.0 * m**3
    rows.append(
        [
            f"{out['lowp_dtype']} {m}³ on random inputs",
            f"{out['random_s'] * 1e3:,.3f} ms",
            fmt(lf / out["random_s"] / 1e12, 1),
            "the honest number",
        ]
    )
    gain = out["random_s"] / out["zeros_s"] - 1
    rows.append(
        [
            f"{out['lowp_dtype']} {m}³ on zeros",
            f"{out['zeros_s'] * 1e3:,.3f} ms",
            fmt(lf / out["zeros_s"] / 1e12, 1),
            f"{gain:+.0%} vs random: "
            + ("flatters the card" if gain > 0.02 else "no gain here (the card is not at its power limit)"),
        ]
    )
    print(f"{n} x {n} float32 matmul = {flop / 1e9:,.1f} GFLOP per call")
    if not HAS_GPU:
        print("(on a CPU the work is synchronous, so 'no synchronize' and 'correct' agree; on a GPU they do not)")
    show_table(rows, ["how it was timed", "time", "TFLOP/s", "verdict"])
    out["cold_tflops"] = tf(out["cold_s"])
    out["no_sync_tflops"] = tf(out["no_sync_s"])
    out["fp32_tflops"] = tf(out["fp32_s"])
    out["tf32_tflops"] = tf(out["tf32_s"])
    out["random_tflops"] = lf / out["random_s"] / 1e12
    out["zeros_tflops"] = lf / out["zeros_s"] / 1e12
    out["size"], out["lowp_size"] = n, m
    return out


try:
    RESULTS["pitfalls"] = pitfalls()
except Exception as exc:
    section_failed("pitfalls", exc)
save_results()
