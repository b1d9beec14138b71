# %% [markdown]
# ## Matrix multiply throughput
# TFLOP/s = 2·n³ / time for an n x n x n product. For each dtype and size: random inputs, several input
# sets rotated so together they exceed twice the L2 cache (otherwise small sizes measure the cache),
# a warm-up, then the median of `repeats` samples timed with CUDA events. TF32 is set explicitly:
# off for "fp32", on for "tf32". fp8 (e4m3, through `torch._scaled_mm`) runs only on compute
# capability 8.9 and later. Small sizes do not fill the chip; the largest sizes are the ones to compare
# with the card's peak.
#
# **Burst and sustained.** Each size is timed in a short burst (about 10 warm-up calls, then the
# samples: well under a second of load), like the reference tables. A GPU under *sustained* full load
# hits its power limit and lowers its clocks, so the last test runs the largest low-precision product
# back-to-back for `sustained_s` seconds and reads the SM clock and power while it runs: the drop
# between the two is what a long training run sees.

# %%
DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def matmul_case(label, n):
    """Median TFLOP/s of an n³ product in `label` precision, rotating input sets beyond L2."""
    if label == "fp8":
        return fp8_case(n)
    dt = DTYPES[label]
    set_tf32(label == "tf32")
    per_set = 3 * n * n * torch.finfo(dt).bits // 8
    # at least 3 sets (rotating addresses, like the reference measurement), more until they exceed 2x L2,
    # fewer only when memory is short
    n_sets = int(min(16, max(3, math.ceil(2 * L2_BYTES / per_set))))
    if HAS_GPU:
        n_sets = int(max(1, min(n_sets, torch.cuda.mem_get_info()[0] // 2 // per_set)))
    sets = [
        (
            torch.randn(n, n, device=DEVICE, dtype=dt),
            torch.randn(n, n, device=DEVICE, dtype=dt),
            torch.empty(n, n, device=DEVICE, dtype=dt),
        )
        for _ in range(n_sets)
    ]
    i = [0]

    def step():
        a, b, c = sets[i[0] % n_sets]
        i[0] += 1
        torch.matmul(a, b, out=c)

    s = time_fn(step, repeats=repeats, warmup=10, warmup_s=0.0, target_s=1e-3)
    set_tf32(False)
    del sets
    return s, n_sets


def fp8_case(n):
    one = torch.ones((), device=DEVICE, dtype=torch.float32)
    # 3 rotating sets like the other dtypes; _scaled_mm wants the second operand column-major
    sets = [
        (
            torch.randn(n, n, device=DEVICE).to(torch.float8_e4m3fn),
            torch.randn(n, n, device=DEVICE).to(torch.float8_e4m3fn).t(),
        )
        for _ in range(3)
    ]
    i = [0]

    def step():
        a, b = sets[i[0] % 3]
        i[0] += 1
        torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

    s = time_fn(step, repeats=repeats, warmup=10, warmup_s=0.0, target_s=1e-3)
    del sets
    return s, 3


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
    for label, n in tqdm([(lab, n) for lab in labels for n in matmul_sizes], desc="matmul"):
        try:
            samples, n_sets = matmul_case(label, n)
        except Exception as exc:
            rows.append({"dtype": label, "n": n, "error": f"{type(exc).__name__}: {exc}"})
            ERRORS.append({"section": f"matmul {label} {n}", "error": rows[-1]["error"]})
            free_memory()
            continue
        st = spread(samples)
        rows.append(
            {
                "dtype": label,
                "n": n,
                "tflops": matmul_tflops(n, n, n, st["median"]),
                "tflops_best": matmul_tflops(n, n, n, st["min"]),
                "ms": st["median"] * 1e3,
                "input_sets": n_sets,
                "repeats": st["n"],
            }
        )
        free_memory()
    return rows


def sustained_matmul():
    """Back-to-back products for sustained_s seconds; TFLOP/s per ~50 ms window, clocks read mid-run."""
    if not HAS_GPU or not sustained_s:
        return None
    label = "bf16" if BF16_NATIVE else "fp16"
    dt, n = DTYPES[label], max(matmul_sizes)
    sets = [(torch.randn(n, n, device=DEVICE, dtype=dt), torch.randn(n, n, device=DEVICE, dtype=dt)) for _ in range(3)]
    c = torch.empty(n, n, device=DEVICE, dtype=dt)
    for i in range(10):
        torch.matmul(*sets[i % 3], out=c)
    sync()
    t = time.perf_counter()
    torch.matmul(*sets[0], out=c)
    sync()
    per_window = max(1, int(0.05 / max(time.perf_counter() - t, 1e-6)))
    windows, probe, t0 = [], None, time.perf_counter()
    while time.perf_counter() - t0 < sustained_s:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(per_window):
            torch.matmul(*sets[i % 3], out=c)
        end.record()
        end.synchronize()
        windows.append((time.perf_counter() - t0, matmul_tflops(n, n, n, start.elapsed_time(end) / 1e3 / per_window)))
        if probe is None and time.perf_counter() - t0 > sustained_s * 0.6 and shutil.which("nvidia-smi"):
            probe = subprocess.Popen(
                ["nvidia-smi", "--id=0", "--query-gpu=clocks.sm,power.draw", "--format=csv,noheader,nounits"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
    clock = power = None
    if probe is not None:
        try:
            clock, power = [v.strip() for v in probe.communicate(timeout=20)[0].strip().split(",")]
        except Exception:
            probe.kill()
    del sets, c
    free_memory()
    tail = [w[1] for w in windows[len(windows) // 2 :]]
    return {
        "dtype": label,
        "n": n,
        "seconds": sustained_s,
        "first_window_tflops": windows[0][1],
        "sustained_tflops": median(tail),
        "sm_clock_MHz_under_load": clock,
        "power_W_under_load": power,
        "windows": [[round(a, 3), round(b, 1)] for a, b in windows],
    }


try:
    MATMUL = matmul_sweep()
    RESULTS["matmul"] = MATMUL
    table = []
    for label, r in best_per_dtype(MATMUL).items():
        peak = REF.get(label) if REF else None
        ach = (REF.get("measured") or {}).get(f"{label}_tflops") if REF else None
        table.append(
            [
                label,
                r["n"],
                fmt(r["tflops"], 1),
                fmt(peak, 1),
                fmt(percent_of(r["tflops"], peak), 0),
                fmt(ach, 1),
                fmt(percent_of(r["tflops"], ach), 0),
            ]
        )
    show_table(
        table,
        [
            "dtype",
            "best n",
            "TFLOP/s (median)",
            "datasheet peak",
            "% of peak",
            "measured achievable",
            "% of achievable",
        ],
    )
    print("all sizes:")
    show_table(
        [
            [r["dtype"], r["n"], fmt(r.get("tflops"), 1), fmt(r.get("ms"), 3), r.get("input_sets"), r.get("error", "")]
            for r in MATMUL
        ],
        ["dtype", "n", "TFLOP/s", "ms/call", "input sets", "error"],
    )
except Exception as exc:
    section_failed("matmul", exc)
try:
    SUST = sustained_matmul()
    RESULTS["matmul_sustained"] = SUST
    if SUST:
        burst = next(
            (
                r["tflops"]
                for r in RESULTS.get("matmul", [])
                if r["dtype"] == SUST["dtype"] and r["n"] == SUST["n"] and "tflops" in r
            ),
            None,
        )
        print(
            f"{SUST['dtype']} n={SUST['n']}: burst {fmt(burst, 1)} TFLOP/s; after {SUST['seconds']} s of "
            f"back-to-back load {fmt(SUST['sustained_tflops'], 1)} TFLOP/s "
            f"({fmt(percent_of(SUST['sustained_tflops'], burst), 0)} % of burst) at SM clock "
            f"{SUST['sm_clock_MHz_under_load']} MHz, {SUST['power_W_under_load']} W"
        )
except Exception as exc:
    section_failed("sustained matmul", exc)
save_results()
