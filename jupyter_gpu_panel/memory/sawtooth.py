"""Leaks under a sawtooth: generation-like loops judged on the floor of each period. Pure, no I/O.

Token-by-token generation reads like a saw: a sequence's KV cache (and whatever else it
collects, logits, scores) grows a little every iteration and is given back when the sequence
ends. A loop that keeps each finished sequence's cache leaks one cache per sequence, but the
drop at each sequence's end still gives back most of the tooth, so ``growth``'s floor (the
memory never given back later) is a staircase with one step per sequence and long flat treads:
its regime split, "growth stopped" and pace rules, written for series that grow at every few
readings, flip the verdict on and off with each tooth and end on "no leak" just before the
OOM (issue 19 item 3).

Here the periods are found from the drops themselves: a reading that gives back at least
``RETURN_SHARE`` of what the memory gained since its period began (and more than the series'
step noise) starts a new period. The floor of a period is its minimum (the memory at the start
of the sequence). The floors' latest regime (``floor_regime_start``: the memory freed, or a
leak that began mid-run, starts a new one) is a leak when it rose through ``MIN_INCREMENTS``
separate periods (more when the OOM is far), beyond the floors' own jitter, with a significant
trend, and still rises. The rate is the floors' Theil–Sen slope per position; the level counted
against the capacity is the newest floor plus the tooth of the last periods, since the OOM
comes at a tooth's top.

Only a series that is a saw is judged here: periods of at least ``MIN_PERIOD`` readings whose
tooth is a ramp (carried by several increments, not one spike such as an eval batch read at a
boundary). ``judge_saw`` weighs this verdict against ``growth``'s (``detector.analyze_steps``
calls it): a leak under a saw stays flagged until the run ends or the floors come down
(the memory was freed); a tooth longer than the ones before it is no leak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import stats

from .growth import (
    ACTIONABLE_SECONDS,
    MAX_INCREMENT_SHARE,
    MAX_STAT_POINTS,
    MIN_INCREMENTS,
    SPLIT_F_BASE,
    SPLIT_F_PER_LOG,
)
from .series import Growth, thin_indices

#: A drop that gives back at least this share of what its period gained starts a new period
#: (with the drop beyond the step noise, below). A generation that keeps its KV cache and gives
#: back only its logits still drops this much; one that gives back nothing is a ramp, whose
#: floor rises every reading and ``growth`` sees directly.
RETURN_SHARE = 0.1
#: A drop must also exceed this many times the median absolute reading-to-reading change.
DROP_STEPS = 4.0
#: A period shorter than this many readings is not a tooth (a noisy series drops everywhere).
MIN_PERIOD = 4
#: Closed periods a saw needs before its floors are judged (a leak needs ``MIN_INCREMENTS``
#: rises of its floor, so at least one more).
MIN_PERIODS = 2
#: Share of closed periods whose tooth must be a ramp (``MIN_INCREMENTS`` rises, none more
#: than ``MAX_INCREMENT_SHARE`` of the tooth).
RAMP_SHARE = 0.75
#: One-sided significance of Kendall's tau on the regime's floors. Looser than ``growth``'s
#: per-reading test: the floors are few (one a sequence), and 4 floors rising one after the
#: other (p = 1/24) must do when the OOM is a few sequences away.
FLOOR_TREND_ALPHA = 0.05
#: Periods of floor growth needed: ``MIN_INCREMENTS`` when the OOM is at most ``URGENT_PERIODS``
#: periods away, ``PER_DECADE`` more for every ten times that, at most ``MAX_NEEDED``.
URGENT_PERIODS = 30.0
PER_DECADE = 2.0
MAX_NEEDED = 8
#: The floor stopped rising once this many periods passed without an increment (at least, or
#: three times the regime's own rhythm).
STOPPED_PERIODS = 3
#: A change in the floors' steps is a leak's onset only when the steps before it were at most
#: this share of the steps after it (level floors, then rising ones).
ONSET_RATIO = 0.25
#: A saw whose floors stay level calls the growth of its open period a tooth (given back like
#: the ones before it) until that period lasts this many times the longest closed one: a
#: sequence longer than all before it is not a leak, a generation that never ends is.
TOOTH_FACTOR = 4.0


@dataclass
class Saw:
    """A saw's verdict on its floors, and what ``judge_saw`` needs to weigh it."""

    growth: Growth
    open_start: float  # position where the open (newest) period began
    open_readings: int  # readings in the open period
    longest: int  # readings in the longest closed period
    closed: int  # closed periods


