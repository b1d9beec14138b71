# %% [markdown]
# ## Setup
# Imports, the measuring helpers and the reference table. Everything the notebook needs is in
# this notebook: it only imports torch (and matplotlib and tqdm when they are installed).

# %%
import time

T_START = time.perf_counter()

import gc
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path

try:
    import torch
except ModuleNotFoundError:
    # say exactly what to run, for this kernel's Python and this machine (torch_install_command is
    # in the hidden cell above: a plain `pip install torch` pulls the multi-GB CUDA build anywhere)
    _how, _why = torch_install_command()
    raise SystemExit(
        "This notebook needs PyTorch, and this kernel has none. Install it into the kernel's environment:\n\n"
        f"    {_how}   # {_why}\n\nthen restart the kernel and run the notebook again."
    ) from None

try:
    try:
        import ipywidgets  # tqdm.auto needs it for notebook bars
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
except ImportError:  # progress bars are a nicety, not a requirement

    def tqdm(iterable=None, **kwargs):
        return iterable


try:
    import matplotlib
    import matplotlib.pyplot as plt
except ImportError:
    plt = None

try:
    from IPython.display import Markdown, display
except ImportError:
    Markdown = None
    display = print

ERRORS = []
RESULTS = {
    "schema": 1,
    "template": TEMPLATE_NAME,
    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    "parameters": None,  # filled in by the next cell
    "errors": ERRORS,
}


def save_results():
    """Write RESULTS beside the notebook (after every section, so a crash keeps what was measured).

    Returns nothing: sections end with this call, and a value would show as a stray Out[] line."""
    RESULTS["elapsed_s"] = round(time.perf_counter() - T_START, 2)
    path = Path(results_json)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(RESULTS, indent=1, default=str))
    tmp.replace(path)


def section_failed(name, exc):
    """Record a failed section and keep going: one broken measurement should not hide the others."""
    msg = f"{type(exc).__name__}: {exc}"
    ERRORS.append({"section": name, "error": msg})
    print(f"!! {name} failed: {msg}")
    traceback.print_exc(limit=3)
    save_results()


def why_no_gpu():
    """Explain in plain words why torch sees no CUDA GPU."""
    if getattr(torch.version, "hip", None):
        return "this is a ROCm build of torch and it found no AMD GPU"
    if torch.version.cuda is None:
        return (
            f"this torch build is CPU-only (torch {torch.__version__}, torch.version.cuda is None): "
            "install a CUDA build of torch (see pytorch.org, 'Get started')"
        )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "none", "NoDevFiles"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU from this process"
    if not shutil.which("nvidia-smi") and not Path("/dev/nvidia0").exists() and not Path("/dev/nvidiactl").exists():
        return (
            f"torch is built for CUDA {torch.version.cuda}, but no NVIDIA driver is visible "
            "(no nvidia-smi, no /dev/nvidia*): no GPU in this machine/container, or the container "
            "was started without GPU access (docker --gpus all)"
        )
    try:
        torch.cuda.init()
    except Exception as exc:  # the driver's own words are the best diagnosis
        return f"CUDA initialisation failed: {exc}"
    return "torch.cuda.is_available() is False although a driver seems present; run nvidia-smi to check it"


