"""Memory-leak detection and out-of-memory forecast: pure functions over memory series, no I/O.

Two kinds of series come in:

* **per step** (the in-kernel probe, ``*.iters.jsonl``): ``torch.cuda.memory_allocated()``
  read after every optimizer step. Readings at the same point of every iteration are
  deterministic, so even a 512 B/step slope is exact.
* **per time** (NVML's per-process ``used``): the caching allocator's reserve plus the CUDA
  context, sampled by the server. Coarse and step-shaped: it grows in whole segments.

The method, in order (each step says why it is there):

1. **Floor.** ``floor[i] = min(x[i:])`` is the memory that was never given back after ``i``.
   It removes what a healthy loop frees later — eval spikes, gradient-accumulation and
   garbage-collector sawtooth, ``empty_cache`` drops — so what is left to explain is the
   memory that is *kept*.
2. **Current growth regime.** A change-in-mean split (least squares on the floor's
   increments, applied to the right-hand part again while it explains enough) isolates the
   latest regime: a warm-up jump, a long healthy stretch before a mid-run onset, or a growth
   that stopped (a bounded cache now full) each end up on the left of a split.
3. **Is it a leak?** The regime must (a) grow by more than the series' noise, through at
   least three separate increments with no single one dominating (a one-time step up — a
   batch-size change, an EMA copy switched on — is not a leak), (b) still be growing (the
   last increment is recent compared with the regime's own rhythm), (c) pass a one-sided
   Mann–Kendall trend test on the raw readings, and (d) have lasted long enough.
4. **Evidence against urgency.** "Long enough" is not a fixed window: the readings needed
   grow with the logarithm of the readings left before the OOM, from ~6 when the card fills
   in a couple of dozen steps to ~24 when it fills in a couple of thousand and ~60 for
   leaks that would take days. Growth that earlier cycles of the same run gave back (a
   sawtooth's tooth) must be outlasted first.
5. **Rate and forecast.** Theil–Sen slope of the floor over the regime; headroom is the
   capacity minus the current level plus the largest in-step excess seen (the transient
   working set of a step, from ``peak_allocated``), so the forecast names the step that
   will fail rather than the step where the retained memory alone reaches the limit.

Actionable means: a leak that would exhaust the available memory within 24 h.
"""

from __future__ import annotations

import bisect
import copy
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np
from scipy import stats

from .wording import human_bytes

#: A leak is actionable when it fills the available memory within this many seconds.
ACTIONABLE_SECONDS = 24 * 3600.0

#: One-sided significance of the Mann–Kendall test on the regime's raw readings.
TREND_ALPHA = 0.01

#: Evidence needed (readings of sustained growth): ``BASE + PER_DECADE * log10(T / 10)`` for
#: ``T`` readings to OOM, clipped to ``[MIN, MAX]``. 10 readings from OOM: 4; 2,000: ~24;
#: a leak that takes days: the cap. The 32 MiB/step leak of the recorded H100 runs (~2,200
#: steps of headroom) is confirmed after ~24 steps, so a bounded cache that fills in fewer
#: steps than that at that rate never alarms.
EVIDENCE_BASE = 4.0
EVIDENCE_PER_DECADE = 8.5
EVIDENCE_MIN = 3
EVIDENCE_MAX = 64

#: A regime must hold this many separate increments: fewer is a step change, not a trend.
MIN_INCREMENTS = 3
#: No single increment may be more than this share of the regime's growth.
MAX_INCREMENT_SHARE = 0.5
#: A pause longer than ``max(MIN_PAUSE, PAUSE_FACTOR x the median gap)`` between two
#: increments splits the regime: the growth after it is judged on its own.
MIN_PAUSE = 6
PAUSE_FACTOR = 3.0
#: NVML sees the caching allocator's reserve plus the CUDA context: lazily loaded kernels,
#: library workspaces and small-pool segments make it creep by 2 MiB steps for minutes in a
#: healthy run with varying shapes. Growth under this is not called a leak there (the
#: probe's per-step readings are the precise path).
NVML_MIN_GROWTH = 256 * 2**20
#: The regime's second half must grow at least this share of what its first half grew.
MIN_PACE_RATIO = 1.0 / 3.0
#: A split of the increments is kept when its F statistic beats ``BASE + PER_LOG * ln(m)``.
SPLIT_F_BASE = 4.0
SPLIT_F_PER_LOG = 3.0
#: Points handed to the O(n^2)/O(n log n) statistics; longer regimes are thinned.
MAX_STAT_POINTS = 96