def period_starts(x: np.ndarray) -> Optional[np.ndarray]:
    """Indices where each period of a saw begins (0 first), or None when ``x`` is no saw.

    O(n): the drops are found at once; only drops deep enough to be candidates are walked.
    """
    n = len(x)
    if n < MIN_PERIOD * (MIN_PERIODS + 1):
        return None
    dx = np.diff(x)
    typical = float(np.median(np.abs(dx)))
    sigma = 1.4826 * float(np.median(np.abs(dx - np.median(dx))))
    thr = max(DROP_STEPS * typical, 8.0 * sigma, 1.0)
    cand = np.flatnonzero(dx < -thr)
    if len(cand) < MIN_PERIODS or len(cand) > n // MIN_PERIOD:
        return None  # too few drops, or a noisy series that drops everywhere
    starts = [0]
    low = float(x[0])  # the period's minimum so far
    seen = 0  # readings folded into ``low``
    for j in cand.tolist():
        low = min(low, float(x[seen : j + 1].min())) if j + 1 > seen else low
        seen = j + 1
        gained = float(x[j]) - low
        if gained > thr and float(x[j] - x[j + 1]) >= RETURN_SHARE * gained:
            starts.append(j + 1)
            low, seen = float(x[j + 1]), j + 1
    out = np.asarray(starts, dtype=np.int64)
    closed = np.diff(out)  # lengths of the closed periods
    if len(closed) < MIN_PERIODS or int(closed.min()) < MIN_PERIOD:
        return None
    return out


def _is_ramp(tooth: np.ndarray) -> bool:
    """A tooth that rose over several readings, none of them most of the rise."""
    d = np.diff(tooth[: int(np.argmax(tooth)) + 1])
    rise = float(d[d > 0].sum()) if len(d) else 0.0
    if rise <= 0:
        return False
    return int(np.count_nonzero(d > 0)) >= MIN_INCREMENTS and float(d.max()) <= MAX_INCREMENT_SHARE * rise


def floor_jitter(d: np.ndarray) -> float:
    """How much the floors wobble: what they fall by from one period to the next (a sequence
    with a shorter prompt), robustly. A leak's floors never fall, a deterministic healthy saw's
    neither: 0. Fewer than 3 falls are events (the memory freed), not jitter."""
    falls = -d[d < 0]
    return 1.4826 * float(np.median(falls)) if len(falls) >= 3 else 0.0


def floor_regime_start(d: np.ndarray, jitter: float) -> int:
    """Index of the floor where the latest growth began, from the floors' steps ``d``: after
    the last fall beyond the jitter (the memory was freed), then after a change in mean that
    made the steps larger (a leak that began mid-run). A change that made them smaller is no
    new regime: floors that rise by less per period are still rising (sequences got shorter)."""
    falls = np.flatnonzero(d < -4.0 * jitter) if jitter > 0 else np.flatnonzero(d < 0)
    start = int(falls[-1]) + 1 if len(falls) else 0
    for _ in range(4):
        seg = d[start:]
        m = len(seg)
        if m < 2:
            break
        total = float(seg.sum())
        sst = float(np.sum((seg - total / m) ** 2))
        if sst <= 0.0:
            break
        left = np.cumsum(seg)[:-1]
        k = np.arange(1, m, dtype=float)
        right = total - left
        gain = left**2 / k + right**2 / (m - k) - total**2 / m
        # only an onset: floors that were level (steps a quarter of those after, or less),
        # not sequences that got longer (a leak keeps one cache a sequence, whatever its size)
        gain[left / k > ONSET_RATIO * (right / (m - k))] = -np.inf
        best = int(np.argmax(gain))
        if not np.isfinite(gain[best]) or gain[best] <= 0:
            break
        resid = max(sst - float(gain[best]), 0.0) / max(m - 2, 1)
        if resid > 0 and gain[best] / resid < SPLIT_F_BASE + SPLIT_F_PER_LOG * math.log(m):
            break
        start += best + 1
    return start