def nvidia_smi(fields, index=0):
    """Query nvidia-smi for one GPU; {} when it is missing (the numbers are then just not shown).

    Field names change between driver versions and one unknown name fails the whole query, so on
    failure each field is asked for alone."""
    if not shutil.which("nvidia-smi"):
        return {}

    def ask(fs):
        try:
            out = subprocess.run(
                ["nvidia-smi", f"--id={index}", "--query-gpu=" + ",".join(fs), "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=20,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode != 0 or not out.stdout.strip():
            return None
        values = [v.strip() for v in out.stdout.strip().splitlines()[0].split(",")]
        return {f: (None if v in ("[N/A]", "N/A", "[Not Supported]") else v) for f, v in zip(fs, values)}

    got = ask(fields)
    if got is None and len(fields) > 1:
        got = {}
        for f in fields:
            got.update(ask([f]) or {f: None})
    return got or {}


def driver_cuda_version():
    """Highest CUDA version the installed driver supports, from nvidia-smi's banner."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"CUDA Version:\s*([0-9.]+)", out)
    return m.group(1) if m else None


CLOCK_FIELDS = [
    "clocks.sm",
    "clocks.max.sm",
    "clocks.mem",
    "temperature.gpu",
    "power.draw",
    "power.limit",
    "clocks_event_reasons.active",
]


def clocks(index=0):
    """SM clock, temperature, power now: logged before and after load because sustained work lowers them."""
    q = nvidia_smi(CLOCK_FIELDS, index)
    if not q:
        return None
    return {"t": round(time.perf_counter() - T_START, 1), **q}


HAS_GPU = torch.cuda.is_available() and torch.cuda.device_count() > 0
DEVICE = torch.device("cuda", 0) if HAS_GPU else torch.device("cpu")
N_GPUS = torch.cuda.device_count() if HAS_GPU else 0
NO_GPU_REASON = None if HAS_GPU else why_no_gpu()
CC = torch.cuda.get_device_capability(0) if HAS_GPU else None
PROPS = torch.cuda.get_device_properties(0) if HAS_GPU else None
GPU_NAME = PROPS.name if HAS_GPU else None
REF = match_gpu(GPU_NAME, PROPS.total_memory if HAS_GPU else 0, PEAK_TABLE) if HAS_GPU else None
# bf16 is only fast from compute capability 8.0 (Ampere); is_bf16_supported() also says True on
# T4/V100 because it counts slow emulation, so decide on the capability instead.
BF16_NATIVE = bool(HAS_GPU and CC >= (8, 0))
FP8_NATIVE = bool(HAS_GPU and CC >= (8, 9) and hasattr(torch, "float8_e4m3fn"))
L2_BYTES = getattr(PROPS, "L2_cache_size", 0) or (50 << 20) if HAS_GPU else 64 << 20

if HAS_GPU:
    print(f"GPU found: {N_GPUS} x {GPU_NAME} (compute capability {CC[0]}.{CC[1]})")
    print(f"Reference row: {REF['label'] if REF else 'none for this card: raw numbers only'}")
else:
    print("NO GPU FOUND.")
    print(f"Why: {NO_GPU_REASON}")
    print("The notebook still runs to the end and measures what it can on the CPU, with small sizes.")
RESULTS["device"] = {
    "has_gpu": HAS_GPU,
    "no_gpu_reason": NO_GPU_REASON,
    "n_gpus": N_GPUS,
    "name": GPU_NAME,
    "capability": list(CC) if CC else None,
    "reference": REF["key"] if REF else None,
}


def sync():
    if HAS_GPU:
        torch.cuda.synchronize()


def set_tf32(enabled):
    """Set both TF32 switches explicitly (through the legacy flags only: mixing them with the newer
    fp32_precision API raises an error in recent torch)."""
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)


def time_fn(fn, repeats, warmup=3, warmup_s=0.2, inner=None, target_s=2e-3):
    """Seconds per call of fn: warm-up, then the median-ready list of `repeats` samples.

    Warm-up runs at least `warmup` calls and `warmup_s` seconds so lazy initialisation, autotuning and
    clock ramp-up stay out of the numbers. On the GPU each sample is bracketed by CUDA events (the GPU
    runs asynchronously; a host clock would time the launch). Each sample runs `inner` calls, chosen
    so a sample lasts about `target_s` and event overhead is negligible.
    """
    t0 = time.perf_counter()
    n = 0
    while n < warmup or time.perf_counter() - t0 < warmup_s:
        fn()
        sync()
        n += 1
    if inner is None:
        t1 = time.perf_counter()
        fn()
        sync()
        single = max(time.perf_counter() - t1, 1e-7)
        inner = int(min(200, max(1, math.ceil(target_s / single))))
    samples = []
    if HAS_GPU:
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)]
        for start, end in events:
            start.record()
            for _ in range(inner):
                fn()
            end.record()
        torch.cuda.synchronize()
        samples = [s.elapsed_time(e) / 1e3 / inner for s, e in events]
    else:
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(inner):
                fn()
            samples.append((time.perf_counter() - t) / inner)
    return samples


def spread(samples):
    """Median and the min/max around it, in the samples' units."""
    return {"median": median(samples), "min": min(samples), "max": max(samples), "n": len(samples)}


def fmt(x, nd=1):
    return "—" if x is None else f"{x:,.{nd}f}"


def fmt_sig(x):
    """A measured value with the digits it deserves: 0.017 stays 0.017, 775.3 becomes 775."""
    if x is None:
        return "—"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:,.1f}"
    return f"{x:.3g}"


def show_table(rows, headers):
    """Render a list of row lists as a Markdown table (plain text when IPython is absent)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join("—" if c is None else str(c) for c in r) + " |" for r in rows]
    text = "\n".join(lines)
    if Markdown is not None:
        display(Markdown(text))
    else:
        print(text)


def best_per_dtype(rows):
    best = {}
    for r in rows:
        if "tflops" in r and r["tflops"] > best.get(r["dtype"], {}).get("tflops", -1):
            best[r["dtype"]] = r
    return best


def free_memory():
    gc.collect()
    if HAS_GPU:
        torch.cuda.empty_cache()


save_results()
print(f"results will be written to {Path(results_json).resolve()}")
