"""Server-side history: fixed-size ring buffers per GPU and per GPU process.

Memory is bounded by construction: ``capacity = history_seconds / interval`` rows of
``1 + len(HISTORY_FIELDS)`` float64 each per GPU, kept twice (mirrored rings: 176 bytes a row,
619 KiB per GPU-hour at the default 1 s tick), and ``capacity`` rows of two float64, twice, per
tracked process.
Missing values are stored as NaN and served as ``null``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any, Callable, Optional

import numpy as np

from .readings import HISTORY_FIELDS, GPUReading

#: Process series not updated for this long are dropped (the process ended).
PROCESS_EXPIRY_FACTOR = 1.0


class Ring:
    """A fixed-capacity ring of float64 rows, oldest overwritten first.

    Mirrored: every row is written twice, ``capacity`` rows apart, so the rows in time order are
    always one contiguous slice (``view``): a query reduces them in place instead of copying an
    hour of readings first (the copy was a third of a full-hour query). Twice the memory.
    """

    def __init__(self, capacity: int, width: int) -> None:
        self.capacity = max(1, int(capacity))
        self.data = np.full((2 * self.capacity, width), np.nan, dtype=np.float64)
        self.count = 0  # rows ever written
        self.head = 0  # next row to write

    def append(self, row: Sequence[float]) -> None:
        self.data[self.head] = row
        self.data[self.head + self.capacity] = row
        self.head = (self.head + 1) % self.capacity
        self.count += 1

    def view(self) -> np.ndarray:
        """All rows, oldest first, without a copy: read it under the history's lock."""
        if self.count < self.capacity:
            return self.data[: self.count]
        return self.data[self.head : self.head + self.capacity]

    def ordered(self) -> np.ndarray:
        """All rows, oldest first (a copy)."""
        return self.view().copy()

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)