def sawtooth_growth(
    pos: np.ndarray,
    x: np.ndarray,
    *,
    capacity: Optional[float] = None,
    level: Optional[float] = None,
    transient: float = 0.0,
    seconds_per_unit: Optional[float] = None,
) -> Optional[Saw]:
    """The verdict on the floors of a saw (``pos``, ``x``: clean, sorted readings), or None
    when ``x`` is no saw. ``level``, ``transient``, ``seconds_per_unit`` as in
    ``growth.detect_growth``; the level counted is at least the newest floor plus a tooth."""
    starts = period_starts(x)
    if starts is None:
        return None
    ends = np.append(starts[1:], len(x))
    closed = len(starts) - 1
    ramps = sum(_is_ramp(x[s:e]) for s, e in zip(starts[:-1].tolist(), ends[:-1].tolist()))
    if ramps < RAMP_SHARE * closed:
        return None
    floors = np.minimum.reduceat(x, starts).astype(float)
    tops = np.maximum.reduceat(x, starts).astype(float)
    fpos = pos[starts]
    period = float(np.median(np.diff(fpos)))  # position units per period
    d = np.diff(floors)
    fsigma = floor_jitter(d)
    a = floor_regime_start(d, fsigma)
    f, p, dr = floors[a:], fpos[a:], d[a:]
    growth = float(f[-1] - f[0])
    ups = np.flatnonzero(dr > 0)

    g = Growth(capacity=None if capacity is None else float(capacity))
    closed_lengths = np.diff(starts)
    saw = Saw(g, float(pos[starts[-1]]), int(len(x) - starts[-1]), int(closed_lengths.max()), int(len(closed_lengths)))
    tooth = float(np.max((tops - floors)[max(0, closed - 4) : closed]))
    g.level = max(float(x[-1]) if level is None else float(level), float(floors[-1]) + tooth) + float(transient)
    if capacity is not None:
        g.headroom = float(capacity) - g.level
    g.growth, g.increments = growth, int(len(ups))
    g.evidence = int(len(x) - 1 - starts[a])
    g.bytes_per_second = 0.0 if seconds_per_unit is not None else None
    if growth <= 4.0 * fsigma or len(ups) == 0:
        g.reason = "sawtooth: its floor kept no more"
        return saw

    idx = thin_indices(len(f), MAX_STAT_POINTS)
    slope = float(stats.theilslopes(f[idx], p[idx]).slope) if len(idx) >= 3 else 0.0
    if slope <= 0:
        slope = growth / max(float(p[-1] - p[0]), 1e-12)
    g.rate = slope
    g.onset = float(p[1]) if len(p) > 1 else float(p[0])
    if seconds_per_unit is not None:
        g.bytes_per_second = slope / seconds_per_unit
    periods_to_oom = math.inf
    if g.headroom is not None:
        g.to_oom = max(0.0, g.headroom) / slope
        if seconds_per_unit is not None:
            g.seconds_to_oom = g.to_oom * seconds_per_unit
        periods_to_oom = g.to_oom / max(period, 1e-12)
    need = MIN_INCREMENTS + PER_DECADE * math.log10(max(periods_to_oom, 1.0) / URGENT_PERIODS)
    need = float(min(MAX_NEEDED, max(MIN_INCREMENTS, need)))
    g.required = float(math.ceil(need) * period)
    g.trend_p = float(stats.kendalltau(p, f, alternative="greater").pvalue) if len(f) >= 3 else 1.0
    if not g.trend_p == g.trend_p:  # NaN: all floors equal
        g.trend_p = 1.0

    reasons = []
    if len(ups) < need:
        reasons.append(f"sawtooth: its floor rose in {len(ups)} periods, {math.ceil(need)} needed at this urgency")
    if float(dr.max()) > MAX_INCREMENT_SHARE * growth:
        reasons.append("sawtooth: one period's step up dominates")
    gaps = np.diff(ups)
    rhythm = float(np.median(gaps)) if len(gaps) else 1.0
    if len(dr) - 1 - int(ups[-1]) >= max(STOPPED_PERIODS, 3.0 * rhythm):
        reasons.append("sawtooth: its floor stopped rising")
    if g.trend_p > FLOOR_TREND_ALPHA:
        reasons.append(f"sawtooth: no significant trend in its floors (p={g.trend_p:.2g})")
    if reasons:
        g.reason = "; ".join(reasons)
        g.to_oom = g.seconds_to_oom = None
        return saw
    g.leak = True
    g.actionable = g.seconds_to_oom <= ACTIONABLE_SECONDS if g.seconds_to_oom is not None else True
    kept = f"the floor of each period (~{period:.0f} readings) rose {len(ups)} times"
    g.reason = f"leak under a sawtooth: {kept}" if g.actionable else "slow leak: would not fill the memory within 24 h"
    return saw


