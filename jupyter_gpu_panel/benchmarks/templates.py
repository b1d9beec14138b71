"""The benchmark templates: each one's title, parameters (with presets for GPU, quick GPU and CPU)
and sections, the cells of ``notebook_src/`` in order. ``notebook`` assembles them into notebooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

SRC_DIR = Path(__file__).with_name("notebook_src")
ALL_DTYPES = ["fp32", "tf32", "fp16", "bf16", "fp8"]


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    comment: str
    #: values used when the parameter is left at None: keys "gpu", "gpu_quick", "cpu"
    presets: Optional[Mapping[str, Any]] = None


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str
    filename: str
    intro: str
    params: tuple[Param, ...]
    #: cell-source names from notebook_src/, or ("md", text) for a template-specific Markdown cell
    sections: tuple[Any, ...] = field(default_factory=tuple)

    def summary(self) -> dict[str, str]:
        return {"name": self.name, "title": self.title, "description": self.description}


METHOD_MD = """\
### How this notebook measures
- **Warm-up first**: the first calls load kernels, create library handles and ramp the clocks up; they are
  run and thrown away.
- **The GPU is asynchronous**: a kernel launch returns before the work is done, so each sample is timed with
  **CUDA events** (or after `torch.cuda.synchronize()`), never with a bare `time.time()`.
- **Medians over repeats**: the median ignores the odd slow sample (another process, a clock change); the
  spread is kept in the results file.
- **Random, non-zero inputs**: zeros draw less power and run faster than real data.
- **Rotating buffers larger than L2**: small inputs reused every call stay in the L2 cache and measure the
  cache, so several input sets are cycled until together they exceed twice the L2 size.
- **Explicit TF32 flags**: float32 results depend on `torch.backends.cuda.matmul.allow_tf32` and
  `torch.backends.cudnn.allow_tf32`; each test sets them and says so.
- **Sizes that fill the chip**: an 8192 x 8192 product keeps every SM busy; a 512 one does not.
- **Compared with the card**: each figure is shown next to the card's datasheet peak and a
  measured-achievable value from the reference table embedded below (with a source per row). Unknown
  cards get the raw numbers.
