# %% [markdown]
# ## Health checks
# Each check says PASS, WARN, FAIL or SKIP, and what to do when it is not a PASS.

# %%
CHECKS = []


def check(name, status, detail, fix=None):
    CHECKS.append({"check": name, "status": status, "detail": detail, "fix": fix})


def run_checks():
    check("torch imports", "PASS", f"torch {torch.__version__}")
    if torch.version.cuda is None:
        check(
            "CUDA build of torch",
            "FAIL",
            "torch.version.cuda is None: a CPU-only build",
            "pip install a CUDA build of torch (pytorch.org 'Get started' picks the index URL)",
        )
    else:
        check("CUDA build of torch", "PASS", f"built for CUDA {torch.version.cuda}")
    if not HAS_GPU:
        check(
            "torch.cuda.is_available()",
            "FAIL",
            NO_GPU_REASON,
            "check nvidia-smi on the host; in a container start it with GPU access (docker --gpus all)",
        )
        return
    check("torch.cuda.is_available()", "PASS", f"{N_GPUS} GPU(s): {GPU_NAME}")
    drv = driver_cuda_version()
    if drv and torch.version.cuda:
        d, r = tuple(map(int, drv.split(".")[:2])), tuple(map(int, torch.version.cuda.split(".")[:2]))
        if d[0] < r[0]:
            check(
                "driver vs CUDA runtime",
                "FAIL",
                f"driver supports CUDA {drv}, torch needs {torch.version.cuda}",
                "update the NVIDIA driver, or install a torch build for an older CUDA",
            )
        elif d < r:
            check(
                "driver vs CUDA runtime",
                "WARN",
                f"driver supports CUDA {drv} < runtime {torch.version.cuda}"
                " (minor-version compatibility: most kernels run, some features may not)",
                "update the driver when you can",
            )
        else:
            check("driver vs CUDA runtime", "PASS", f"driver supports CUDA {drv} >= runtime {torch.version.cuda}")
    else:
        check("driver vs CUDA runtime", "SKIP", "nvidia-smi not found, cannot read the driver's CUDA version")
    arch = f"sm_{CC[0]}{CC[1]}"
    archs = torch.cuda.get_arch_list()
    native = arch in archs
    # PTX for an older architecture can be JIT-compiled for this one (slow first start, but it runs)
    ptx = any(int(m.group(1)) <= CC[0] * 10 + CC[1] for m in (re.match(r"compute_(\d+)", a) for a in archs) if m)
    try:
        x = torch.ones(1024, device=DEVICE)
        ok = float((x + 1).sum()) == 2048.0
        check(
            "kernel image for this GPU",
            "PASS" if native else "WARN",
            f"{arch} {'in' if native else 'not in'} torch's build list; a kernel ran"
            + ("" if native else " through PTX JIT (slow first start)" if ptx else ""),
            None if native else "install a torch build that lists this GPU's architecture",
        )
        if not ok:
            check(
                "simple kernel result",
                "FAIL",
                "x + 1 gave a wrong sum",
                "the GPU or driver is broken: reboot, check dmesg for Xid errors",
            )
    except Exception as exc:
        check(
            "kernel image for this GPU",
            "FAIL",
            f"{type(exc).__name__}: {exc}",
            f"'no kernel image is available' means this torch build lacks {arch}: install one that has it",
        )
        return
    try:
        a = torch.randn(512, 512, dtype=torch.float64)
        b = torch.randn(512, 512, dtype=torch.float64)
        ref = a @ b
        set_tf32(False)
        got = (a.float().to(DEVICE) @ b.float().to(DEVICE)).double().cpu()
        err = float((got - ref).norm() / ref.norm())
        check(
            "fp32 matmul matches the CPU",
            "PASS" if err < 1e-4 else "FAIL",
            f"relative error {err:.1e}",
            None if err < 1e-4 else "wrong results: check dmesg for Xid errors, try another GPU",
        )
    except Exception as exc:
        check(
            "fp32 matmul matches the CPU",
            "FAIL",
            f"{type(exc).__name__}: {exc}",
            "see the error; cuBLAS may be missing",
        )
    check(
        "bf16 support",
        "PASS" if BF16_NATIVE else "WARN",
        f"compute capability {CC[0]}.{CC[1]}; is_bf16_supported() says {torch.cuda.is_bf16_supported()}",
        None if BF16_NATIVE else "below 8.0 bf16 is emulated and slow: use fp16 with a GradScaler",
    )
    try:
        if torch.backends.cudnn.is_available():
            conv = torch.nn.Conv2d(3, 8, 3).to(DEVICE)
            conv(torch.randn(2, 3, 16, 16, device=DEVICE)).sum().item()
            check("cuDNN convolution", "PASS", f"cuDNN {torch.backends.cudnn.version()}")
        else:
            check("cuDNN convolution", "FAIL", "cuDNN not available", "install a torch build with cuDNN")
    except Exception as exc:
        check("cuDNN convolution", "FAIL", f"{type(exc).__name__}: {exc}", "cuDNN libraries may not match torch")
    try:
        free, total = torch.cuda.mem_get_info()
        want = min(1 << 30, free // 4)
        buf = torch.empty(want, dtype=torch.uint8, device=DEVICE)
        del buf
        check(
            "allocate GPU memory",
            "PASS",
            f"{want / 2**30:.2f} GiB allocated; {free / 2**30:.1f} of {total / 2**30:.1f} GiB free",
            None if free > total * 0.5 else "other processes hold GPU memory",
        )
    except Exception as exc:
        check(
            "allocate GPU memory",
            "FAIL",
            f"{type(exc).__name__}: {exc}",
            "free GPU memory (nvidia-smi shows who holds it)",
        )
    if N_GPUS > 1:
        nccl = torch.distributed.is_available() and torch.distributed.is_nccl_available()
        check(
            "NCCL for multi-GPU",
            "PASS" if nccl else "WARN",
            f"{N_GPUS} GPUs; NCCL {'available' if nccl else 'missing'}",
        )


try:
    run_checks()
except Exception as exc:
    section_failed("checks", exc)
RESULTS["checks"] = CHECKS
show_table(
    [[c["check"], c["status"], c["detail"], c["fix"] or ""] for c in CHECKS],
    ["check", "result", "detail", "what to do"],
)
n_fail = sum(c["status"] == "FAIL" for c in CHECKS)
print("All checks passed." if n_fail == 0 else f"{n_fail} check(s) failed: see 'what to do'.")
save_results()
