# %% [markdown]
# ## Hand-in: your results
# Copy this table into your report (or hand in the `.results.json` file written next to this notebook).

# %%
def handin_rows():
    r = RESULTS
    rows = [
        ["student", student or "(write your name in the parameters cell)"],
        ["date (UTC)", r["created"]],
        ["GPU", GPU_NAME or f"none: {NO_GPU_REASON}"],
        ["torch / CUDA / driver", f"{torch.__version__} / {torch.version.cuda} / {r['environment'].get('driver')}"],
        ["checks failed", ", ".join(c["check"] for c in r.get("checks", []) if c["status"] == "FAIL") or "none"],
    ]
    p = r.get("pitfalls") or {}
    if p:
        rows.append(["pitfall: no-synchronize 'TFLOP/s'", fmt(p.get("no_sync_tflops"), 0)])
        rows.append(["pitfall: correct fp32 TFLOP/s", fmt(p.get("fp32_tflops"), 2)])
    for row in r.get("summary", []):
        pct = f" ({row['pct_datasheet']:.0f} % of datasheet)" if row.get("pct_datasheet") is not None else ""
        rows.append([row["test"], f"{fmt(row['value'], 1)} {row['unit']}{pct}"])
    return rows


HANDIN = handin_rows()
RESULTS["handin"] = {k: v for k, v in HANDIN}
show_table(HANDIN, ["item", "value"])
save_results()

# %% [markdown]
# ## Exercises
# 1. **Synchronize.** In the pitfalls table, the "no synchronize" row claims an impossible speed. Explain in
#    one sentence what was actually timed. Re-run that cell: does the number stay the same?
# 2. **Precision.** How many times faster is bf16 than fp32 on your GPU? Turn on
#    `torch.backends.cuda.matmul.allow_tf32 = True` in a new cell and time an fp32 product again: what
#    changed, and what do you give up (hint: TF32 keeps 10 mantissa bits)?
# 3. **Size.** Set `matmul_sizes = [256, 1024, 4096, 8192]` in the parameters cell and run all cells.
#    At which size does bf16 reach half of its best TFLOP/s? Why are small products slow?
# 4. **Bandwidth.** A float32 element-wise `x * 2` on a 1 GiB tensor reads and writes each byte once.
#    Using your copy bandwidth, predict its time, then measure it with CUDA events.
# 5. **Transfers.** Pinned host-to-device is faster than pageable. How long does it take to send one
#    batch of 256 RGB images of 224 x 224 pixels in float32 each way? What does this mean for a DataLoader?
