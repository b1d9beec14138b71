# %% [markdown]
# ## One matmul, timed properly: GPU against CPU
# The same float32 product (TF32 off, so both do true fp32) on random inputs, with a warm-up and the
# median of several repeats; on the GPU, timed with CUDA events.

# %%
def gpu_vs_cpu():
    out = {}
    n_gpu = matmul_size
    n_cpu = cpu_matmul_size
    set_tf32(False)
    a, b = torch.randn(n_cpu, n_cpu), torch.randn(n_cpu, n_cpu)
    s = median(time_fn(lambda: a @ b, repeats=3, warmup=1, warmup_s=0.0, inner=1)) if not HAS_GPU else None
    if HAS_GPU:
        # time the CPU with a host clock (time_fn would use CUDA events when a GPU is present)
        a @ b
        ts = []
        for _ in range(3):
            t = time.perf_counter()
            a @ b
            ts.append(time.perf_counter() - t)
        s = median(ts)
    out["cpu"] = {
        "n": n_cpu,
        "ms": s * 1e3,
        "tflops": matmul_tflops(n_cpu, n_cpu, n_cpu, s),
        "threads": torch.get_num_threads(),
    }
    if HAS_GPU:
        ga, gb = torch.randn(n_gpu, n_gpu, device=DEVICE), torch.randn(n_gpu, n_gpu, device=DEVICE)
        gc_ = torch.empty(n_gpu, n_gpu, device=DEVICE)
        g = median(time_fn(lambda: torch.matmul(ga, gb, out=gc_), repeats=repeats))
        out["gpu"] = {"n": n_gpu, "ms": g * 1e3, "tflops": matmul_tflops(n_gpu, n_gpu, n_gpu, g)}
        out["speedup"] = out["gpu"]["tflops"] / out["cpu"]["tflops"]
        del ga, gb, gc_
        free_memory()
    return out


try:
    VS = gpu_vs_cpu()
    RESULTS["gpu_vs_cpu"] = VS
    rows = [
        ["CPU", VS["cpu"]["n"], fmt(VS["cpu"]["ms"], 2), fmt(VS["cpu"]["tflops"], 3), f"{VS['cpu']['threads']} threads"]
    ]
    if "gpu" in VS:
        peak = REF.get("fp32") if REF else None
        rows.append(
            [
                "GPU",
                VS["gpu"]["n"],
                fmt(VS["gpu"]["ms"], 2),
                fmt(VS["gpu"]["tflops"], 2),
                f"{fmt(percent_of(VS['gpu']['tflops'], peak), 0)} % of the fp32 datasheet peak; "
                f"{VS['speedup']:,.0f}x the CPU",
            ]
        )
    show_table(rows, ["device", "n", "ms per product (median)", "TFLOP/s", "note"])
except Exception as exc:
    section_failed("gpu vs cpu", exc)
save_results()
