# %% [markdown]
# ## Multi-GPU: NCCL all-reduce bus bandwidth and scaling
# With more than one GPU, a helper script runs under `torchrun` (one process per GPU):
#
# - **all-reduce** of float32 buffers from 1 MiB up, timed over repeats after warm-up; the slowest rank
#   sets the time. As in nccl-tests, algbw = bytes / time and **busbw = algbw x 2(n-1)/n**, the traffic
#   each link carries in a ring all-reduce: comparable with the link's speed (NVLink, PCIe) for any n.
# - **data-parallel training** (DDP) of the same model with the same per-GPU batch, AMP. **Scaling
#   efficiency = throughput(N) / (N x throughput(1))**, with throughput(1) the single-GPU eager AMP figure
#   above; 1.0 would be perfect, and gradient all-reduce time is what pulls it down.

# %%
def multi_gpu():
    if N_GPUS < 2:
        print(f"multi-GPU section skipped: {N_GPUS or 'no'} GPU{'' if N_GPUS == 1 else 's'} visible (needs 2 or more)")
        return {"skipped": f"{N_GPUS} GPU(s)"}
    if not run_multi_gpu:
        print("multi-GPU section skipped: run_multi_gpu=False")
        return {"skipped": "run_multi_gpu=False"}
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    script = work / "multi_gpu_bench.py"
    script.write_text(DIST_SCRIPT)
    out_json = work / "result.json"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={N_GPUS}",
        str(script),
        "--out",
        str(out_json),
        "--max-bytes",
        str(allreduce_max_mib << 20),
        "--train-batch",
        str(train_batch),
        "--train-image",
        str(train_image),
        "--train-width",
        str(train_width),
        "--train-steps",
        str(train_steps),
    ]
    print(" ".join(cmd))
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not out_json.exists():
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        raise RuntimeError(f"torchrun exited with {proc.returncode}")
    res = json.loads(out_json.read_text())
    res["wall_s"] = time.perf_counter() - t
    single = next(
        (
            r["samples_per_s"]
            for r in RESULTS.get("training", [])
            if r["mode"].startswith("eager AMP") and "samples_per_s" in r
        ),
        None,
    )
    res["training"]["single_gpu_samples_per_s"] = single
    res["training"]["scaling_efficiency"] = scaling_efficiency(
        res["training"]["samples_per_s"], single, res["world_size"]
    )
    return res


try:
    MULTI = multi_gpu()
    RESULTS["multi_gpu"] = MULTI
    if "allreduce" in MULTI:
        print(f"{MULTI['world_size']} GPUs, results correct: {MULTI['correct']}, NCCL {MULTI.get('nccl_version')}")
        show_table(
            [
                [f"{r['bytes'] / 2**20:g} MiB", fmt(r["time_us"], 0), fmt(r["algbw_GBps"], 1), fmt(r["busbw_GBps"], 1)]
                for r in MULTI["allreduce"]
            ],
            ["size", "time µs", "algbw GB/s", "busbw GB/s"],
        )
        tr = MULTI["training"]
        print(
            f"DDP training: {tr['samples_per_s']:,.0f} samples/s on {MULTI['world_size']} GPUs; "
            f"1 GPU: {fmt(tr['single_gpu_samples_per_s'], 0)}; scaling efficiency {fmt(tr['scaling_efficiency'], 2)}"
        )
except Exception as exc:
    section_failed("multi-GPU", exc)
save_results()
