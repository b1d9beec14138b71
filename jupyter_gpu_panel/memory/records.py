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

from ..probe import protocol as P
from ..probe.protocol import BYTE_FIELDS, COUNT_FIELDS, MAX_BYTES_VALUE, MAX_INDEX

#: Byte fields recorded traces may carry besides the probe's: the memory available, the card's
#: size, the peak under an older name.
MAX_ALLOCATED = "max_allocated"
MEM_TOTAL = "mem_total"
LIMIT_FIELDS = (P.LIMIT, "mem_limit", "memory_limit", "capacity")
_OPTIONAL_BYTES = BYTE_FIELDS + (MAX_ALLOCATED, MEM_TOTAL, "mem_limit", "memory_limit", "capacity")
#: A recorded trace's loss column (training scripts write it beside the probe's fields).
LOSS = "loss"
_KERNEL_ID = re.compile(r"^[\w-]{1,128}$")
MAX_PID = 2**22
MAX_ARGV = 16
MAX_TEXT = 1024
MAX_DEVICE = 1023
#: Latest Unix time accepted (year 5138).
MAX_TIME = 1e11


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

    An OOM line (``"oom": true``) needs only ``i``; what it says is checked by ``oom.valid_oom``.
    The probe's iteration fields (``protocol.KIND``, ``ITER``, ``OPT``, ``MOD``,
    ``STEPS_PER_ITERATION``) and ``free`` are checked like the rest: a known kind, integers in range.
    """
    if not isinstance(rec, dict):
        return None
    i = _int(rec.get(P.INDEX), 0, MAX_INDEX)
    if rec.get(P.OOM) is True:
        if i is None:
            return None
        from .oom import valid_oom  # only OOM lines need it

        return valid_oom(rec, i)
    allocated = _int(rec.get(P.ALLOCATED), 0, MAX_BYTES_VALUE)
    if i is None or allocated is None:
        return None
    out: dict[str, Any] = {P.INDEX: i, P.ALLOCATED: allocated}
    # one pass over the record's own fields (a 20,000-line file is validated at start: this is
    # its cost), each known one checked against its range, unknown ones dropped
    for name, value in rec.items():
        if value is None:
            continue
        bounds = _STEP_INTS.get(name)
        if bounds is not None:
            if type(value) is not int or not bounds[0] <= value <= bounds[1]:  # fast path: an int
                value = _int(value, *bounds)
                if value is None:
                    return None
            out[name] = value
            continue
        span = _STEP_FLOATS.get(name)
        if span is not None:
            value = _float(value, *span)
            if value is None:
                return None
            out[name] = value
        elif name == P.KIND:
            if not isinstance(value, str) or value not in P.KINDS:
                return None
            out[name] = value
    return out


#: A step record's integer fields and their ranges: byte counts and counters, the device, and
#: the probe's iteration fields (``i`` and ``allocated``, required, are checked first).
_STEP_INTS: dict[str, tuple[int, int]] = {
    **{name: (0, MAX_BYTES_VALUE) for name in (*_OPTIONAL_BYTES, *COUNT_FIELDS) if name != P.ALLOCATED},
    P.DEVICE: (0, MAX_DEVICE),
    P.ITER: (0, MAX_INDEX),
    P.OPT: (0, P.MAX_SOURCES),
    P.MOD: (0, P.MAX_SOURCES),
    P.STEPS_PER_ITERATION: (1, P.MAX_SOURCES),
}
_STEP_FLOATS: dict[str, tuple[float, float]] = {
    P.TIME: (0.0, MAX_TIME),
    P.DT: (0.0, 1e9),
    LOSS: (-math.inf, math.inf),
}


def valid_cell(rec: Any) -> Optional[dict[str, Any]]:
    """A cell record (``*.cells.jsonl``): ``cell`` id and ``allocated`` required."""
    if not isinstance(rec, dict):
        return None
    cell, allocated = rec.get(P.CELL), _int(rec.get(P.ALLOCATED), 0, MAX_BYTES_VALUE)
    if not isinstance(cell, str) or not cell or len(cell) > 256 or allocated is None:
        return None
    out: dict[str, Any] = {P.CELL: cell, P.ALLOCATED: allocated, P.CELL_ERROR: rec.get(P.CELL_ERROR) is True}
    reserved = _int(rec.get(P.RESERVED), 0, MAX_BYTES_VALUE)
    if reserved is not None:  # the allocator's cache after the cell: an idle kernel's ``cached``
        out[P.RESERVED] = reserved
    count = rec.get(P.EXECUTION_COUNT)
    out[P.EXECUTION_COUNT] = _int(count, 0, MAX_INDEX) if count is not None else None
    t = _float(rec.get(P.TIME), 0.0, MAX_TIME)
    if t is not None:
        out[P.TIME] = t
    return out


def valid_meta(doc: Any, pid: int) -> dict[str, Any]:
    """A probe's meta file for ``pid`` (its file name); ValueError saying what is wrong."""
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if _int(doc.get(P.META_PID), 1, MAX_PID) != pid:
        raise ValueError(f"its pid {str(doc.get(P.META_PID))[:20]!r} is not the {pid} in its name")
    kernel_id = doc.get(P.META_KERNEL_ID)
    if kernel_id is not None and not (isinstance(kernel_id, str) and _KERNEL_ID.match(kernel_id)):
        raise ValueError("kernel_id is not a kernel id")
    started = _float(doc.get(P.META_STARTED), 0.0, MAX_TIME)
    if started is None:
        raise ValueError("started is not a time")
    argv = doc.get(P.META_ARGV) or []
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv is not a list of strings")
    rank = doc.get(P.META_RANK)
    if rank is not None and not isinstance(rank, (str, int)) or isinstance(rank, bool):
        raise ValueError("rank is not a rank")
    device, limit, torch = doc.get(P.META_DEVICE), doc.get(P.META_LIMIT), doc.get(P.META_TORCH)
    return {
        P.META_PID: pid,
        P.META_KERNEL_ID: kernel_id,
        P.META_DEVICE: None if device is None else _int(device, 0, MAX_DEVICE),
        P.META_LIMIT: None if limit is None else _int(limit, 1, MAX_BYTES_VALUE),
        P.META_STARTED: started,
        P.META_ARGV: [a[:MAX_TEXT] for a in argv[:MAX_ARGV]],
        P.META_RANK: None if rank is None else str(rank)[:16],
        P.META_TORCH: str(torch)[:64] if torch is not None else None,
    }