def required_evidence(readings_to_oom: float) -> float:
    """Readings of sustained growth needed before a growth is called a leak."""
    t = max(float(readings_to_oom), 1e-9)
    need = EVIDENCE_BASE + EVIDENCE_PER_DECADE * math.log10(max(t, 1.0) / 10.0)
    return float(min(EVIDENCE_MAX, max(EVIDENCE_MIN, need)))


@dataclass
class Growth:
    """What the detector found in one series (positions are step indices or Unix seconds)."""

    leak: bool = False
    actionable: bool = False
    onset: Optional[float] = None  # position of the first reading of the current growth
    rate: float = 0.0  # bytes per position unit (per step, or per second)
    bytes_per_second: Optional[float] = None
    to_oom: Optional[float] = None  # position units (steps, or seconds)
    seconds_to_oom: Optional[float] = None
    level: Optional[float] = None  # bytes counted against the capacity now
    headroom: Optional[float] = None
    capacity: Optional[float] = None
    evidence: int = 0  # readings of the current growth regime
    required: Optional[float] = None  # readings needed at this urgency
    increments: int = 0
    growth: float = 0.0  # bytes the floor rose over the regime
    trend_p: Optional[float] = None
    reason: str = ""


@dataclass
class StepsReport(Growth):
    """Verdict on a per-step (probe) series. ``to_json`` gives the CLI contract's fields."""

    current_step: Optional[float] = None
    fragmentation: Optional[dict[str, Any]] = None

    @property
    def onset_step(self) -> Optional[int]:
        return None if self.onset is None else int(round(self.onset))

    def to_json(self) -> dict[str, Any]:
        return {
            "leak": self.leak,
            "actionable": self.actionable,
            "onset_step": self.onset_step,
            "bytes_per_step": float(self.rate),
            "bytes_per_second": self.bytes_per_second,
            "steps_to_oom": self.to_oom,
            "seconds_to_oom": self.seconds_to_oom,
            "reason": self.reason,
            "evidence_steps": self.evidence,
            "required_steps": self.required,
            "headroom": self.headroom,
            "capacity": self.capacity,
            "level": self.level,
            "fragmentation": self.fragmentation,
        }


@dataclass
class TimeReport(Growth):
    """Verdict on a per-time (NVML) series: rates per second."""

    def to_json(self) -> dict[str, Any]:
        return {
            "leak": self.leak,
            "actionable": self.actionable,
            "onset_time": self.onset,
            "bytes_per_second": float(self.rate),
            "seconds_to_oom": self.seconds_to_oom,
            "reason": self.reason,
            "evidence_samples": self.evidence,
            "required_samples": self.required,
            "headroom": self.headroom,
            "capacity": self.capacity,
            "level": self.level,
        }


# --------------------------------------------------------------------------- core


def _as_array(values: Iterable[Any]) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values] if not isinstance(values, np.ndarray) else values, dtype=float)


