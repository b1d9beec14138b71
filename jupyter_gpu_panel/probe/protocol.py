"""The one contract between the in-kernel probe (writer) and the server (reader).

File names in the probe directory, the fields of every record with their types and ranges,
the step marker the triage cuts the allocation history at, the code the server runs in a
kernel to load the probe and how the kernel answers. Both sides import it from here, so a
renamed field or a reworded reply cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

#: The probe directory's name inside the Jupyter runtime dir (mode 0700, owned by the user).
PROBE_DIR_NAME = "gpu-panel"

#: kind -> file name suffix of ``probe-<pid>.<suffix>``.
FILE_SUFFIXES: dict[str, str] = {
    "meta": "json",  # who wrote the files (one JSON object, rewritten at start)
    "iters": "iters.jsonl",  # one record per optimizer step (or top-level forward, see KIND)
    "cells": "cells.jsonl",  # one record per executed cell
    "triage-request": "triage-request",  # written by the server: record the next steps
    "triage": "triage.json",  # written by the probe: the allocation history it saw
}


def probe_file(directory: Path, pid: int, kind: str) -> Path:
    return directory / f"probe-{pid}.{FILE_SUFFIXES[kind]}"


def pid_of_meta_name(name: str) -> Optional[int]:
    """``probe-123.json`` -> 123; None for any other name."""
    if not (name.startswith("probe-") and name.endswith(".json")):
        return None
    digits = name[len("probe-") : -len(".json")]
    if not digits.isdigit() or len(digits) > 10:
        return None
    return int(digits)


# -- limits of what the server reads (a runtime dir is writable by code the user runs) ------
#: The meta file and a triage request are small JSON objects.
MAX_META_BYTES = 64 * 1024
#: A triage result holds a few steps of allocation history.
MAX_TRIAGE_BYTES = 64 * 1024 * 1024
#: One record line; a longer one (or an unterminated tail past it) is dropped, not kept.
MAX_LINE_BYTES = 64 * 1024
#: New bytes read from one file per poll; the rest waits for the next poll.
MAX_READ_BYTES = 8 * 1024 * 1024

# -- record fields -----------------------------------------------------------------------------
#: Integer byte counters of a step or cell record (non-negative, below 2**63). ``limit`` is
#: what this process may allocate now (card total x per-process fraction, re-read at every
#: record); ``free`` is the device's free memory now (``cudaMemGetInfo``: every process's use
#: counted), read at most every ``FREE_SECONDS``.
BYTE_FIELDS = ("allocated", "reserved", "active", "inactive_split", "peak_allocated", "limit", "free")
#: Non-negative integer counters.
COUNT_FIELDS = ("alloc_retries", "num_ooms")

#: What wrote a record: an optimizer step (the global step post-hook), the end of a
#: top-level ``nn.Module`` call in a loop without an optimizer (inference, eval, generation),
#: or the probe's clock in code that runs neither (a loop of plain tensor operations).
#: A record without ``kind`` is an optimizer step (recorded traces, probes before round 2).
KIND = "kind"
KIND_STEP = "step"
KIND_FORWARD = "forward"
KIND_TIME = "time"
KINDS = (KIND_STEP, KIND_FORWARD, KIND_TIME)
#: Iteration index of the record, per kind: it advances when a source (an optimizer, a
#: top-level module) that already fired in the current iteration fires again, so a GAN's
#: G and D steps, or a second optimizer for a head, make one iteration.
ITER = "iter"
#: Small stable id (0, 1, ...) of the optimizer (``kind`` step) or top-level module
#: (``kind`` forward) that fired, in the order the probe first saw them.
OPT = "opt"
MOD = "mod"
#: Hook calls of the previous complete iteration (optimizer steps, or top-level module calls).
STEPS_PER_ITERATION = "steps_per_iteration"
#: Largest source id / calls per iteration accepted.
MAX_SOURCES = 2**16
#: Seconds between two ``cudaMemGetInfo`` reads (a driver call: cheap, but not free).
FREE_SECONDS = 0.05
#: Largest byte count accepted (16 EiB would overflow int64 consumers).
MAX_BYTES_VALUE = 2**62
#: Largest step index or device index accepted.
MAX_INDEX = 2**53

# -- triage --------------------------------------------------------------------------------
#: Steps of allocation history recorded for a triage, unless the request says otherwise.
TRIAGE_STEPS = 4
TRIAGE_MAX_STEPS = 32
#: What one recorded step of a triage is (``unit`` in ``triage.json``): a loop's iteration, or
#: a second of the probe's clock (code with no optimizer step and no module call).
TRIAGE_UNITS = ("step", "second")
#: The probe allocates (and frees) one tiny tensor from this function at every step boundary
#: while it records, so the server can cut the history into steps exactly.
STEP_MARKER = "_triage_step_marker"
#: Frames in these files are torch's, a library's or Python's own: never the user's line.
LIBRARY_FRAMES = ("/torch/", "\\torch\\", "<frozen", "/site-packages/", "/dist-packages/", "/lib/python3")
#: torch's ``nn.Module.__call__`` machinery: the user's line is the call site just outside the
#: outermost module call of a stack (``fake = G(z)``), not a line inside a model's forward.
MODULE_CALL_FILE = "torch/nn/modules/module.py"
MODULE_CALL_NAMES = ("_call_impl", "_wrapped_call_impl", "__call__")
#: Frames the probe keeps per allocation: the innermost few, every user frame and module call
#: boundary, up to this many (a deep model nests dozens of torch frames above the user's line).
TRIAGE_INNER_FRAMES = 4
TRIAGE_MAX_FRAMES = 48

# -- loading the probe in a kernel ----------------------------------------------------------
#: Runs in the kernel without touching its namespace or history; prints one of the replies below.
LOAD_CODE = "__import__('jupyter_gpu_panel.probe', fromlist=['_']).load_in_kernel(get_ipython())"
#: The kernel prints this (then the device) when the probe started.
LOADED_PREFIX = "jupyter-gpu-panel: tracking GPU memory"
#: ... and this when it already runs in that kernel.
ALREADY_LOADED = "jupyter-gpu-panel: already tracking GPU memory"


def loaded_reply(device: int) -> str:
    return f"{LOADED_PREFIX} after every optimizer step (cuda:{device})."


#: Recorded by the probe at the end of a top-level module call only after this long without
#: an optimizer step (and 3 x the steps' own interval): a training loop is read at its steps.
IDLE_OPTIMIZER_SECONDS = 2.0
#: The clock's period: while a cell (or a script) has run this long and longer with neither an
#: optimizer step nor a module call recorded, the allocator is read every ``TIMER_SECONDS``
#: from a thread (``kind: time``; ``iter`` counts the readings), and the detector judges
#: that series on a time axis.
TIMER_SECONDS = 1.0
#: Forward records are written at most this often (a token-by-token generation calls its
#: model thousands of times a second); skipped iterations are simply not recorded.
MIN_FORWARD_RECORD_SECONDS = 0.005


def load_succeeded(output: str) -> bool:
    """Whether the kernel's output to ``LOAD_CODE`` says the probe runs (started now or before)."""
    return LOADED_PREFIX in output or ALREADY_LOADED in output


# -- releasing torch's cache in an idle kernel ------------------------------------------------
#: Frees torch's cached GPU memory in the kernel (variables stay); prints one RELEASED_PREFIX line.
RELEASE_CODE = "__import__('jupyter_gpu_panel.probe.release', fromlist=['_']).release_cached()"
RELEASED_PREFIX = "jupyter-gpu-panel: released "
