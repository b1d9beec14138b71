# %% [markdown]
# ## Environment report
# Versions of everything between your code and the GPU. When something fails, this is what to paste
# into a bug report.

# %%
def environment_report():
    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "cuda_driver_supports": driver_cuda_version(),
        "driver": None,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "nccl": None,
        "torch_arch_list": torch.cuda.get_arch_list() if torch.version.cuda else [],
        "tf32_defaults": {
            "matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
        },
        "gpus": [],
    }
    try:
        if HAS_GPU and torch.distributed.is_available() and torch.distributed.is_nccl_available():
            v = torch.cuda.nccl.version()
            env["nccl"] = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    except Exception:
        pass
    for i in range(N_GPUS):
        p = torch.cuda.get_device_properties(i)
        q = nvidia_smi(
            [
                "driver_version",
                "clocks.max.sm",
                "clocks.max.mem",
                "pcie.link.gen.max",
                "pcie.link.width.max",
                "power.limit",
            ],
            i,
        )
        env["driver"] = env["driver"] or q.get("driver_version")
        env["gpus"].append(
            {
                "index": i,
                "name": p.name,
                "capability": f"{p.major}.{p.minor}",
                "memory_GiB": round(p.total_memory / 2**30, 2),
                "sms": p.multi_processor_count,
                "l2_MiB": round(getattr(p, "L2_cache_size", 0) / 2**20, 1),
                "max_sm_clock_MHz": q.get("clocks.max.sm"),
                "max_mem_clock_MHz": q.get("clocks.max.mem"),
                "pcie_max": f"Gen{q.get('pcie.link.gen.max')} x{q.get('pcie.link.width.max')}" if q else None,
                "power_limit_W": q.get("power.limit"),
            }
        )
    return env


ENV = environment_report()
RESULTS["environment"] = ENV
for k in [
    "python",
    "platform",
    "cpu_count",
    "torch",
    "cuda_runtime",
    "cuda_driver_supports",
    "driver",
    "cudnn",
    "nccl",
]:
    print(f"{k:>22}: {ENV[k]}")
print(f"{'torch built for':>22}: {' '.join(ENV['torch_arch_list']) or '(no CUDA architectures)'}")
print(f"{'TF32 defaults':>22}: {ENV['tf32_defaults']}")
if ENV["gpus"]:
    show_table(
        [
            [
                g["index"],
                g["name"],
                g["capability"],
                g["memory_GiB"],
                g["sms"],
                g["l2_MiB"],
                g["max_sm_clock_MHz"],
                g["pcie_max"],
                g["power_limit_W"],
            ]
            for g in ENV["gpus"]
        ],
        ["#", "GPU", "capability", "memory GiB", "SMs", "L2 MiB", "max SM MHz", "PCIe max", "power limit W"],
    )
else:
    print(f"\nNo GPU: {NO_GPU_REASON}")
CLOCKS_BEFORE = clocks()
RESULTS["clocks_before"] = CLOCKS_BEFORE
if CLOCKS_BEFORE:
    print("clocks before the benchmark:", CLOCKS_BEFORE)
save_results()
