"""Read memory traces for the leak detector: the two JSON-lines formats of the recorded traces.

* ``*.iters.jsonl``: one object per training step, read inside the process (the probe
  writes this format too): ``i``, ``t``, ``allocated``, ``reserved``, ``peak_allocated`` or
  ``max_allocated``, ``alloc_retries``, optionally ``limit``/``mem_total``; a last line with
  ``"oom": true`` marks the step that raised.
* ``*.nvml.jsonl``: NVML samples: ``t``, ``mem_used``, ``mem_total``, ``procs``.

The format is told by the content, not the name, so a renamed or probe-written file works.
A trace may be cut anywhere (a live run read half-way): a partial last line is skipped.
This module does the file I/O; the judging is in ``leaks`` (pure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .jsonl import read_jsonl

STEPS = "steps"
NVML = "nvml"

#: Fields a probe may use for the memory the process can use (device total x fraction).
LIMIT_FIELDS = ("limit", "mem_limit", "memory_limit", "capacity")


class TraceError(ValueError):
    """The file is neither trace format."""


@dataclass
class StepTrace:
    steps: np.ndarray
    t: np.ndarray
    allocated: np.ndarray
    reserved: np.ndarray
    peak: Optional[np.ndarray]
    alloc_retries: Optional[np.ndarray]
    limit: Optional[float] = None  # recorded by the probe
    mem_total: Optional[float] = None  # recorded in the trace itself
    oom_step: Optional[int] = None
    records: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.steps)


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


def _col(records: list[dict[str, Any]], *names: str) -> Optional[np.ndarray]:
    for name in names:
        if any(name in r for r in records):
            return np.asarray([r.get(name) if r.get(name) is not None else np.nan for r in records], dtype=float)
    return None


def steps_from_records(records: list[dict[str, Any]]) -> StepTrace:
    oom_step = None
    good = []
    for r in records:
        if r.get("oom"):
            oom_step = r.get("i")
            continue
        if r.get("allocated") is None:
            continue
        good.append(r)
    n = len(good)
    idx = _col(good, "i")
    if idx is None or np.isnan(idx).any():
        idx = np.arange(n, dtype=float)
    t = _col(good, "t")
    limit = next((float(r[k]) for r in reversed(good) for k in LIMIT_FIELDS if r.get(k)), None)
    mem_total = next((float(r["mem_total"]) for r in reversed(good) if r.get("mem_total")), None)
    return StepTrace(
        steps=idx,
        t=t if t is not None else np.full(n, np.nan),
        allocated=np.asarray([float(r["allocated"]) for r in good]),
        reserved=_col(good, "reserved") if n else np.zeros(0),
        peak=_col(good, "peak_allocated", "max_allocated"),
        alloc_retries=_col(good, "alloc_retries"),
        limit=limit,
        mem_total=mem_total,
        oom_step=None if oom_step is None else int(oom_step),
        records=good,
    )


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
