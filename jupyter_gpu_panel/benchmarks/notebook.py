"""Benchmark notebooks assembled with nbformat from the templates and the cell sources in ``notebook_src/``.

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
from functools import cache
from typing import Any, Optional

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ..probe.torch_install import torch_install_command
from . import peaks
from .templates import METHOD_MD, NO_GPU_MD, RESULTS_PARAM, SRC_DIR, TEMPLATES, Template, check_override


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
    # the Setup cell's (preamble.py) message when torch is missing: the same command the panel and the CLI give
    funcs = "\n\n\n".join(inspect.getsource(f) for f in (*peaks.EMBEDDED, torch_install_command))
    return (
        "# Reference peaks (dense TFLOP/s, GB/s) and measured-achievable figures, one source per row,\n"
        "# and the torch install command for this machine, copied from jupyter-gpu-panel so this\n"
        "# notebook needs nothing else.\n"
        "import json\nimport re\n\n"
        f"TEMPLATE_NAME = {t.name!r}\n"
        f"PEAK_TABLE = json.loads(r'''{table}''')\n\n\n"
        f"{funcs}"
    )


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
        if sec == "preamble":
            cells.append(new_code_cell(_resolve_source(t)))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["jupyter_gpu_panel"] = {"template": name}
    nbformat.validate(nb)
    return nb