def _clean(pos: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(pos) & np.isfinite(x)
    if not ok.all():
        pos, x = pos[ok], x[ok]
    if len(pos) > 1 and np.any(np.diff(pos) < 0):
        order = np.argsort(pos, kind="stable")
        pos, x = pos[order], x[order]
    return pos, x


def _regime_start(d: np.ndarray) -> int:
    """Index into ``d`` where the latest growth regime starts (change in mean, repeated right)."""
    start = 0
    for _ in range(4):
        seg = d[start:]
        m = len(seg)
        if m < 2:
            break
        total = seg.sum()
        sst = float(np.sum((seg - total / m) ** 2))
        if sst <= 0.0:
            break
        left = np.cumsum(seg)[:-1]  # sums of seg[:k] for k = 1..m-1
        k = np.arange(1, m, dtype=float)
        right = total - left
        gain = left**2 / k + right**2 / (m - k) - total**2 / m
        # A quiet tail says "growth stopped" only once it outlasts the left part's rhythm:
        # otherwise the pause between two chunks of a coarse series would end every leak.
        events_left = np.maximum(np.cumsum(seg > 0)[:-1], 1)
        slower = right / (m - k) < left / k
        too_short = (m - k) < np.maximum(4.0, 3.0 * k / events_left)
        gain[slower & too_short] = -np.inf
        best = int(np.argmax(gain))
        # keep the split when the shift in mean stands out of the residual scatter by more
        # than the best of m chance splits would (an F statistic against a BIC-like bar)
        resid = max(sst - float(gain[best]), 0.0) / max(m - 2, 1)
        if not np.isfinite(gain[best]) or gain[best] <= 0:
            break
        if resid > 0 and gain[best] / resid < SPLIT_F_BASE + SPLIT_F_PER_LOG * math.log(m):
            break
        start += best + 1
    return start


def _longest_release(x: np.ndarray, floor: np.ndarray, tol: float) -> int:
    """Longest stretch (readings) that memory stayed above the floor before it was given back.

    That is how long this run holds memory it later frees (a sawtooth's tooth, gradients
    between micro-steps, the reserve between two ``empty_cache`` calls): the floor of the
    last that many readings is not settled yet.
    """
    above = (x - floor) > tol
    if not above.any():
        return 0
    edges = np.diff(np.concatenate(([0], above.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return int((ends - starts).max())


def _thin(n: int, limit: int = MAX_STAT_POINTS) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def detect_growth(
    pos: Any,
    x: Any,
    *,
    capacity: Optional[float] = None,
    level: Optional[float] = None,
    transient: float = 0.0,
    seconds_per_unit: Optional[float] = None,
    min_growth: float = 0.0,
    result: Optional[Growth] = None,
) -> Growth:
    """Find the current growth regime of ``x`` over ``pos`` and judge it.

    ``level`` is what counts against ``capacity`` now (default: the last reading);
    ``transient`` is added to it (a step's working set above what the step keeps).
    ``seconds_per_unit`` converts position units to seconds (1 for time series, the step
    period for step series, None when unknown: then "actionable" cannot rule out a slow
    leak and follows "leak"). ``min_growth``: growth below it is never a leak (what a coarse
    series cannot tell from normal creep).
    """
    g = result if result is not None else Growth()
    pos, x = _clean(_as_array(pos), _as_array(x))
    n = len(x)
    g.capacity = None if capacity is None else float(capacity)
    if n < 3:
        g.reason = "too few readings"
        return g
    dx = np.diff(x)
    # noise of a reading-to-reading change; 0 for the deterministic boundary readings
    sigma = 1.4826 * float(np.median(np.abs(dx - np.median(dx))))
    tol = 2.0 * sigma
    floor = np.minimum.accumulate(x[::-1])[::-1]

    cur_level = float(x[-1]) if level is None else float(level)
    g.level = cur_level + float(transient)
    if capacity is not None:
        g.headroom = float(capacity) - g.level

    # Judge the floor only where it is settled: the last readings may still be given back,
    # as the longest such release seen in this run says.
    settled = n - _longest_release(x, floor, tol)
    if settled < 3:
        settled = n
    verdict = _judge(pos, x, floor, settled, tol, sigma, g, seconds_per_unit, min_growth)
    if not verdict.leak and settled == n:
        # The newest readings may be a step change (an eval spike read at the boundary, a
        # copy switched on) that is not a trend itself and must not hide one before it.
        a = _regime_bounds(floor, settled, tol)[0]
        if 3 <= a < n - 1 and int(np.count_nonzero(np.diff(floor[a:]) > tol)) < MIN_INCREMENTS:
            before = _judge(pos, x, floor, a + 1, tol, sigma, copy.copy(g), seconds_per_unit, min_growth)
            if before.leak:
                for name in Growth.__dataclass_fields__:
                    setattr(g, name, getattr(before, name))
                g.reason += " (before a step change in the newest readings)"
    return g


def _regime_bounds(floor: np.ndarray, end: int, tol: float) -> tuple[int, np.ndarray, np.ndarray]:
    """Start of the latest growth regime in ``floor[:end]``, its increments and event flags."""
    f = floor[:end]
    d = np.diff(f)
    if tol > 0:  # count an increment only per `tol` of cumulative rise: noise makes small ones
        q = np.floor((f - f[0]) / tol)
        ev = np.diff(q) > 0
    else:
        ev = d > 0
    start = _regime_start(d)
    # A long pause inside the regime means separate episodes (a warm-up, later a one-time
    # step up), not one steady leak: only what came after the last such pause counts.
    ev_at = np.flatnonzero(ev[start:])
    if len(ev_at) >= 2:
        gaps = np.diff(ev_at)
        pause = max(MIN_PAUSE, PAUSE_FACTOR * float(np.median(gaps)))
        long_gaps = np.flatnonzero(gaps > pause)
        if len(long_gaps):
            start += int(ev_at[long_gaps[-1] + 1])
    return start, d[start:], ev[start:]


def _judge(
    pos: np.ndarray,
    x: np.ndarray,
    floor: np.ndarray,
    end: int,
    tol: float,
    sigma: float,
    g: Growth,
    seconds_per_unit: Optional[float],
    min_growth: float,
) -> Growth:
    """The verdict on the regime of ``floor[:end]``; fills and returns ``g``."""
    a, seg, ev_seg = _regime_bounds(floor, end, tol)
    last = end - 1
    span = last - a
    g.evidence = int(span)
    g.growth = float(floor[last] - floor[a])
    g.increments = int(ev_seg.sum())
    g.rate, g.to_oom, g.seconds_to_oom, g.onset, g.trend_p, g.required = 0.0, None, None, None, None, None
    g.leak = g.actionable = False
    g.bytes_per_second = 0.0 if seconds_per_unit is not None else None
    if g.growth <= 0 or g.increments == 0:
        g.reason = "no memory kept across readings"
        return g

    # rate: Theil–Sen over the regime's floor (robust to steps and to a spike at the end)
    idx = a + _thin(span + 1)
    average = float((floor[last] - floor[a]) / max(pos[last] - pos[a], 1e-12))
    slope = float(stats.theilslopes(floor[idx], pos[idx]).slope) if len(idx) >= 3 else average
    if slope <= 0:  # a staircase seen through few points: the median pair is flat
        slope = average
    g.rate = slope
    unit = float(np.median(np.diff(pos[max(0, end - 257) : end]))) or 1.0  # position units per reading
    if seconds_per_unit is not None:
        g.bytes_per_second = slope / seconds_per_unit
    g.onset = float(pos[a + 1] if a > 0 else pos[0])
    readings_to_oom = math.inf
    if g.headroom is not None:
        g.to_oom = max(0.0, g.headroom) / slope
        if seconds_per_unit is not None:
            g.seconds_to_oom = g.to_oom * seconds_per_unit
        readings_to_oom = g.to_oom / unit

    reasons = []
    if g.growth <= 4.0 * sigma:
        reasons.append("growth within noise")
    if g.growth < min_growth:
        reasons.append(f"grew {g.growth / 2**20:.0f} MiB, under the {min_growth / 2**20:.0f} MiB this series can resolve")
    if g.increments < MIN_INCREMENTS:
        reasons.append(f"{g.increments} increment(s): a step change, not a trend")
    if float(seg.max()) > MAX_INCREMENT_SHARE * g.growth:
        reasons.append("one increment dominates: a step change")
    ev_at = np.flatnonzero(ev_seg)
    if len(ev_at):
        trailing = len(seg) - 1 - int(ev_at[-1])
        gaps = np.diff(ev_at)
        rhythm = float(np.median(gaps)) if len(gaps) else 1.0
        if trailing > max(3.0, 3.0 * rhythm):
            reasons.append("growth stopped")
    # a leak keeps its pace; an allocator reserve that settles (variable shapes, warm-up)
    # grows fast first and then barely: compare the regime's two halves (by position)
    mid = int(np.searchsorted(pos[:end], 0.5 * (pos[a] + pos[last])))
    mid = min(max(mid, a), last)
    first_half = float(floor[mid] - floor[a])
    second_half = float(floor[last] - floor[mid])
    if first_half > 0 and second_half < MIN_PACE_RATIO * first_half:
        reasons.append("growth slowing down: settling, not leaking")
    if len(idx) >= 4:
        tau = stats.kendalltau(pos[idx], x[idx], alternative="greater")
        g.trend_p = float(tau.pvalue) if tau.pvalue == tau.pvalue else 1.0
    else:
        g.trend_p = 1.0
    if g.trend_p > TREND_ALPHA:
        reasons.append(f"no significant trend (p={g.trend_p:.2g})")
    g.required = required_evidence(readings_to_oom)
    if span < g.required:
        reasons.append(f"{span} readings of growth, {g.required:.0f} needed at this urgency")
    if reasons:
        g.reason = "; ".join(reasons)
        # no forecast without a leak; a growth that is over (a step change, a full cache)
        # has no rate either, one still too short to judge keeps its estimate
        g.to_oom = g.seconds_to_oom = None
        if any(r.startswith(("growth stopped", "one increment", "growth slowing")) for r in reasons) or g.increments < MIN_INCREMENTS:
            g.rate = 0.0
            if g.bytes_per_second is not None:
                g.bytes_per_second = 0.0
        return g
    g.leak = True
    if g.seconds_to_oom is not None:
        g.actionable = g.seconds_to_oom <= ACTIONABLE_SECONDS
    else:
        g.actionable = True  # no clock or no capacity: nothing shows it is slow
    g.reason = "leak" if g.actionable else "slow leak: would not fill the memory within 24 h"
    return g


# --------------------------------------------------------------------------- per step


def step_transient(allocated: Any, peak: Any) -> float:
    """Largest in-step excess over what a step keeps, from the running ``peak_allocated``.

    A new peak set during step ``i`` happened while that step's working set was live on top
    of its retained memory; ``peak[i] - allocated[i]`` measures that working set.
    """
    a = _as_array(allocated)
    p = _as_array(peak)
    if len(p) != len(a) or len(p) == 0:
        return 0.0
    ok = np.isfinite(p) & np.isfinite(a)
    if not ok.any():
        return 0.0
    p, a = p[ok], a[ok]
    new = np.ones(len(p), dtype=bool)
    new[1:] = p[1:] > p[:-1]
    excess = (p - a)[new]
    return float(max(0.0, excess.max())) if len(excess) else 0.0


def step_seconds(t: Any) -> Optional[float]:
    """Median seconds per step from the steps' start times (recent steps weigh in)."""
    if t is None:
        return None
    arr = _as_array(t)
    arr = arr[np.isfinite(arr) & (arr > 0)]
    if len(arr) < 2:
        return None
    dt = np.diff(arr[-513:])
    dt = dt[dt > 0]
    return float(np.median(dt)) if len(dt) else None


def analyze_steps(
    steps: Any,
    allocated: Any,
    *,
    reserved: Any = None,
    capacity: Optional[float] = None,
    t: Any = None,
    peak: Any = None,
    alloc_retries: Any = None,
) -> StepsReport:
    """Leak verdict on ``memory_allocated()`` read after every optimizer step.

    ``capacity``: the memory this process may use (bytes); ``t``: each step's start time
    (Unix seconds) for per-second rates; ``peak``: the running ``peak_allocated`` for the
    step's transient working set; ``reserved``/``alloc_retries`` feed the fragmentation
    check, which makes the forecast count the allocator's reserve when it is fragmented.
    """
    pos = _as_array(steps)
    x = _as_array(allocated)
    report = StepsReport()
    if len(pos) != len(x):
        raise ValueError("steps and allocated differ in length")
    ok = np.isfinite(pos) & np.isfinite(x)
    order = np.argsort(np.where(ok, pos, np.inf), kind="stable")[: int(ok.sum())]

    def aligned(values: Any) -> Optional[np.ndarray]:
        if values is None:
            return None
        arr = _as_array(values)
        return arr[order] if len(arr) == len(pos) else None

    pos, x = pos[order], x[order]
    res, pk, tt, rt = aligned(reserved), aligned(peak), aligned(t), aligned(alloc_retries)
    if not len(x):
        report.reason = "too few readings"
        return report
    transient = step_transient(x, pk) if pk is not None else 0.0
    level = None
    last_res = None
    if res is not None and np.isfinite(res).any():
        last_res = float(res[np.isfinite(res)][-1])
    if res is not None and capacity:
        report.fragmentation = fragmentation_check(x, res, capacity, retries=rt)
    if last_res is not None:
        if report.fragmentation and report.fragmentation.get("fragmented"):
            # allocated-based forecasts are far off here: the reserve meets the limit first
            level = max(last_res - transient, float(x[-1]))
        elif pk is None:
            # no peak readings: the reserve is the best stand-in for a step's working set
            level = max(last_res, float(x[-1]))
    detect_growth(pos, x, capacity=capacity, level=level, transient=transient, seconds_per_unit=step_seconds(tt), result=report)
    report.current_step = float(pos[-1])
    return report


def analyze_time(
    t: Any,
    used: Any,
    *,
    capacity: Optional[float] = None,
    device_used: Any = None,
    min_growth: float = NVML_MIN_GROWTH,
) -> TimeReport:
    """Leak verdict on one process's memory over time (NVML ``used``), rates per second.

    ``device_used`` (the whole card's used memory at the same times) sets the level that
    counts against ``capacity``: other processes' memory fills the card too.
    """
    tt = _as_array(t)
    u = _as_array(used)
    level = None
    if device_used is not None:
        du = _as_array(device_used)
        du = du[np.isfinite(du)]
        if len(du):
            level = float(du[-1])
    return detect_growth(tt, u, capacity=capacity, level=level, seconds_per_unit=1.0, min_growth=min_growth, result=TimeReport())


def analyze_nvml(
    rows: Sequence[Mapping[str, Any]],
    *,
    capacity: Optional[float] = None,
    pid: Optional[int] = None,
    min_samples: int = 3,
) -> list[dict[str, Any]]:
    """Per-process verdicts from NVML samples (``{"t", "mem_used", "mem_total", "procs"}``).

    Each pid is judged on its own ``used`` series, so a leaking process that shares the card
    with a healthy one is the one blamed; the card's total use sets the headroom.
    """
    series: dict[int, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    dev_t: list[float] = []
    dev_used: list[float] = []
    cap = capacity
    for row in rows:
        ts = row.get("t")
        if ts is None:
            continue
        procs = row.get("procs") or []
        total_used = row.get("mem_used")
        if total_used is None:
            total_used = sum(p.get("used") or 0 for p in procs)
        dev_t.append(float(ts))
        dev_used.append(float(total_used))
        if cap is None and row.get("mem_total"):
            cap = float(row["mem_total"])
        for p in procs:
            if p.get("used") is None or p.get("pid") is None:
                continue
            if pid is not None and int(p["pid"]) != pid:
                continue
            s = series[int(p["pid"])]
            s[0].append(float(ts))
            s[1].append(float(p["used"]))
    out = []
    for p, (ts, us) in sorted(series.items()):
        if len(ts) < min_samples:
            rep = TimeReport(capacity=cap, reason="too few samples")
        else:
            rep = analyze_time(ts, us, capacity=cap, device_used=dev_used)
        out.append({"pid": p, **rep.to_json()})
    return out


# --------------------------------------------------------------------------- fragmentation


def fragmentation_check(
    allocated: Any,
    reserved: Any,
    capacity: Optional[float],
    *,
    retries: Any = None,
    near: float = 0.9,
    slack: float = 0.3,
) -> dict[str, Any]:
    """Near-OOM from fragmentation: the reserve close to the capacity while much less of it
    is allocated, and the allocator retrying (freeing its cache to satisfy a request).

    There, forecasts from ``allocated`` are badly wrong: the next large block fails although
    the sum of free bytes would hold it.
    """
    a = _as_array(allocated)
    r = _as_array(reserved)
    ok = np.isfinite(a) & np.isfinite(r)
    a, r = a[ok], r[ok]
    out: dict[str, Any] = {"fragmented": False, "message": None}
    if not len(r) or not capacity:
        return out
    res, alloc = float(r[-1]), float(a[-1])
    waste = (res - alloc) / res if res > 0 else 0.0
    rising = False
    if retries is not None:
        rr = _as_array(retries)
        rr = rr[np.isfinite(rr)]
        if len(rr) >= 2:
            window = rr[-min(len(rr), 200):]
            rising = bool(window[-1] > window[0])
    out.update(
        reserved=res,
        allocated=alloc,
        capacity=float(capacity),
        reserved_share=res / float(capacity),
        unallocated_share=waste,
        retries_rising=rising,
    )
    if res >= near * float(capacity) and waste >= slack and (rising or retries is None):
        out["fragmented"] = True
        out["message"] = (
            f"Fragmentation: the allocator holds {res / 2**30:.1f} GiB of {float(capacity) / 2**30:.1f} GiB "
            f"but only {alloc / 2**30:.1f} GiB is allocated"
            + (", and it is retrying allocations" if rising else "")
            + ". An out-of-memory can come long before allocated memory reaches the limit; "
            "set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True before the process starts."
        )
    return out


def analyze_fragmentation(steps: Sequence[Mapping[str, Any]], limit: Optional[float]) -> dict[str, Any]:
    """``fragmentation_check`` over probe records (``*.iters.jsonl`` dicts)."""
    limit = limit or next((s.get("limit") for s in reversed(steps) if s.get("limit")), None)
    return fragmentation_check(
        [s.get("allocated") for s in steps],
        [s.get("reserved") for s in steps],
        limit,
        retries=[s.get("alloc_retries") for s in steps],
    )


# --------------------------------------------------------------------------- per cell


def analyze_cells(cells: Sequence[Mapping[str, Any]], *, min_runs: int = 3, min_bytes: float = 1 << 20) -> Optional[dict[str, Any]]:
    """Cells that keep more memory after every run of the same cell.

    Re-running a cell that returns (or displays) a tensor keeps the old one alive through
    IPython's output history (``Out``, ``_``, ``__``); a cell that raises keeps its frames'
    tensors alive through the stored traceback. Records: ``{"cell", "allocated", ...}`` in
    execution order, optionally ``"error": bool``.
    """
    # what each run kept = allocated after it - allocated after the run before it (any cell)
    kept_by: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    prev: Optional[float] = None
    for rec in cells:
        cid, alloc = rec.get("cell"), rec.get("allocated")
        if alloc is None:
            continue
        if cid is not None:
            errors[str(cid)] += bool(rec.get("error"))
            if prev is not None:
                kept_by[str(cid)].append(float(alloc) - prev)
        prev = float(alloc)
    found = []
    for cid, kept in kept_by.items():
        # the first run may build what the notebook needs; the re-runs must not keep more
        reruns = np.asarray(kept[1:])
        if len(kept) >= min_runs - 1 and len(reruns) >= min_runs - 2 and len(reruns) and np.all(reruns >= min_bytes):
            found.append({"cell": cid, "runs": len(kept), "bytes_per_run": float(np.median(reruns)), "errors": errors[cid]})
    if not found:
        return {"leaking_cells": [], "message": None}
    found.sort(key=lambda c: -c["bytes_per_run"])
    top = found[0]
    cause = (
        "its stored tracebacks hold the failed run's tensors (clear them with `%tb` off: "
        "`import sys; sys.last_traceback = None`)"
        if top["errors"]
        else "IPython's output history (`Out`, `_`, `__`) keeps what each run returned"
    )
    return {
        "leaking_cells": found,
        "message": (
            f"Each run of cell {top['cell']} keeps {top['bytes_per_run'] / 2**20:.0f} MiB more GPU memory: "
            f"{cause}. `%reset -f out` frees the output history; end the cell with `;` or return no tensor."
        ),
    }


# --------------------------------------------------------------------------- triage


def _user_frame(frames: Sequence[Mapping[str, Any]], skip: Sequence[str]) -> Optional[Mapping[str, Any]]:
    for fr in frames or ():
        name = str(fr.get("filename", ""))
        if not name or any(s in name for s in skip):
            continue
        return fr
    return None


DEFAULT_SKIP = ("/torch/", "\\torch\\", "<frozen", "/site-packages/", "/dist-packages/", "/lib/python3")


#: The probe allocates (and frees) one tiny tensor from this function at every step boundary
#: while it records, so the history can be cut into steps exactly.
STEP_MARKER = "_triage_step_marker"


def _is_marker(ev: Mapping[str, Any]) -> bool:
    return any(fr.get("name") == STEP_MARKER for fr in ev.get("frames") or ())


def _step_of_events(events: Sequence[Mapping[str, Any]], steps: int) -> list[int]:
    """Which step each event belongs to: cut at the probe's markers, or, in a history without
    them, into ``steps`` equal runs of events (a training loop does the same work each step)."""
    marks = [i for i, ev in enumerate(events) if ev.get("action") == "alloc" and _is_marker(ev)]
    if marks:
        # events from one marker up to the next are one step (those before the first: step 0)
        return [max(0, bisect.bisect_right(marks, i) - 1) for i in range(len(events))]
    n = max(1, len(events))
    return [min(steps - 1, i * steps // n) for i in range(len(events))]


def _short_place(filename: str, line: Any) -> str:
    """``train.py:42``; a notebook cell (ipykernel compiles each cell to a file named by its
    hash, ``/tmp/ipykernel_<pid>/<hash>.py``) reads ``cell line 8``."""
    if re.search(r"ipykernel_\d+[/\\]\d+\.py$", filename):
        return f"cell line {line}"
    return f"{filename.replace(chr(92), '/').rsplit('/', 1)[-1]}:{line}"


def triage_snapshot(
    snapshot: Mapping[str, Any],
    steps: int,
    *,
    device: Optional[int] = None,
    skip: Sequence[str] = DEFAULT_SKIP,
    source_line: Optional[Callable[[str, int], Optional[str]]] = None,
) -> dict[str, Any]:
    """Name the allocation stacks whose tensors survive every step.

    ``snapshot`` is ``torch.cuda.memory._snapshot()`` taken after recording the allocation
    history (``torch.cuda.memory._record_memory_history()``) for ``steps`` optimizer steps:
    every allocation in its ``device_traces`` that was never freed by the end survived. They
    are grouped by the innermost frame outside torch and the standard library. A leak leaves
    survivors from every step; what the last step still references (its gradients, its loss)
    survives from one step only, so groups are ranked by the steps they survive from, then by
    bytes. ``source_line(filename, line)`` may return the code text.
    """
    traces = snapshot.get("device_traces") or []
    if device is not None:
        traces = [traces[device]] if device < len(traces) else []
    steps = max(1, int(steps))
    alive: dict[int, tuple[Mapping[str, Any], int]] = {}
    for dev_events in traces:
        events = list(dev_events or [])
        step_of = _step_of_events(events, steps)
        for ev, k in zip(events, step_of):
            action = ev.get("action")
            addr = ev.get("addr")
            if addr is None:
                continue
            if action == "alloc":
                if not _is_marker(ev):
                    alive[int(addr)] = (ev, k)
            elif action in ("free_requested", "free_completed", "free"):
                alive.pop(int(addr), None)
    groups: dict[str, dict[str, Any]] = {}
    for ev, k in alive.values():
        fr = _user_frame(ev.get("frames") or [], skip)
        if fr is None:
            key, where, label, code = "<no user frame>", "<inside torch>", "inside torch (no Python frame of yours)", None
        else:
            where = f"{fr.get('filename')}:{fr.get('line')} {fr.get('name', '')}".strip()
            key = where
            code = source_line(str(fr.get("filename")), int(fr.get("line") or 0)) if source_line else None
            label = f"`{_short_place(str(fr.get('filename')), fr.get('line'))}" + (f" {code.strip()}`" if code else "`")
        grp = groups.setdefault(key, {"where": where, "code": code, "label": label, "bytes": 0, "count": 0, "_steps": set()})
        grp["bytes"] += int(ev.get("size") or 0)
        grp["count"] += 1
        grp["_steps"].add(k)
    for grp in groups.values():
        grp["steps_kept"] = len(grp.pop("_steps"))
        grp["bytes_per_step"] = grp["bytes"] / steps
        # one survivor a step is the leak's signature (the first step may differ: warm-up)
        grp["every_step"] = grp["steps_kept"] >= max(2, steps - 1)
    ranked = sorted(groups.values(), key=lambda g: (-g["steps_kept"], -g["bytes"]))
    message = None
    if ranked and ranked[0]["bytes"] > 0:
        top = ranked[0]
        label = top.pop("label")
        if top["every_step"]:
            message = f"{label} keeps {human_bytes(top['bytes_per_step'])} a step"
        else:
            message = f"{label} kept {human_bytes(top['bytes'])} over {steps} steps"
    for grp in ranked:
        grp.pop("label", None)
    return {"stacks": ranked, "steps": steps, "message": message}


__all__ = [
    "ACTIONABLE_SECONDS",
    "Growth",
    "StepsReport",
    "TimeReport",
    "analyze_cells",
    "analyze_fragmentation",
    "analyze_nvml",
    "analyze_steps",
    "analyze_time",
    "detect_growth",
    "fragmentation_check",
    "required_evidence",
    "step_seconds",
    "step_transient",
    "triage_snapshot",
]