def judge_saw(
    report: Growth,
    pos: np.ndarray,
    x: np.ndarray,
    *,
    capacity: Optional[float] = None,
    level: Optional[float] = None,
    transient: float = 0.0,
    seconds_per_unit: Optional[float] = None,
) -> None:
    """Weigh ``growth``'s verdict in ``report`` against the saw's, in place, when ``x`` is a saw:

    * the floors rise: the saw's leak, with the floors' rate (``growth`` loses it between teeth,
      and where it sees it, it measures the newest tooth's slope);
    * ``growth`` found a leak only in the open period, the floors show none, and that period
      is not yet ``TOOTH_FACTOR`` times the longest one: a tooth, no leak (a sequence longer
      than the ones before it). Growth inside a tooth is what every generation does, leaking
      or not: the floors are the evidence, and they are judged from the third rise on;
    * ``growth`` found a leak across periods, but the floors of more than ``MIN_PERIODS``
      closed periods do not show one (yet): no leak (floors that wobble with the prompts'
      lengths). A slow leak under a saw is then flagged after ``MAX_NEEDED`` rises at most.

    Anything else keeps ``growth``'s verdict (and series that are no saw are not touched).
    """
    saw = sawtooth_growth(
        pos, x, capacity=capacity, level=level, transient=transient, seconds_per_unit=seconds_per_unit
    )
    if saw is None:
        return
    if saw.growth.leak:
        # the floors' rate and forecast, whatever ``growth`` says: its own, when it sees the
        # leak at all, is the slope of the newest tooth (the sequence's cache and logits)
        _adopt(report, saw.growth)
        return
    if not report.leak:
        return
    onset = report.onset if report.onset is not None else -math.inf
    if onset >= saw.open_start and saw.open_readings <= TOOTH_FACTOR * saw.longest:
        _adopt(report, saw.growth)
        report.reason = (
            f"sawtooth: the newest period ({saw.open_readings} readings) grows like the teeth before it "
            f"(longest {saw.longest} readings); {saw.growth.reason}"
        )
    elif onset < saw.open_start and saw.closed > MIN_PERIODS:
        # ``growth``'s floor across periods is the floors' staircase, judged there on readings
        # that are mostly teeth (its trend test, its evidence in readings): the floors, one a
        # period, are judged here at their own pace, and floors that wobble with the prompts'
        # lengths are no leak until they rise as one would
        _adopt(report, saw.growth)


def _adopt(report: Growth, verdict: Growth) -> None:
    """Copy ``verdict`` onto ``report`` (a ``Growth`` subclass such as ``StepsReport``)."""
    for name in Growth.__dataclass_fields__:
        setattr(report, name, getattr(verdict, name))
