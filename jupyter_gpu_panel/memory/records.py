"""Every record the probe writes (or a recorded trace holds), validated field by field.

A record is a dict parsed from one JSON line; the functions here return a clean copy with only
known fields of the right type and range, or None when the record is unusable. Nothing that
is not a finite number in range reaches the detector (or a JSON response).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .protocol import BYTE_FIELDS, COUNT_FIELDS, MAX_BYTES_VALUE, MAX_INDEX

#: Other byte fields a recorded trace may carry for the memory available.
LIMIT_FIELDS = ("limit", "mem_limit", "memory_limit", "capacity")
_OPTIONAL_BYTES = BYTE_FIELDS + ("max_allocated", "mem_total", "mem_limit", "memory_limit", "capacity")
_KERNEL_ID = re.compile(r"^[\w-]{1,128}$")
MAX_PID = 2**22
MAX_ARGV = 16
MAX_TEXT = 1024


def _int(value: Any, lo: int, hi: int) -> Optional[int]:
    """An integer in range (a whole float such as 1e9 counts), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if lo <= value <= hi else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and lo <= value <= hi:
        return int(value)
    return None


def _float(value: Any, lo: float, hi: float) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) and lo <= v <= hi else None


def valid_step(rec: Any) -> Optional[dict[str, Any]]:
    """A step record (``*.iters.jsonl``): ``i`` and ``allocated`` required, the rest checked if present.

    An OOM marker line (``"oom": true``) needs only ``i``.
    """
    if not isinstance(rec, dict):
        return None
    i = _int(rec.get("i"), 0, MAX_INDEX)
    if rec.get("oom") is True:
        return None if i is None else {"i": i, "oom": True}
    allocated = _int(rec.get("allocated"), 0, MAX_BYTES_VALUE)
    if i is None or allocated is None:
        return None
    out: dict[str, Any] = {"i": i, "allocated": allocated}
    for name in _OPTIONAL_BYTES:
        if name in rec and rec[name] is not None:
            value = _int(rec[name], 0, MAX_BYTES_VALUE)
            if value is None:
                return None
            out[name] = value
    for name in COUNT_FIELDS:
        if name in rec and rec[name] is not None:
            value = _int(rec[name], 0, MAX_BYTES_VALUE)
            if value is None:
                return None
            out[name] = value
    for name, hi in (("t", 1e11), ("dt", 1e9), ("loss", math.inf)):
        if name in rec and rec[name] is not None:
            value = _float(rec[name], -math.inf if name == "loss" else 0.0, hi)
            if value is None:
                return None
            out[name] = value
    if rec.get("device") is not None:
        device = _int(rec["device"], 0, 1023)
        if device is None:
            return None
        out["device"] = device
    return out


def valid_cell(rec: Any) -> Optional[dict[str, Any]]:
    """A cell record (``*.cells.jsonl``): ``cell`` id and ``allocated`` required."""
    if not isinstance(rec, dict):
        return None
    cell, allocated = rec.get("cell"), _int(rec.get("allocated"), 0, MAX_BYTES_VALUE)
    if not isinstance(cell, str) or not cell or len(cell) > 256 or allocated is None:
        return None
    out: dict[str, Any] = {"cell": cell, "allocated": allocated, "error": rec.get("error") is True}
    count = rec.get("execution_count")
    out["execution_count"] = _int(count, 0, MAX_INDEX) if count is not None else None
    t = _float(rec.get("t"), 0.0, 1e11)
    if t is not None:
        out["t"] = t
    return out


def valid_meta(doc: Any, pid: int) -> dict[str, Any]:
    """A probe's meta file for ``pid`` (its file name); ValueError saying what is wrong."""
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if _int(doc.get("pid"), 1, MAX_PID) != pid:
        raise ValueError(f"its pid {str(doc.get('pid'))[:20]!r} is not the {pid} in its name")
    kernel_id = doc.get("kernel_id")
    if kernel_id is not None and not (isinstance(kernel_id, str) and _KERNEL_ID.match(kernel_id)):
        raise ValueError("kernel_id is not a kernel id")
    started = _float(doc.get("started"), 0.0, 1e11)
    if started is None:
        raise ValueError("started is not a time")
    argv = doc.get("argv") or []
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv is not a list of strings")
    rank = doc.get("rank")
    if rank is not None and not isinstance(rank, (str, int)) or isinstance(rank, bool):
        raise ValueError("rank is not a rank")
    device, limit = doc.get("device"), doc.get("limit")
    return {
        "pid": pid,
        "kernel_id": kernel_id,
        "device": None if device is None else _int(device, 0, 1023),
        "limit": None if limit is None else _int(limit, 1, MAX_BYTES_VALUE),
        "started": started,
        "argv": [a[:MAX_TEXT] for a in argv[:MAX_ARGV]],
        "rank": None if rank is None else str(rank)[:16],
        "torch": str(doc.get("torch"))[:64] if doc.get("torch") is not None else None,
    }


@dataclass
class StepTrace:
    """Validated step records as columns, for the detector."""

    steps: np.ndarray
    t: np.ndarray
    allocated: np.ndarray
    reserved: np.ndarray
    peak: Optional[np.ndarray]
    alloc_retries: Optional[np.ndarray]
    limit: Optional[float] = None  # recorded by the probe
    mem_total: Optional[float] = None  # recorded in the trace itself
    oom_step: Optional[int] = None
    skipped: int = 0  # records that failed validation
    records: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.steps)


def _col(records: list[dict[str, Any]], *names: str) -> Optional[np.ndarray]:
    for name in names:
        if any(name in r for r in records):
            return np.asarray([r.get(name, np.nan) for r in records], dtype=float)
    return None


def steps_from_records(records: list[Any]) -> StepTrace:
    """Columns of the valid step records among ``records`` (raw dicts, validated here)."""
    oom_step = None
    good = []
    skipped = 0
    for raw in records:
        rec = valid_step(raw)
        if rec is None:
            skipped += 1
        elif rec.get("oom"):
            oom_step = rec["i"]
        else:
            good.append(rec)
    n = len(good)
    limit = next((float(r[k]) for r in reversed(good) for k in LIMIT_FIELDS if r.get(k)), None)
    mem_total = next((float(r["mem_total"]) for r in reversed(good) if r.get("mem_total")), None)
    t = _col(good, "t")
    return StepTrace(
        steps=np.asarray([r["i"] for r in good], dtype=float),
        t=t if t is not None else np.full(n, np.nan),
        allocated=np.asarray([r["allocated"] for r in good], dtype=float),
        reserved=_col(good, "reserved") if n else np.zeros(0),
        peak=_col(good, "peak_allocated", "max_allocated"),
        alloc_retries=_col(good, "alloc_retries"),
        limit=limit,
        mem_total=mem_total,
        oom_step=oom_step,
        skipped=skipped,
        records=good,
    )
