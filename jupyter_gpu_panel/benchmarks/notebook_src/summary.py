# %% [markdown]
# ## Summary
# One table with every headline number beside the card's datasheet peak and the measured-achievable
# figure from the reference table (sources in the reference cell at the top). "Achievable" is what a
# tuned run reaches on a healthy card: within a few percent of it is good; far below points at the
# setup (clocks, power limit, PCIe slot, other processes). Clocks are read again now: a drop since the
# start means sustained load lowered them (heat or power limit).

# %%
def summary_rows():
    rows = []
    meas = (REF.get("measured") or {}) if REF else {}
    for label, r in best_per_dtype(RESULTS.get("matmul", [])).items():
        peak, ach = (REF.get(label) if REF else None), meas.get(f"{label}_tflops")
        rows.append(
            [
                f"matmul {label} (n={r['n']})",
                r["tflops"],
                "TFLOP/s",
                peak,
                percent_of(r["tflops"], peak),
                ach,
                percent_of(r["tflops"], ach),
            ]
        )
    su = RESULTS.get("matmul_sustained")
    if su:
        peak, ach = (REF.get(su["dtype"]) if REF else None), meas.get(f"{su['dtype']}_tflops")
        v = su["sustained_tflops"]
        rows.append(
            [
                f"matmul {su['dtype']} (n={su['n']}) sustained {su['seconds']} s",
                v,
                "TFLOP/s",
                peak,
                percent_of(v, peak),
                ach,
                percent_of(v, ach),
            ]
        )
    if RESULTS.get("copy"):
        v = RESULTS["copy"]["GBps"]
        peak, ach = (REF.get("mem_bw_GBps") if REF else None), meas.get("copy_GBps")
        rows.append(
            [
                f"{'device' if HAS_GPU else 'CPU'} memory copy",
                v,
                "GB/s",
                peak,
                percent_of(v, peak),
                ach,
                percent_of(v, ach),
            ]
        )
    hd = RESULTS.get("host_device") or {}
    for k in ("h2d_pinned", "d2h_pinned", "h2d_pageable", "d2h_pageable"):
        if k + "_GBps" in hd:
            rows.append(
                [
                    f"{k.replace('_', ' ')} ({hd.get('pcie_link', 'link ?')})",
                    hd[k + "_GBps"],
                    "GB/s",
                    None,
                    None,
                    None,
                    None,
                ]
            )
    for r in RESULTS.get("training", []) or []:
        if "samples_per_s" in r:
            rows.append([f"train step, {r['mode']}", r["samples_per_s"], "samples/s", None, None, None, None])
    vs = RESULTS.get("gpu_vs_cpu") or {}
    for dev in ("cpu", "gpu"):
        if dev in vs:
            peak = REF.get("fp32") if (REF and dev == "gpu") else None
            rows.append(
                [
                    f"fp32 matmul on the {dev.upper()} (n={vs[dev]['n']}, TF32 off)",
                    vs[dev]["tflops"],
                    "TFLOP/s",
                    peak,
                    percent_of(vs[dev]["tflops"], peak),
                    None,
                    None,
                ]
            )
    checks = RESULTS.get("checks")
    if checks:
        bad = [c["check"] for c in checks if c["status"] == "FAIL"]
        RESULTS["checks_failed"] = bad
    mb = RESULTS.get("max_batch")
    if mb and mb.get("max_batch"):
        rows.append(["largest AMP batch", mb["max_batch"], "samples", None, None, None, None])
    mg = RESULTS.get("multi_gpu") or {}
    if mg.get("allreduce"):
        top = max(mg["allreduce"], key=lambda r: r["bytes"])
        rows.append(
            [
                f"all-reduce busbw, {top['bytes'] / 2**20:g} MiB, {mg['world_size']} GPUs",
                top["busbw_GBps"],
                "GB/s",
                None,
                None,
                None,
                None,
            ]
        )
        eff = mg["training"].get("scaling_efficiency")
        if eff is not None:
            rows.append([f"scaling efficiency, {mg['world_size']} GPUs", eff, "ratio", None, None, None, None])
    return rows


CLOCKS_AFTER = clocks()
RESULTS["clocks_after"] = CLOCKS_AFTER
if CLOCKS_BEFORE and CLOCKS_AFTER:
    print(
        f"SM clock before {CLOCKS_BEFORE['clocks.sm']} MHz, after {CLOCKS_AFTER['clocks.sm']} MHz "
        f"(max {CLOCKS_AFTER['clocks.max.sm']}); temperature {CLOCKS_BEFORE['temperature.gpu']} -> "
        f"{CLOCKS_AFTER['temperature.gpu']} °C; clock-event reasons now {CLOCKS_AFTER['clocks_event_reasons.active']}"
    )
SUMMARY = summary_rows()
RESULTS["summary"] = [
    dict(zip(["test", "value", "unit", "datasheet", "pct_datasheet", "achievable", "pct_achievable"], r))
    for r in SUMMARY
]
title = f"{GPU_NAME}" if HAS_GPU else f"CPU only ({NO_GPU_REASON})"
print(f"Results for: {title}; reference: {REF['label'] + ' — ' + REF['source'] if REF else 'none (raw numbers)'}")
show_table(
    [
        [
            r[0],
            fmt(r[1], 2) if r[2] == "ratio" else fmt(r[1], 0) if r[2] == "samples" else fmt_sig(r[1]),
            r[2],
            fmt(r[3], 0),
            fmt(r[4], 0),
            fmt(r[5], 0),
            fmt(r[6], 0),
        ]
        for r in SUMMARY
    ],
    ["test", "value", "unit", "datasheet", "% datasheet", "achievable", "% achievable"],
)
if ERRORS:
    print(f"{len(ERRORS)} part(s) failed:", *[f"  {e['section']}: {e['error']}" for e in ERRORS], sep="\n")

if plt is not None and RESULTS.get("matmul"):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for label in dict.fromkeys(r["dtype"] for r in RESULTS["matmul"]):
        pts = [(r["n"], r["tflops"]) for r in RESULTS["matmul"] if r["dtype"] == label and "tflops" in r]
        if pts:
            axes[0].plot(*zip(*pts), marker="o", label=label)
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel("n (n x n x n product)")
    axes[0].set_ylabel("TFLOP/s (median)")
    axes[0].set_title("matmul throughput by size")
    axes[0].legend()
    pct = [(r[0], r[4]) for r in SUMMARY if r[4] is not None]
    if pct:
        axes[1].barh([p[0] for p in pct], [p[1] for p in pct])
        axes[1].axvline(100, color="k", lw=0.8)
        axes[1].set_xlabel("% of datasheet peak")
        axes[1].set_title(REF["label"] if REF else "")
    else:
        axes[1].text(0.5, 0.5, "no reference peaks for this device", ha="center", va="center")
        axes[1].axis("off")
    fig.tight_layout()
    plt.show()

save_results()
print(f"results written to {Path(results_json).resolve()} in {RESULTS['elapsed_s']:.0f} s")
