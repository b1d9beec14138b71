# %% [markdown]
# ## Memory bandwidth
# **Device memory**: `dst.copy_(src)` on a buffer far larger than L2; a copy reads every byte once and
# writes it once, so bandwidth = 2 x bytes / time (the convention of the reference figures).
#
# **Host <-> device** over PCIe (or C2C), 'pinned' (page-locked, `pin_memory=True`: the GPU's DMA engine
# reads it directly) against 'pageable' (ordinary memory: the driver first copies it through a pinned
# staging buffer, so it is slower and less steady). The negotiated PCIe generation and width are shown
# beside the figures: a card in a Gen3 slot, or at x8, gets half or less. A Gen5 x16 link carries about
# 64 GB/s each way in theory (Gen4 about 32).

# %%
def device_copy():
    nbytes = copy_mib << 20
    src = torch.randn(nbytes // 4, device=DEVICE)
    dst = torch.empty_like(src)
    s = spread(time_fn(lambda: dst.copy_(src), repeats=repeats, inner=1 if HAS_GPU else None))
    del src, dst
    free_memory()
    gbps = 2 * nbytes / s["median"] / 1e9
    return {"bytes": nbytes, "GBps": gbps, "GBps_best": 2 * nbytes / s["min"] / 1e9, "ms": s["median"] * 1e3}


def host_device():
    if not HAS_GPU:
        return None
    nbytes = h2d_mib << 20
    out = {"bytes": nbytes}
    dev = torch.empty(nbytes, dtype=torch.uint8, device=DEVICE)
    pinned = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    pinned.random_(0, 255)
    pageable = torch.empty(nbytes, dtype=torch.uint8).random_(0, 255)
    # read the negotiated link while transfers run: idle links drop to a low generation to save power
    probe = None
    if shutil.which("nvidia-smi"):
        probe = subprocess.Popen(
            [
                "nvidia-smi",
                "--id=0",
                "--query-gpu=pcie.link.gen.current,pcie.link.width.current,pcie.link.gen.max,pcie.link.width.max",
                "--format=csv,noheader,nounits",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    cases = {
        "h2d_pinned": lambda: dev.copy_(pinned, non_blocking=True),
        "d2h_pinned": lambda: pinned.copy_(dev, non_blocking=True),
        "h2d_pageable": lambda: dev.copy_(pageable),
        "d2h_pageable": lambda: pageable.copy_(dev),
    }
    for name, fn in tqdm(list(cases.items()), desc="host<->device"):
        s = spread(time_fn(fn, repeats=max(5, repeats // 2), warmup=2, warmup_s=0.1, inner=1))
        out[name + "_GBps"] = nbytes / s["median"] / 1e9
    if probe is not None:
        try:
            text = probe.communicate(timeout=20)[0].strip().split(",")
            gen, width, gen_max, width_max = [v.strip() for v in text]
            out["pcie_link"] = f"Gen{gen} x{width}"
            out["pcie_link_max"] = f"Gen{gen_max} x{width_max}"
        except Exception:
            probe.kill()
    del dev, pinned, pageable
    free_memory()
    return out


try:
    COPY = device_copy()
    RESULTS["copy"] = COPY
    peak = REF.get("mem_bw_GBps") if REF else None
    ach = (REF.get("measured") or {}).get("copy_GBps") if REF else None
    what = "device memory" if HAS_GPU else "CPU memory"
    show_table(
        [
            [
                f"{what} copy, {copy_mib} MiB (read + write)",
                fmt(COPY["GBps"], 0),
                fmt(peak, 0),
                fmt(percent_of(COPY["GBps"], peak), 0),
                fmt(ach, 0),
                fmt(percent_of(COPY["GBps"], ach), 0),
            ]
        ],
        ["test", "GB/s (median)", "datasheet", "% of datasheet", "measured achievable", "% of achievable"],
    )
except Exception as exc:
    section_failed("device copy", exc)
try:
    H2D = host_device()
    RESULTS["host_device"] = H2D
    if H2D:
        link = f"{H2D.get('pcie_link', '?')} (max {H2D.get('pcie_link_max', '?')})"
        show_table(
            [
                [k.replace("_GBps", "").replace("_", " "), fmt(v, 1), link]
                for k, v in H2D.items()
                if k.endswith("_GBps")
            ],
            ["direction", "GB/s (median)", "PCIe link now (max)"],
        )
    else:
        print("host<->device: no GPU, nothing to measure")
except Exception as exc:
    section_failed("host<->device", exc)
save_results()
