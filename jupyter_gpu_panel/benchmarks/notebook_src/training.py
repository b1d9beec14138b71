# %% [markdown]
# ## Training-step throughput
# A small ResNet-style network on synthetic 3 x `train_image` x `train_image` images, one full step
# (forward, loss, backward, SGD update) per sample, median of `train_steps` steps after warm-up:
#
# - **eager fp32**: both TF32 flags off, true float32;
# - **eager AMP**: `torch.autocast` in bf16 (fp16 with a GradScaler on cards before compute capability 8.0);
# - **torch.compile + AMP**: the same, compiled; the first step includes compilation and is shown apart.
#
# Then the **largest batch that fits**: the AMP step's batch is doubled until the GPU runs out of memory,
# then bisected. Leave some headroom: memory fragments as a real run goes on.

# %%
def train_throughput():
    rows = []
    amp = torch.bfloat16 if (BF16_NATIVE or not HAS_GPU) else torch.float16
    modes = [("eager fp32", None, False), (f"eager AMP {str(amp)[6:]}", amp, False)]
    if run_compile:
        modes.append((f"compile + AMP {str(amp)[6:]}", amp, True))
    torch.backends.cudnn.benchmark = HAS_GPU  # one fixed shape: let cuDNN pick its fastest kernels in warm-up
    x, y = synthetic_batch(train_batch, train_image, DEVICE)
    for name, dt, comp in tqdm(modes, desc="training"):
        set_tf32(False)
        try:
            model, step = make_trainer(train_width, DEVICE, dt, comp)
            t = time.perf_counter()
            step(x, y)
            sync()
            first = time.perf_counter() - t
            s = spread(time_fn(lambda step=step: step(x, y), repeats=train_steps, warmup=3, warmup_s=0.3, inner=1))
            rows.append(
                {
                    "mode": name,
                    "batch": train_batch,
                    "samples_per_s": train_batch / s["median"],
                    "step_ms": s["median"] * 1e3,
                    "first_step_s": first,
                }
            )
        except Exception as exc:
            rows.append({"mode": name, "batch": train_batch, "error": f"{type(exc).__name__}: {exc}"})
            ERRORS.append({"section": f"training {name}", "error": rows[-1]["error"]})
        finally:
            model = step = None  # noqa: F841 - drop the references so free_memory() can release them
            free_memory()
    torch.backends.cudnn.benchmark = False
    if not run_compile:
        print(
            "torch.compile skipped (run_compile=False"
            + ("; on a CPU it needs a C++ compiler and takes minutes)" if not HAS_GPU else ")")
        )
    return rows


def is_oom(exc):
    text = str(exc)
    return (
        isinstance(exc, torch.cuda.OutOfMemoryError)
        or "out of memory" in text
        or "ALLOC_FAILED" in text
        or "NOT_ENOUGH_MEMORY" in text
    )


def largest_batch():
    if not HAS_GPU:
        print("largest batch: skipped without a GPU (on a CPU the limit is RAM and swap, not worth filling)")
        return None
    amp = torch.bfloat16 if BF16_NATIVE else torch.float16
    model, step = make_trainer(train_width, DEVICE, amp, False)

    def fits(b):
        x = y = None
        try:
            x, y = synthetic_batch(b, train_image, DEVICE)
            torch.cuda.reset_peak_memory_stats()
            step(x, y)
            sync()
            return torch.cuda.max_memory_allocated()
        except Exception as exc:
            if not is_oom(exc):
                raise
            return None
        finally:
            del x, y
            model.zero_grad(set_to_none=True)
            free_memory()

    lo, lo_mem, hi = None, None, None
    b = train_batch
    bar = tqdm(desc="largest batch", total=None)
    while b <= max_batch_cap:
        mem = fits(b)
        bar.update(1)
        if mem is None:
            hi = b
            break
        lo, lo_mem = b, mem
        b *= 2
    for _ in range(4 if (lo and hi) else 0):  # bisect to within ~6 %
        mid = (lo + hi) // 2
        if mid in (lo, hi):
            break
        mem = fits(mid)
        bar.update(1)
        if mem is None:
            hi = mid
        else:
            lo, lo_mem = mid, mem
    if hasattr(bar, "close"):
        bar.close()
    model = step = None
    free_memory()
    return {
        "max_batch": lo,
        "first_oom_batch": hi,
        "cap_reached": hi is None,
        "peak_bytes": lo_mem,
        "image": train_image,
        "width": train_width,
    }


try:
    TRAIN = train_throughput()
    RESULTS["training"] = TRAIN
    base = next((r["samples_per_s"] for r in TRAIN if "samples_per_s" in r), None)
    show_table(
        [
            [
                r["mode"],
                r["batch"],
                fmt(r.get("samples_per_s"), 0),
                fmt(r.get("step_ms"), 2),
                fmt(r.get("first_step_s"), 2),
                fmt(r.get("samples_per_s") and base and r["samples_per_s"] / base, 2) + "x",
                r.get("error", ""),
            ]
            for r in TRAIN
        ],
        ["mode", "batch", "samples/s", "ms/step", "first step s", "vs fp32", "error"],
    )
except Exception as exc:
    section_failed("training", exc)
if find_max_batch:
    try:
        MAXB = largest_batch()
        RESULTS["max_batch"] = MAXB
        if MAXB:
            lim = (
                f">= {MAXB['max_batch']} (cap {max_batch_cap} reached)"
                if MAXB["cap_reached"]
                else f"{MAXB['max_batch']} fits, {MAXB['first_oom_batch']} does not"
            )
            print(
                f"largest AMP batch ({train_image}x{train_image} images): {lim}; "
                f"peak memory {MAXB['peak_bytes'] / 2**30:.1f} GiB"
            )
    except Exception as exc:
        section_failed("largest batch", exc)
save_results()