"""

NO_GPU_MD = """\
No GPU? The notebook still runs to the end: it says plainly why no GPU was found (CPU-only torch build,
no driver, hidden by `CUDA_VISIBLE_DEVICES`, ...) and measures what it can on the CPU with small sizes.
"""

RESULTS_PARAM = "results_json"

BENCHMARK = Template(
    name="gpu-benchmark",
    title="GPU benchmark",
    description=(
        "Matmul TFLOP/s (fp32, tf32, fp16, bf16, fp8), device and host<->device bandwidth, "
        "training-step throughput (eager, AMP, torch.compile), largest batch, and NCCL all-reduce "
        "bus bandwidth with several GPUs, compared with the card's datasheet and measured peaks."
    ),
    filename="gpu-benchmark.ipynb",
    intro=(
        "# GPU benchmark\n"
        "Measures what this GPU delivers, correctly, and compares it with what the card should reach: "
        "matrix multiply throughput by precision, memory bandwidth, host<->device transfers, a training "
        "step, the largest batch that fits and, with several GPUs, NCCL all-reduce bandwidth and "
        "data-parallel scaling. It starts with a section on the timing mistakes behind most "
        "'my GPU is slow' reports.\n\n"
        "Set `quick = True` in the parameters cell for a shorter run (about 2 minutes on a modern GPU). "
        "Results are also written as JSON next to this notebook."
    ),
    params=(
        Param("quick", False, "True: fewer sizes and repeats (a class can run it in a couple of minutes)"),
        Param(
            "matmul_sizes",
            None,
            "n for the n x n x n products",
            {"gpu": [1024, 2048, 4096, 8192, 16384], "gpu_quick": [2048, 8192], "cpu": [64, 128, 256]},
        ),
        Param(
            "matmul_dtypes",
            None,
            "subset of " + ", ".join(ALL_DTYPES),
            {"gpu": ALL_DTYPES, "gpu_quick": ALL_DTYPES, "cpu": ["fp32", "bf16"]},
        ),
        Param(
            "repeats", None, "timed samples per test (the median is reported)", {"gpu": 20, "gpu_quick": 10, "cpu": 3}
        ),
        Param(
            "sustained_s",
            None,
            "seconds of back-to-back load for the sustained-clock test (0: skip)",
            {"gpu": 5, "gpu_quick": 3, "cpu": 0},
        ),
        Param(
            "pitfall_size",
            None,
            "n of the float32 product in the pitfalls section",
            {"gpu": 10000, "gpu_quick": 10000, "cpu": 256},
        ),
        Param(
            "pitfall_lowp_size",
            None,
            "n of the bf16/fp16 zeros-vs-random product",
            {"gpu": 8192, "gpu_quick": 8192, "cpu": 128},
        ),
        Param("copy_mib", None, "device-to-device copy size, MiB", {"gpu": 1024, "gpu_quick": 512, "cpu": 32}),
        Param("h2d_mib", None, "host<->device transfer size, MiB", {"gpu": 1024, "gpu_quick": 256, "cpu": 8}),
        Param("train_batch", None, "training batch (per GPU)", {"gpu": 256, "gpu_quick": 256, "cpu": 8}),
        Param("train_image", None, "synthetic image side, pixels", {"gpu": 64, "gpu_quick": 64, "cpu": 32}),
        Param("train_width", None, "model width (channels of the first stage)", {"gpu": 64, "gpu_quick": 64, "cpu": 8}),
        Param("train_steps", None, "timed training steps", {"gpu": 20, "gpu_quick": 10, "cpu": 3}),
        Param(
            "run_compile",
            None,
            "also time torch.compile (its first step compiles, ~1 min)",
            {"gpu": True, "gpu_quick": True, "cpu": False},
        ),
        Param(
            "find_max_batch",
            None,
            "search the largest batch that fits in GPU memory",
            {"gpu": True, "gpu_quick": True, "cpu": False},
        ),
        Param("max_batch_cap", None, "stop the batch search here", {"gpu": 65536, "gpu_quick": 16384, "cpu": 0}),
        Param("run_multi_gpu", True, "with 2+ GPUs, run the torchrun all-reduce and DDP section"),
        Param("allreduce_max_mib", None, "largest all-reduce buffer, MiB", {"gpu": 1024, "gpu_quick": 256, "cpu": 4}),
        Param(RESULTS_PARAM, "gpu-benchmark.results.json", "results file, next to the notebook"),
    ),
    sections=("preamble", "environment", "pitfalls", "matmul", "memory", "model", "training", "multigpu", "summary"),
)

HEALTH = Template(
    name="gpu-health-check",
    title="GPU health check",
    description=(
        "Under a minute: environment report (Python, torch, CUDA, driver, cuDNN, NCCL, GPUs), "
        "pass/fail checks with what to do when one fails, and one properly timed matmul, GPU vs CPU."
    ),
    filename="gpu-health-check.ipynb",
    intro=(
        "# GPU health check\n"
        "Does this machine's PyTorch see the GPU, do the versions fit together, and does a matrix "
        "product run on it at the expected speed? Run all cells (under a minute); every check says "
        "PASS, WARN or FAIL and what to do about a failure."
    ),
    params=(
        Param("matmul_size", None, "n of the GPU float32 product", {"gpu": 4096, "gpu_quick": 4096, "cpu": 512}),
        Param("cpu_matmul_size", None, "n of the CPU float32 product", {"gpu": 2048, "gpu_quick": 2048, "cpu": 512}),
        Param("repeats", None, "timed samples (the median is reported)", {"gpu": 10, "gpu_quick": 10, "cpu": 3}),
        Param(RESULTS_PARAM, "gpu-health-check.results.json", "results file, next to the notebook"),
    ),
    sections=("preamble", "environment", "checks", "health_matmul", "summary"),
)

CLASS_LAB = Template(
    name="gpu-class-lab",
    title="GPU class lab",
    description=(
        "A teaching notebook: health check and a short benchmark with explanations of what each "
        "number means, the timing pitfalls, exercises, and a results table to hand in."
    ),
    filename="gpu-class-lab.ipynb",
    intro=(
        "# GPU class lab: is this GPU working, and how fast is it?\n"
        "In this lab you will\n"
        "1. check that PyTorch, CUDA and the GPU work together;\n"
        "2. see why a naive timing of a matrix product gives wrong numbers;\n"
        "3. measure the GPU properly: matrix products in several precisions and memory bandwidth;\n"
        "4. compare your numbers with what the card should reach, and hand in a results table.\n\n"
        "Write your name in the parameters cell, then *Run All*. It takes a couple of minutes."
    ),
    params=(
        Param("student", "", "your name, printed on the hand-in table"),
        Param("quick", True, "keep True in class; False measures more sizes"),
        Param(
            "matmul_sizes",
            None,
            "n for the n x n x n products",
            {"gpu": [2048, 4096, 8192], "gpu_quick": [4096, 8192], "cpu": [128, 256]},
        ),
        Param(
            "matmul_dtypes",
            None,
            "subset of " + ", ".join(ALL_DTYPES),
            {"gpu": ["fp32", "tf32", "fp16", "bf16"], "gpu_quick": ["fp32", "tf32", "bf16"], "cpu": ["fp32", "bf16"]},
        ),
        Param("repeats", None, "timed samples per test", {"gpu": 20, "gpu_quick": 10, "cpu": 3}),
        Param(
            "sustained_s",
            None,
            "seconds of back-to-back load for the sustained-clock test (0: skip)",
            {"gpu": 3, "gpu_quick": 2, "cpu": 0},
        ),
        Param(
            "pitfall_size",
            None,
            "n of the float32 product in the pitfalls section",
            {"gpu": 10000, "gpu_quick": 8192, "cpu": 256},
        ),
        Param(
            "pitfall_lowp_size", None, "n of the zeros-vs-random product", {"gpu": 8192, "gpu_quick": 8192, "cpu": 128}
        ),
        Param("copy_mib", None, "device copy size, MiB", {"gpu": 1024, "gpu_quick": 512, "cpu": 32}),
        Param("h2d_mib", None, "host<->device transfer size, MiB", {"gpu": 512, "gpu_quick": 256, "cpu": 8}),
        Param(RESULTS_PARAM, "gpu-class-lab.results.json", "results file, next to the notebook"),
    ),
    sections=(
        "preamble",
        (
            "md",
            "## Part 1: the environment\nThe versions below must fit together: torch is built for one CUDA "
            "version (`cuda_runtime`); the driver must support at least that version "
            "(`cuda_driver_supports`); and the build must contain code for your GPU's compute capability "
            "(`torch built for` lists `sm_XY` entries).",
        ),
        "environment",
        "checks",
        (
            "md",
            "## Part 2: timing pitfalls\nRead the table below carefully: the *same* product gives wildly "
            "different numbers depending on how it is timed. Only the rows marked 'correct' and "
            "'random inputs' describe the GPU.",
        ),
        "pitfalls",
        (
            "md",
            "## Part 3: matrix products\n**FLOP/s** counts floating-point operations per second; an n x n "
            "by n x n product has 2n³ of them. Lower precision (tf32, bf16, fp16) runs on the tensor cores "
            "and is many times faster than fp32: that is why training uses mixed precision. "
            "**% of peak** compares with the datasheet; **% of achievable** with what a tuned run reaches "
            "on a healthy card of this model.",
        ),
        "matmul",
        (
            "md",
            "## Part 4: memory bandwidth\nMany operations (element-wise ops, normalisation, optimizers) are "
            "limited by how fast memory can be read and written, not by arithmetic. The host<->device "
            "figures show why data should stay on the GPU and why `pin_memory=True` in a DataLoader helps.",
        ),
        "memory",
        "summary",
        "classlab_handin",
    ),
)

TEMPLATES: dict[str, Template] = {t.name: t for t in (HEALTH, BENCHMARK, CLASS_LAB)}


def list_templates() -> list[dict[str, str]]:
    """The stable listing used by the CLI and the REST API: name, title, description."""
    return [t.summary() for t in TEMPLATES.values()]


def _kind(value: Any) -> Optional[str]:
    if isinstance(value, bool):
        return "True or False"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a dict"
    return None


def check_override(param: Param, value: Any) -> None:
    """ValueError unless ``value`` has the parameter's type (its default's, or its presets' when the
    default is None): ``-p quick=Tru e`` must not reach the notebook as the truthy string 'Tru e'."""
    examples = [param.default] if param.default is not None else list((param.presets or {}).values())
    kinds = {k for k in map(_kind, examples) if k is not None}
    if not kinds or value is None:
        return
    if _kind(value) not in kinds:
        raise ValueError(f"parameter {param.name} must be {' or '.join(sorted(kinds))}, got {value!r}")
