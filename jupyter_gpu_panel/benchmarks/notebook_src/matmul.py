# %% [markdown]
# ## Matrix multiply throughput
# TFLOP/s = 2·n³ / time for an n x n x n product. For each dtype and size: random inputs, several input
# sets rotated so together they exceed twice the L2 cache (otherwise small sizes measure the cache),
# a warm-up, then the median of `repeats` samples timed with CUDA events. TF32 is set explicitly:
# off for "fp32", on for "tf32". fp8 (e4m3, through `torch._scaled_mm`) runs only on compute
# capability 8.9 and later. Small sizes do not fill the chip; the largest sizes are the ones to compare
# with the card's peak.

# %%
DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def matmul_case(label, n):
    """Median TFLOP/s of an n³ product in `label` precision, rotating input sets beyond L2."""
    if label == "fp8":
        return fp8_case(n)
    dt = DTYPES[label]
    set_tf32(label == "tf32")
    per_set = 3 * n * n * torch.finfo(dt).bits // 8
    n_sets = int(min(16, max(1, math.ceil(2 * L2_BYTES / per_set))))
    sets = [(torch.randn(n, n, device=DEVICE, dtype=dt), torch.randn(n, n, device=DEVICE, dtype=dt),
             torch.empty(n, n, device=DEVICE, dtype=dt)) for _ in range(n_sets)]
    i = [0]

    def step():
        a, b, c = sets[i[0] % n_sets]
        i[0] += 1
        torch.matmul(a, b, out=c)

    s = time_fn(step, repeats=repeats)
    set_tf32(False)
    del sets
    return s, n_sets


def fp8_case(n):
    a = torch.randn(n, n, device=DEVICE).to(torch.float8_e4m3fn)
    # _scaled_mm wants the second operand column-major
    b = torch.randn(n, n, device=DEVICE).to(torch.float8_e4m3fn).t()
    one = torch.ones((), device=DEVICE, dtype=torch.float32)
    s = time_fn(lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16),
                repeats=repeats)
    return s, 1


def matmul_sweep():
    labels = [d for d in matmul_dtypes if d != "fp8" or FP8_NATIVE]
    if HAS_GPU:
        labels = [d for d in labels if d != "tf32" or CC >= (8, 0)]
        labels = [d for d in labels if d != "bf16" or BF16_NATIVE]
    else:
        labels = [d for d in labels if d in ("fp32", "bf16")]  # TF32/fp16 are GPU features
    skipped = [d for d in matmul_dtypes if d not in labels]
    if skipped:
        print(f"skipped on this {'GPU' if HAS_GPU else 'CPU'}: {', '.join(skipped)}")
    rows = []
    for label, n in tqdm([(l, n) for l in labels for n in matmul_sizes], desc="matmul"):
        try:
            samples, n_sets = matmul_case(label, n)
        except Exception as exc:
            rows.append({"dtype": label, "n": n, "error": f"{type(exc).__name__}: {exc}"})
            ERRORS.append({"section": f"matmul {label} {n}", "error": rows[-1]["error"]})
            free_memory()
            continue
        st = spread(samples)
        rows.append({"dtype": label, "n": n, "tflops": matmul_tflops(n, n, n, st["median"]),
                     "tflops_best": matmul_tflops(n, n, n, st["min"]), "ms": st["median"] * 1e3,
                     "input_sets": n_sets, "repeats": st["n"]})
        free_memory()
    return rows


try:
    MATMUL = matmul_sweep()
    RESULTS["matmul"] = MATMUL
    table = []
    for label, r in best_per_dtype(MATMUL).items():
        peak = REF.get(label) if REF else None
        ach = (REF.get("measured") or {}).get(f"{label}_tflops") if REF else None
        table.append([label, r["n"], fmt(r["tflops"], 1), fmt(peak, 1), fmt(percent_of(r["tflops"], peak), 0),
                      fmt(ach, 1), fmt(percent_of(r["tflops"], ach), 0)])
    show_table(table, ["dtype", "best n", "TFLOP/s (median)", "datasheet peak", "% of peak",
                       "measured achievable", "% of achievable"])
    print("all sizes:")
    show_table([[r["dtype"], r["n"], fmt(r.get("tflops"), 1), fmt(r.get("ms"), 3), r.get("input_sets"),
                 r.get("error", "")] for r in MATMUL], ["dtype", "n", "TFLOP/s", "ms/call", "input sets", "error"])
except Exception as exc:
    section_failed("matmul", exc)
save_results();