def downsample(rows: np.ndarray, max_points: int, mean_columns: Sequence[int] = ()) -> np.ndarray:
    """At most ``max_points`` rows: buckets of ``ceil(n / max_points)`` consecutive rows, aligned
    to the newest row (the oldest bucket may be shorter). Column 0 (time) keeps the bucket's last
    value, ``mean_columns`` its mean, every other column its maximum, so a memory peak is never
    averaged away. NaN (a missing reading) is ignored; an all-NaN bucket stays NaN.

    Vectorised: the rows are viewed as a (buckets, size, width) cube without a copy and reduced
    along the bucket axis, maxima and means each on their own columns (a contiguous run of
    columns stays a view: the GPU rings keep the averaged columns side by side). ~1 ms for an
    hour of one GPU at 0.1 s ticks, where a per-bucket loop took ~150 ms.
    """
    n, width = rows.shape
    if max_points <= 0 or n <= max_points:
        return rows
    size = -(-n // max_points)
    full = n // size
    head = n - full * size  # rows of the oldest, shorter bucket (0: none)
    mean_set = set(mean_columns)
    means = _columns(sorted(mean_set))
    maxes = _columns([c for c in range(1, width) if c not in mean_set])
    out = np.empty((full + (1 if head else 0), width))
    if head:
        _reduce_buckets(rows[:head].reshape(1, head, width), out[:1], means, maxes)
    _reduce_buckets(rows[head:].reshape(full, size, width), out[1 if head else 0 :], means, maxes)
    return out


def _columns(cols: list[int]) -> Any:
    """A run of consecutive columns as a slice (indexing with it is a view), else the list."""
    if cols and cols == list(range(cols[0], cols[-1] + 1)):
        return slice(cols[0], cols[-1] + 1)
    return cols


def _reduce_buckets(cube: np.ndarray, out: np.ndarray, means: Any, maxes: Any) -> None:
    out[:, 0] = cube[:, -1, 0]
    if maxes != []:
        out[:, maxes] = _bucket_reduce(np.fmax, cube[:, :, maxes])  # fmax ignores NaN unless both are
    if means != []:
        out[:, means] = _nan_mean(cube[:, :, means])


def _nan_mean(cube: np.ndarray) -> np.ndarray:
    """Per-bucket means ignoring NaN. A plain sum first (NaN is rare in a rate column); only the
    columns where a NaN showed up are counted value by value."""
    sums = _bucket_reduce(np.add, cube)
    sums /= cube.shape[1]
    bad = np.flatnonzero(np.isnan(sums).any(axis=0))
    if len(bad):
        values = cube[:, :, bad]
        present = ~np.isnan(values)
        counts = _bucket_reduce(np.add, present.astype(np.int32))
        totals = _bucket_reduce(np.add, np.where(present, values, 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            sums[:, bad] = np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)
    return sums


def _bucket_reduce(ufunc: np.ufunc, cube: np.ndarray) -> np.ndarray:
    """``ufunc.reduce(cube, axis=1)``, as a loop over the (few) rows of a bucket when buckets are
    small: whole-array operations are ~5x faster than numpy's strided reduction there."""
    size = cube.shape[1]
    if size > 64:
        return ufunc.reduce(cube, axis=1)
    out = cube[:, 0].copy()
    for k in range(1, size):
        ufunc(out, cube[:, k], out=out)
    return out


#: The GPU rings' columns after time: the averaged ones (rates) side by side, then the maxed
#: ones (memory levels), so a downsample reduces each group as one view.
GPU_COLUMNS = tuple(
    sorted(HISTORY_FIELDS, key=lambda name: name.startswith("mem_"))  # stable: rates first, in order
)
#: GPU history columns averaged (rather than maxed) when downsampling: rates, not levels.
GPU_MEAN_COLUMNS = tuple(1 + i for i, name in enumerate(GPU_COLUMNS) if not name.startswith("mem_"))


def column_values(values: np.ndarray) -> np.ndarray:
    """A column ready for JSON: int64 when every value is a whole number, else rounded to 3
    decimals with NaN where a reading is missing (the encoder writes it as ``null``)."""
    if np.isfinite(values).all() and np.array_equal(values, np.round(values)):
        return values.astype(np.int64)  # a new, contiguous array (the encoder needs one)
    return np.round(values, 3)  # a new array too: never a view of the ring


def parse_history_fields(raw: Sequence[str]) -> list[str]:
    """A client's ``fields=`` selection: each known field once, in the order first named.

    Repeats are answered once: ``mem_used`` named 6,500 times was computed 6,500 times under
    the history lock (a second a request, blocking every other query). ValueError names the
    unknown ones.
    """
    fields = list(dict.fromkeys(raw))  # at most len(HISTORY_FIELDS) once known ones are checked
    unknown = [f for f in fields if f not in HISTORY_FIELDS]
    if unknown:
        shown = ", ".join(repr(f[:40]) for f in unknown[:5])
        raise ValueError(f"unknown history field(s) {shown}; choose from {', '.join(HISTORY_FIELDS)}")
    return fields


class History:
    """Thread-safe: the sampler thread appends, request handlers read."""

    def __init__(self, history_seconds: float, interval: float) -> None:
        self.capacity = max(2, int(math.ceil(history_seconds / interval)))
        self.history_seconds = history_seconds
        self._gpus: dict[int, Ring] = {}
        self._procs: dict[tuple[int, int], Ring] = {}
        self._proc_last: dict[tuple[int, int], float] = {}
        self._lock = threading.Lock()

    def append(self, readings: Sequence[GPUReading]) -> None:
        with self._lock:
            for r in readings:
                ring = self._gpus.get(r.index)
                if ring is None:
                    ring = self._gpus[r.index] = Ring(self.capacity, 1 + len(HISTORY_FIELDS))
                row = [r.t] + [_num(getattr(r, name)) for name in GPU_COLUMNS]
                ring.append(row)
                for p in r.processes:
                    key = (r.index, p.pid)
                    pring = self._procs.get(key)
                    if pring is None:
                        pring = self._procs[key] = Ring(self.capacity, 2)
                    pring.append((r.t, _num(p.used)))
                    self._proc_last[key] = r.t
            if readings:
                self._expire(readings[0].t)

    def _expire(self, now: float) -> None:
        horizon = now - self.history_seconds * PROCESS_EXPIRY_FACTOR
        for key in [k for k, last in self._proc_last.items() if last < horizon]:
            del self._procs[key]
            del self._proc_last[key]

    def query(
        self,
        since: Optional[float] = None,
        fields: Optional[Sequence[str]] = None,
        max_points: int = 0,
        gpus: Optional[Sequence[int]] = None,
        pid_visible: Optional[Callable[[int], bool]] = None,
    ) -> dict[str, Any]:
        """Columnar history since ``since``, at most ``max_points`` rows per series.

        Columns are numpy arrays (NaN: missing; ``api.base.json_parts`` writes them as JSON).
        Its cost grows with the data: call it off the event loop. ``pid_visible`` filters the
        process series (another user's processes on a private server).
        """
        fields = parse_history_fields(fields or HISTORY_FIELDS)
        cols = [1 + GPU_COLUMNS.index(name) for name in fields]
        with self._lock:
            gpu_keys = sorted(i for i in self._gpus if gpus is None or i in gpus)
            proc_keys = sorted(
                k for k in self._procs if (gpus is None or k[0] in gpus) and (pid_visible is None or pid_visible(k[1]))
            )
        out_gpus = []
        for index in gpu_keys:
            # reduced straight from the ring's slice, under the lock (the sampler waits ~1 ms);
            # what leaves the lock is new arrays, never a view the sampler could overwrite
            with self._lock:
                ring = self._gpus.get(index)
                if ring is None:
                    continue
                rows = _since(ring.view(), since)
                rows = downsample(rows, max_points, GPU_MEAN_COLUMNS)
                t = rows[:, 0].copy()  # exact: a client passes it back as `since`
                values = {name: column_values(rows[:, col]) for name, col in zip(fields, cols)}
            out_gpus.append({"index": index, "t": t, "values": values})
        out_procs = []
        for gpu, pid in proc_keys:
            with self._lock:
                ring = self._procs.get((gpu, pid))
                if ring is None:
                    continue
                rows = downsample(_since(ring.view(), since), max_points)
                t, used = rows[:, 0].copy(), column_values(rows[:, 1])
            if len(t):
                out_procs.append({"gpu": gpu, "pid": pid, "t": t, "used": used})
        return {"fields": fields, "gpus": out_gpus, "processes": out_procs}

    def process_series(self, gpu: int, pid: int) -> Optional[np.ndarray]:
        """(t, used) rows for one process, oldest first; for the leak detector."""
        with self._lock:
            ring = self._procs.get((gpu, pid))
            return None if ring is None else ring.ordered()

    @property
    def nbytes(self) -> int:
        """Bytes held. Read without the lock (GET status asks, on the event loop, and a query may
        hold the lock for a few ms): ``list()`` copies the values in one step under the GIL."""
        rings = list(self._gpus.values()) + list(self._procs.values())
        return sum(r.nbytes for r in rings)


def _since(rows: np.ndarray, since: Optional[float]) -> np.ndarray:
    return rows if since is None else rows[rows[:, 0] > since]


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)
