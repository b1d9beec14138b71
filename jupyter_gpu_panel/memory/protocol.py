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
    "iters": "iters.jsonl",  # one record per optimizer step
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
#: Integer byte counters of a step or cell record (non-negative, below 2**63).
BYTE_FIELDS = ("allocated", "reserved", "active", "inactive_split", "peak_allocated", "limit")
#: Non-negative integer counters.
COUNT_FIELDS = ("alloc_retries", "num_ooms")
#: Largest byte count accepted (16 EiB would overflow int64 consumers).
MAX_BYTES_VALUE = 2**62
#: Largest step index or device index accepted.
MAX_INDEX = 2**53

# -- triage --------------------------------------------------------------------------------
#: Steps of allocation history recorded for a triage, unless the request says otherwise.
TRIAGE_STEPS = 4
TRIAGE_MAX_STEPS = 32
#: The probe allocates (and frees) one tiny tensor from this function at every step boundary
#: while it records, so the server can cut the history into steps exactly.
STEP_MARKER = "_triage_step_marker"

# -- loading the probe in a kernel ----------------------------------------------------------
#: Runs in the kernel without touching its namespace or history; prints one of the replies below.
LOAD_CODE = "__import__('jupyter_gpu_panel.memory.probe', fromlist=['_']).load_in_kernel(get_ipython())"
#: The kernel prints this (then the device) when the probe started.
LOADED_PREFIX = "jupyter-gpu-panel: tracking GPU memory"
#: ... and this when it already runs in that kernel.
ALREADY_LOADED = "jupyter-gpu-panel: already tracking GPU memory"


def loaded_reply(device: int) -> str:
    return f"{LOADED_PREFIX} after every optimizer step (cuda:{device})."


def load_succeeded(output: str) -> bool:
    """Whether the kernel's output to ``LOAD_CODE`` says the probe runs (started now or before)."""
    return LOADED_PREFIX in output or ALREADY_LOADED in output


# -- releasing torch's cache in an idle kernel ------------------------------------------------
#: Frees torch's cached GPU memory in the kernel (variables stay); prints one RELEASED_PREFIX line.
RELEASE_CODE = "__import__('jupyter_gpu_panel.memory.probe', fromlist=['_']).release_cached()"
RELEASED_PREFIX = "jupyter-gpu-panel: released "
