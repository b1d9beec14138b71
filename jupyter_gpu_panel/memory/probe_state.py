"""One probe's step records as they arrive: kept as bounded numpy columns, judged from them.

The kernel view is refreshed every couple of seconds while dozens of probes each append a
record or two. ``StepWindow`` holds a probe's newest ``window`` step records (already validated,
once, by the follower) as a few numpy columns: appending costs what arrived, and ``trace()``
builds the detector's ``records.StepTrace`` with a handful of numpy passes instead of a Python
pass over 20,000 dicts. Only the fields the verdict and the chart read are kept per record
(~45 bytes, against ~1 KB for the dict); the newest whole record is kept as ``last``.

``trace()`` is ``records.steps_from_records`` in column form: on the same records it gives the
same trace, so ``verdict.verdict_from_trace`` gives the same verdict as ``verdict_from_records``
(``tests/test_incremental_verdict.py`` holds them to it on every recorded trace, appended in
random chunks).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Optional

import numpy as np

from ..probe import protocol as P
from .records import LIMIT_FIELDS, MAX_ALLOCATED, MEM_TOTAL, RECENT_ITERATIONS, StepTrace, steps_from_records

#: ``kind`` of a record as a small code: its index in ``protocol.KINDS``.
KIND_CODES = {kind: code for code, kind in enumerate(P.KINDS)}
#: Integer fields kept per record when some record has them (-1: absent; validated >= 0).
OPTIONAL_INTS = (P.ITER, P.RESERVED, P.PEAK_ALLOCATED, MAX_ALLOCATED, P.ALLOC_RETRIES, P.STEPS_PER_ITERATION)
MISSING = -1
_INT32_MAX = np.iinfo(np.int32).max
#: Rows of room past the window: the oldest rows are moved down once per this many appends.
SLACK = 1024


class StepWindow:
    """The newest ``window`` valid step records of one probe (OOM markers apart), as columns."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.total = 0  # step records ever appended: the window's version
        self.skipped = 0  # step records that failed validation (counted by the follower)
        self.last: Optional[dict[str, Any]] = None  # the newest record, whole
        self.oom_step: Optional[int] = None
        self.oom: Optional[dict[str, Any]] = None  # the newest OOM line, while no step came after it
        self.ooms = 0  # OOM lines ever appended
        self._cols: dict[str, np.ndarray] = {}
        self._cap = 0
        self._start = 0
        self._n = 0
        # the newest record carrying each (global index, value...): valid while inside the window
        self._limit: Optional[tuple[int, float]] = None
        self._mem_total: Optional[tuple[int, float]] = None
        self._free: Optional[tuple[int, float, float]] = None

    def __len__(self) -> int:
        return self._n

    @property
    def version(self) -> int:
        """Changes with every record appended (steps and OOM lines): what a verdict was made of."""
        return self.total + self.ooms

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The kept fields of each record in the window (tests, the CLI; the server reads columns)."""
        names = [n for n in (P.INDEX, P.ALLOCATED, P.TIME, *OPTIONAL_INTS) if n in self._cols]
        cols = {n: self._col(n).tolist() for n in names}
        kinds = self._col(P.KIND).tolist()
        for row in range(self._n):
            rec: dict[str, Any] = {P.KIND: P.KINDS[kinds[row]]}
            for name in names:
                value = cols[name][row]
                if value != MISSING and not (isinstance(value, float) and math.isnan(value)):
                    rec[name] = value
            yield rec

    def _col(self, name: str) -> np.ndarray:
        return self._cols[name][self._start : self._start + self._n]

    # -- appending -------------------------------------------------------------------------
    def extend(self, records: list[dict[str, Any]]) -> int:
        """Append validated step records (``records.valid_step``); returns the steps among them."""
        steps = []
        for rec in records:
            if rec.get(P.OOM):  # the line a step that raised OOM leaves: not a reading
                self.oom_step = rec.get(P.ITER, rec[P.INDEX])
                self.oom = rec
                self.ooms += 1
            else:
                steps.append(rec)
                self.oom = None  # the loop went on after it
        if not steps:
            return 0
        self._note_scalars(steps)
        self.total += len(steps)
        self.last = steps[-1]
        kept = steps[-self.window :]
        k = len(kept)
        at = self._room(k)
        # plain lists into column slices: a poll brings a record or two per probe, where numpy
        # arrays per field would cost more than the values
        fields = set().union(*kept)
        self._put(P.INDEX, at, [r[P.INDEX] for r in kept], np.int64)
        self._put(P.ALLOCATED, at, [r[P.ALLOCATED] for r in kept], np.int64)
        self._put(P.KIND, at, [KIND_CODES[r.get(P.KIND, P.KIND_STEP)] for r in kept], np.int8)
        if P.TIME in self._cols or P.TIME in fields:
            self._put(P.TIME, at, [r.get(P.TIME, math.nan) for r in kept], np.float64)
        for name in OPTIONAL_INTS:
            if name in self._cols or name in fields:
                self._put(name, at, [r.get(name, MISSING) for r in kept], np.int64)
        self._n += k
        return len(steps)

    def _note_scalars(self, steps: list[dict[str, Any]]) -> None:
        """The newest process cap, card size and free reading (as ``steps_from_records`` picks them)."""
        limit = mem_total = free = None
        for back, rec in enumerate(reversed(steps)):
            index = self.total + len(steps) - 1 - back
            if limit is None:
                value = next((rec[k] for k in LIMIT_FIELDS if rec.get(k)), None)
                if value is not None:
                    limit = self._limit = (index, float(value))
            if mem_total is None and rec.get(MEM_TOTAL):
                mem_total = self._mem_total = (index, float(rec[MEM_TOTAL]))
            if free is None and rec.get(P.FREE) is not None:
                reserve = float(rec.get(P.RESERVED, rec[P.ALLOCATED]))
                free = self._free = (index, float(rec[P.FREE]), reserve)
            if limit and mem_total and free:
                break

    def _room(self, k: int) -> int:
        """Room for ``k`` new rows at the end; the oldest rows past the window leave. Returns
        where the new rows go."""
        drop = max(0, self._n + k - self.window)
        self._start += drop
        self._n -= drop
        end = self._start + self._n
        if end + k <= self._cap:
            return end
        if self._n + k <= self._cap:  # move the window down to the front
            for col in self._cols.values():
                col[: self._n] = col[self._start : end]
        else:  # grow: doubling up to the window and its slack
            cap = min(self.window + SLACK, max(self._n + k, 2 * self._cap))
            for name, col in self._cols.items():
                grown = np.empty(cap, col.dtype)
                grown[: self._n] = col[self._start : end]
                self._cols[name] = grown
            self._cap = cap
        self._start = 0
        return self._n

    def _put(self, name: str, at: int, values: list[Any], kind: type) -> None:
        """``values`` into rows ``at``... of column ``name``; ``kind``: the field's type (an int
        field is kept as int32 while its values fit: half the memory)."""
        col = self._cols.get(name)
        if col is None:  # a field first seen now: absent in the rows before
            dtype = np.int32 if kind is np.int64 else kind
            col = self._cols[name] = np.full(self._cap, math.nan if dtype is np.float64 else MISSING, dtype)
        if col.dtype == np.int32 and max(values) > _INT32_MAX:
            col = self._cols[name] = col.astype(np.int64)
        col[at : at + len(values)] = values

    # -- reading ---------------------------------------------------------------------------
    def _scalar(self, noted: Optional[tuple[Any, ...]]) -> Optional[tuple[Any, ...]]:
        return noted if noted is not None and noted[0] >= self.total - self._n else None

    def _judged_kind(self, kind: np.ndarray, key: np.ndarray) -> int:
        """``records.judged_kind``: the newest records' kind once it holds 3 iterations, else the
        kind holding the most iterations when that is more."""
        newest = int(kind[-1])
        if kind.min() == kind.max():
            return newest
        iters = [int(np.unique(key[kind == code]).size) for code in range(len(P.KINDS))]
        if iters[newest] >= 3:
            return newest
        most = int(np.argmax(iters))  # the first of equals, as max() over KINDS
        return most if iters[most] > iters[newest] else newest

    def _float(self, name: str, rows: np.ndarray) -> Optional[np.ndarray]:
        """A kept integer field on ``rows`` as floats (NaN where absent); None where no row has it."""
        if name not in self._cols:
            return None
        values = self._col(name)[rows]
        present = values != MISSING
        if not present.any():
            return None
        return np.where(present, values.astype(float), math.nan)

    def trace(self) -> StepTrace:
        """``records.steps_from_records`` on the records in the window."""
        if not self._n:
            out = steps_from_records([])
            out.skipped, out.oom_step, out.oom = self.skipped, self.oom_step, self.oom
            return out
        i, kind = self._col(P.INDEX), self._col(P.KIND)
        it = self._col(P.ITER) if P.ITER in self._cols else None
        key = i if it is None else np.where(it != MISSING, it, i)
        judged = self._judged_kind(kind, key)
        sel = np.flatnonzero(kind == judged)
        t = self._col(P.TIME) if P.TIME in self._cols else None
        grouped = it is not None and bool((it[sel] != MISSING).all())
        spi: Optional[float] = None
        per_iter = 1.0
        if grouped:
            assert it is not None
            its = it[sel]
            firsts = np.flatnonzero(np.concatenate(([True], its[1:] != its[:-1])))
            rows = sel[firsts]  # file order: the first record of each iteration is its reading
            counts = np.diff(np.append(firsts, len(sel)))
            recent = rows[-RECENT_ITERATIONS:]
            said = self._col(P.STEPS_PER_ITERATION)[recent] if P.STEPS_PER_ITERATION in self._cols else None
            said = said[said > 0] if said is not None else None
            if said is not None and len(said):
                spi = float(np.mean(said))
            elif judged == KIND_CODES[P.KIND_STEP]:  # every optimizer step is in the file: count them
                done = counts[-RECENT_ITERATIONS:-1] if len(counts) > 1 else counts[-1:]
                spi = float(np.mean(done))
            if judged == KIND_CODES[P.KIND_CLOCK] and t is not None and not np.isnan(t[rows]).any():
                pos = t[rows] - t[rows[0]]  # the clock's axis: seconds
            else:
                pos = its[firsts].astype(float)
            if len(rows) >= 2:
                gaps = np.diff(i[rows[-RECENT_ITERATIONS:]].astype(float))
                gaps = gaps[gaps > 0]
                if len(gaps):
                    per_iter = float(np.median(gaps))
            sel = rows
        else:
            pos = i[sel].astype(float)
        n = len(sel)
        limit, mem_total, free = self._scalar(self._limit), self._scalar(self._mem_total), self._scalar(self._free)
        peak = self._float(P.PEAK_ALLOCATED, sel)
        return StepTrace(
            steps=pos,
            t=t[sel] if t is not None else np.full(n, np.nan),
            allocated=self._col(P.ALLOCATED)[sel].astype(float),
            reserved=self._float(P.RESERVED, sel),
            peak=peak if peak is not None else self._float(MAX_ALLOCATED, sel),
            alloc_retries=self._float(P.ALLOC_RETRIES, sel),
            limit=None if limit is None else limit[1],
            mem_total=None if mem_total is None else mem_total[1],
            free=None if free is None else free[1],
            free_reserved=None if free is None else free[2],
            oom_step=self.oom_step,
            oom=self.oom,
            skipped=self.skipped,
            kind=P.KINDS[judged],
            grouped=grouped,
            steps_per_iteration=spi,
            records_per_iteration=per_iter,
            last_i=int(i[sel[-1]]),
        )

    def series(self, max_points: int = 600) -> dict[str, list[Any]]:
        """Allocated and reserved per record for the panel's chart, thinned to ``max_points``."""
        return {
            name: list(v) if isinstance(v, list) else v.tolist() for name, v in self.series_columns(max_points).items()
        }

    def series_columns(self, max_points: int = 600) -> dict[str, Any]:
        """``series`` as integer numpy arrays, which orjson writes as JSON lists without a Python
        int per value (a hundred probes' charts are 180,000 values a refresh); the reserve is a
        list, ``None`` where a record did not give it, when some record did not."""
        n = self._n
        stride = max(1, math.ceil(n / max_points))
        picked = np.arange(0, n, stride)
        if n and picked[-1] != n - 1:
            picked = np.append(picked, n - 1)  # the chart ends where the forecast starts
        reserved: Any = [None] * len(picked)
        if P.RESERVED in self._cols:
            reserved = self._col(P.RESERVED)[picked]
            if (reserved == MISSING).any():
                reserved = [None if r == MISSING else r for r in reserved.tolist()]
        return {
            "step": self._col(P.INDEX)[picked] if n else [],
            "allocated": self._col(P.ALLOCATED)[picked] if n else [],
            "reserved": reserved,
        }
