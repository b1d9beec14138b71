"""Read memory traces for the leak detector: the two JSON-lines formats of the recorded traces.

* ``*.iters.jsonl``: one object per training step, read inside the process (the probe
  writes this format too): ``i``, ``t``, ``allocated``, ``reserved``, ``peak_allocated`` or
  ``max_allocated``, ``alloc_retries``, optionally ``limit``/``mem_total``; a last line with
  ``"oom": true`` marks the step that raised.
* ``*.nvml.jsonl``: NVML samples: ``t``, ``mem_used``, ``mem_total``, ``procs``.

The format is told by the content, not the name, so a renamed or probe-written file works.
A trace may be cut anywhere (a live run read half-way): a partial last line is skipped.
This module does the file I/O; records are validated in ``records``, judged in ``verdict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from ..jsonl import read_jsonl
from .records import StepTrace, steps_from_records

STEPS = "steps"
NVML = "nvml"


class TraceError(ValueError):
    """The file is neither trace format."""


@dataclass
class NvmlTrace:
    rows: list[dict[str, Any]]
    mem_total: Optional[float] = None

    def __len__(self) -> int:
        return len(self.rows)


def read_records(path: Union[str, Path], max_lines: Optional[int] = None) -> list[dict[str, Any]]:
    """JSON objects of a trace file (its first ``max_lines`` lines: a live run seen half-way)."""
    return read_jsonl(path, max_lines)


def kind_of(records: list[dict[str, Any]]) -> str:
    for rec in records:
        if "procs" in rec or "mem_used" in rec:
            return NVML
        if "allocated" in rec:
            return STEPS
    raise TraceError("not a trace: no line holds 'allocated' (steps) or 'procs'/'mem_used' (NVML)")


def nvml_from_records(records: list[dict[str, Any]]) -> NvmlTrace:
    total = next((float(r["mem_total"]) for r in records if r.get("mem_total")), None)
    return NvmlTrace(rows=records, mem_total=total)


def read_trace(path: Union[str, Path], max_lines: Optional[int] = None) -> Union[StepTrace, NvmlTrace]:
    records = read_records(path, max_lines)
    if kind_of(records) == NVML:
        return nvml_from_records(records)
    return steps_from_records(records)


def sibling_mem_total(path: Union[str, Path]) -> Optional[float]:
    """The card's total memory for a steps trace that does not record it.

    The recorded traces keep it beside the steps: in ``NAME.nvml.jsonl`` (every sample) and in
    the folder's ``meta.jsonl`` (per scenario). Only the card's size is taken from there,
    never a verdict.
    """
    p = Path(path)
    name = p.name
    stem = name[: -len(".iters.jsonl")] if name.endswith(".iters.jsonl") else None
    if stem:
        nv = p.with_name(stem + ".nvml.jsonl")
        if nv.is_file():
            for rec in read_records(nv, max_lines=5):
                if rec.get("mem_total"):
                    return float(rec["mem_total"])
    meta = p.with_name("meta.jsonl")
    if meta.is_file():
        rows = read_records(meta)
        for rec in rows:
            if stem and rec.get("scenario") == stem and rec.get("mem_total"):
                return float(rec["mem_total"])
        totals = {float(r["mem_total"]) for r in rows if r.get("mem_total")}
        if len(totals) == 1:
            return totals.pop()
    return None
