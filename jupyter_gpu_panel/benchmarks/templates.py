"""Benchmark notebook templates, assembled with nbformat from the cell sources in ``notebook_src/``.

The cell sources are plain Python files in the "percent" format (``# %%`` starts a code cell,
``# %% [markdown]`` a Markdown cell whose lines are ``# ``-prefixed) so they can be read, linted and
syntax-checked like code; this module only orders them, writes the parameters cell and embeds the
reference table, which keeps each generated notebook self-contained (torch is its only need).
"""

from __future__ import annotations

import inspect
import json
import pprint
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Optional

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from . import peaks

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
    sections=("setup", "environment", "pitfalls", "matmul", "memory", "model", "training", "multigpu", "summary"),
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
    sections=("setup", "environment", "checks", "health_matmul", "summary"),
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
        "setup",
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


@cache
def _source_cells(name: str) -> tuple[tuple[str, str], ...]:
    """Split a percent-format file into (kind, source) cells."""
    text = (SRC_DIR / f"{name}.py").read_text(encoding="utf-8")
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            cells[-1][1].append(line)
        elif line.strip() and not line.startswith("#"):
            raise ValueError(f"{name}.py: code before the first '# %%' marker")
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        src = "\n".join(lines).strip("\n")
        if src.strip():
            out.append((kind, src))
    return tuple(out)


def _plain_source(name: str) -> str:
    """Code of a percent file as one script (Markdown cells dropped)."""
    return "\n\n".join(src for kind, src in _source_cells(name) if kind == "code")


def dist_script() -> str:
    """The torchrun helper the multi-GPU section writes to disk: the model plus the runner."""
    return (
        "import torch\n\n"
        + _plain_source("model")
        + "\n\n\n"
        + (SRC_DIR / "dist_script.py").read_text(encoding="utf-8")
    )


def _parameters_source(t: Template, values: Mapping[str, Any]) -> str:
    lines = [
        "# Parameters (papermill reads this cell: it is tagged 'parameters').",
        "# None means 'pick for this machine': the next cells choose GPU, quick-GPU or CPU sizes.",
    ]
    for p in t.params:
        lines.append(f"{p.name} = {values.get(p.name, p.default)!r}  # {p.comment}")
    return "\n".join(lines)


def _resolve_source(t: Template) -> str:
    presets = {k: {p.name: p.presets[k] for p in t.params if p.presets} for k in ("gpu", "gpu_quick", "cpu")}
    quick = "quick" if any(p.name == "quick" for p in t.params) else "False"
    return (
        "# Fill every parameter left at None from the preset for this machine.\n"
        f"PRESETS = {pprint.pformat(presets, width=110, sort_dicts=False)}\n"
        f"PRESET = 'cpu' if not HAS_GPU else 'gpu_quick' if {quick} else 'gpu'\n"
        "for _name, _value in PRESETS[PRESET].items():\n"
        "    if globals().get(_name) is None:\n"
        "        globals()[_name] = _value\n"
        f"PARAMS = {{name: globals()[name] for name in {[p.name for p in t.params]!r}}}\n"
        "RESULTS['parameters'] = dict(PARAMS, preset=PRESET)\n"
        "print(f'preset: {PRESET}')\n"
        "for _name, _value in PARAMS.items():\n"
        "    print(f'  {_name} = {_value!r}')"
    )


def _reference_source(t: Template) -> str:
    table = json.dumps(peaks.load_peaks(), indent=1)
    funcs = "\n\n\n".join(inspect.getsource(f) for f in peaks.EMBEDDED)
    return (
        "# Reference peaks (dense TFLOP/s, GB/s) and measured-achievable figures, one source per row,\n"
        "# copied from jupyter-gpu-panel's table so this notebook needs nothing else.\n"
        "import json\nimport re\n\n"
        f"TEMPLATE_NAME = {t.name!r}\n"
        f"PEAK_TABLE = json.loads(r'''{table}''')\n\n\n"
        f"{funcs}"
    )


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


def build_notebook(
    name: str,
    results_json: Optional[str] = None,
    overrides: Optional[Mapping[str, Any]] = None,
) -> nbformat.NotebookNode:
    """Generate template `name` as a notebook.

    `results_json` names the results file (relative to the notebook's folder). `overrides` are injected
    after the parameters cell, the way papermill does it, so the notebook shows its defaults and what
    was changed.
    """
    t = TEMPLATES[name]
    values = {RESULTS_PARAM: results_json} if results_json else {}
    cells = [new_markdown_cell(t.intro), new_markdown_cell(METHOD_MD + "\n" + NO_GPU_MD)]
    cells.append(new_code_cell(_parameters_source(t, values), metadata={"tags": ["parameters"]}))
    if overrides:
        unknown = set(overrides) - {p.name for p in t.params}
        if unknown:
            raise KeyError(f"unknown parameter(s) for {name}: {', '.join(sorted(unknown))}")
        params = {p.name: p for p in t.params}
        for key, value in overrides.items():
            check_override(params[key], value)
        src = "# Injected parameters\n" + "\n".join(f"{k} = {v!r}" for k, v in overrides.items())
        cells.append(new_code_cell(src, metadata={"tags": ["injected-parameters"]}))
    cells.append(new_code_cell(_reference_source(t), metadata={"jupyter": {"source_hidden": True}}))
    for sec in t.sections:
        if isinstance(sec, tuple):
            cells.append(new_markdown_cell(sec[1]))
            continue
        for kind, src in _source_cells(sec):
            if sec == "multigpu" and kind == "code":
                script = dist_script()
                lit = f"r'''{script}'''" if "'''" not in script and not script.endswith("\\") else repr(script)
                src = f"# The helper script that torchrun starts, one process per GPU.\nDIST_SCRIPT = {lit}\n\n\n" + src
            cells.append(new_markdown_cell(src) if kind == "markdown" else new_code_cell(src))
        if sec == "setup":
            cells.append(new_code_cell(_resolve_source(t)))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["jupyter_gpu_panel"] = {"template": name}
    nbformat.validate(nb)
    return nb