@dataclass
class StepTrace:
    """Validated step records as columns, for the detector: one row per iteration.

    Records that carry ``iter`` (the probe since round 2) are grouped: the first record of
    each iteration is its reading (the same point of every iteration: after the optimizer, or
    the module call, that opens it), so positions are iterations. Older records and recorded
    traces are one row each, positioned by ``i``. Only records of one ``kind`` are judged:
    the kind of the newest records (an eval loop after training is judged on its own).
    """

    steps: np.ndarray  # iteration index (or ``i``)
    t: np.ndarray
    allocated: np.ndarray
    reserved: Optional[np.ndarray]  # None: no record has it
    peak: Optional[np.ndarray]
    alloc_retries: Optional[np.ndarray]
    limit: Optional[float] = None  # the newest process cap the probe recorded
    mem_total: Optional[float] = None  # recorded in the trace itself
    free: Optional[float] = None  # the device's newest free memory the probe recorded ...
    free_reserved: Optional[float] = None  # ... and this process's reserve at that moment
    oom_step: Optional[int] = None
    #: the newest OOM line when no step came after it (``oom.valid_oom``): the run ended there
    oom: Optional[dict[str, Any]] = None
    skipped: int = 0  # records that failed validation
    kind: str = P.KIND_STEP  # which records were judged
    grouped: bool = False  # rows are iterations of several records (``iter`` present)
    steps_per_iteration: Optional[float] = None  # hook calls per iteration (None: not recorded)
    records_per_iteration: float = 1.0  # ``i`` advanced per iteration (the chart's x axis)
    last_i: Optional[int] = None  # ``i`` of the newest judged record
    records: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.steps)


def _col(records: list[dict[str, Any]], *names: str) -> Optional[np.ndarray]:
    for name in names:
        if any(name in r for r in records):
            return np.asarray([r.get(name, np.nan) for r in records], dtype=float)
    return None


def _kind(rec: dict[str, Any]) -> str:
    return rec.get(P.KIND) or P.KIND_STEP


def judged_kind(good: list[dict[str, Any]]) -> str:
    """The kind of the newest records, once it holds a few iterations (else the kind that holds
    the most, when it holds more: a training loop's first forward record before its first step)."""
    if not good:
        return P.KIND_STEP
    newest = _kind(good[-1])
    iters: dict[str, set[Any]] = {k: set() for k in P.KINDS}
    for r in good:
        iters[_kind(r)].add(r.get(P.ITER, r[P.INDEX]))
    if len(iters[newest]) >= 3:
        return newest
    most = max(P.KINDS, key=lambda k: len(iters[k]))
    return most if len(iters[most]) > len(iters[newest]) else newest


RECENT_ITERATIONS = 256


def steps_from_records(records: list[Any]) -> StepTrace:
    """Columns of the valid step records among ``records`` (raw dicts, validated here)."""
    oom_step = None
    oom = None
    good = []
    skipped = 0
    for raw in records:
        rec = valid_step(raw)
        if rec is None:
            skipped += 1
        elif rec.get(P.OOM):
            oom_step = rec.get(P.ITER, rec[P.INDEX])
            oom = rec
        else:
            good.append(rec)
            oom = None  # the loop went on after it
    limit = next((float(r[k]) for r in reversed(good) for k in LIMIT_FIELDS if r.get(k)), None)
    mem_total = next((float(r[MEM_TOTAL]) for r in reversed(good) if r.get(MEM_TOTAL)), None)
    with_free = next((r for r in reversed(good) if r.get(P.FREE) is not None), None)
    kind = judged_kind(good)
    sel = [r for r in good if _kind(r) == kind]
    grouped = bool(sel) and all(P.ITER in r for r in sel)
    spi: Optional[float] = None
    per_iter = 1.0
    if grouped:
        rows: list[dict[str, Any]] = []
        counts: list[int] = []
        for r in sel:  # file order: the first record of each iteration is its reading
            if not rows or r[P.ITER] != rows[-1][P.ITER]:
                rows.append(r)
                counts.append(0)
            counts[-1] += 1
        recent = rows[-RECENT_ITERATIONS:]
        said = [r[P.STEPS_PER_ITERATION] for r in recent if r.get(P.STEPS_PER_ITERATION)]
        if said:
            spi = float(np.mean(said))
        elif kind == P.KIND_STEP:  # every optimizer step is in the file: count them
            done = counts[-RECENT_ITERATIONS:-1] or counts[-1:]
            spi = float(np.mean(done))
        if kind == P.KIND_CLOCK and all(P.TIME in r for r in rows):
            pos = [float(r[P.TIME]) - float(rows[0][P.TIME]) for r in rows]  # the clock's axis: seconds
        else:
            pos = [float(r[P.ITER]) for r in rows]
        if len(rows) >= 2:
            gaps = np.diff([float(r[P.INDEX]) for r in rows[-RECENT_ITERATIONS:]])
            gaps = gaps[gaps > 0]
            if len(gaps):
                per_iter = float(np.median(gaps))
        sel = rows
    else:
        pos = [float(r[P.INDEX]) for r in sel]
    n = len(sel)
    t = _col(sel, P.TIME)
    return StepTrace(
        steps=np.asarray(pos, dtype=float),
        t=t if t is not None else np.full(n, np.nan),
        allocated=np.asarray([r[P.ALLOCATED] for r in sel], dtype=float),
        reserved=_col(sel, P.RESERVED) if n else np.zeros(0),
        peak=_col(sel, P.PEAK_ALLOCATED, MAX_ALLOCATED),
        alloc_retries=_col(sel, P.ALLOC_RETRIES),
        limit=limit,
        mem_total=mem_total,
        free=None if with_free is None else float(with_free[P.FREE]),
        free_reserved=None if with_free is None else float(with_free.get(P.RESERVED, with_free[P.ALLOCATED])),
        oom_step=oom_step,
        oom=oom,
        skipped=skipped,
        kind=kind,
        grouped=grouped,
        steps_per_iteration=spi,
        records_per_iteration=per_iter,
        last_i=int(sel[-1][P.INDEX]) if sel else None,
        records=good,
    )
