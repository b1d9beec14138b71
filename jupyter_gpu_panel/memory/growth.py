"""Growth detection and out-of-memory forecast on one memory series: pure, no I/O.

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
   sawtooth's tooth) must be outlasted first. Readings are the series' own: for the probe,
   iterations (a GAN's D and G steps are one reading, see ``records``), so a buffer of 16
   iterations never alarms however many optimizers step in each.
5. **Rate and forecast.** Theil–Sen slope of the floor over the regime; headroom is the
   capacity minus the current level plus the largest in-step excess seen (the transient
   working set of a step, from ``peak_allocated``), so the forecast names the step that
   will fail rather than the step where the retained memory alone reaches the limit.

Growth that stopped (issue 12). A bounded buffer (``deque(maxlen=N)``, a replay buffer, a
capped cache) grows exactly like a leak until it is full: an alarm while it fills cannot be
avoided. Once it is full the alarm clears: the newest readings are a "step change" that may
hide a leak before it only while they are fewer than the pauses that growth itself made
(``_pause_allowance``: 3x its rhythm, at least 3, at least its longest pause); and readings not
yet settled (a release may still come) must keep rising as the leak says, or the growth has
stopped (a full buffer wobbling by a few MiB makes its whole plateau look unsettled).

NVML series (``coarse``, issue 12). The reserve grows in segments at sampling times: the
run's warm-up (weights, optimizer state, first blocks: a few huge segments early in the
regime) is cut off the regime instead of making a steady leak look like "settling"; and the
growth must be carried by ``NVML_MIN_EFFECTIVE_INCREMENTS`` increments' worth (participation
ratio), since a reserve that grows for new shapes does so in a few large segments at
irregular times. A leak of 1 MiB a step or 32 MiB every 4th step is then found after about
0.3-1 GiB of growth, within 5-10 s, and the healthy recordings stay clean.

Actionable means: a leak that would exhaust the available memory within 24 h.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Optional

import numpy as np
from scipy import stats

from .series import Growth, _as_array, _clean, thin_indices

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
EVIDENCE_PER_DECADE = 8.0
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
#: NVML series only (``coarse``): the growth must be carried by at least this many increments'
#: worth (the participation ratio ``(sum d)^2 / sum d^2``): a reserve that grows for new
#: shapes or fragmentation does so in a few large segments at irregular times, a leak in a
#: steady stream (of small or large pieces alike).
NVML_MIN_EFFECTIVE_INCREMENTS = 8.0
#: NVML series only: increments larger than this many times the regime's median increment,
#: all in its first ``WARMUP_SHARE``, are the run's warm-up (weights, optimizer state, the first
#: steps' blocks) and are cut off the regime, so they neither hide nor fake a steady growth.
WARMUP_OUTLIER = 4.0
WARMUP_SHARE = 0.5
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


def detect_growth(
    pos: Any,
    x: Any,
    *,
    capacity: Optional[float] = None,
    level: Optional[float] = None,
    transient: float = 0.0,
    seconds_per_unit: Optional[float] = None,
    min_growth: float = 0.0,
    coarse: bool = False,
    result: Optional[Growth] = None,
) -> Growth:
    """Find the current growth regime of ``x`` over ``pos`` and judge it.

    ``level`` is what counts against ``capacity`` now (default: the last reading);
    ``transient`` is added to it (a step's working set above what the step keeps).
    ``seconds_per_unit`` converts position units to seconds (1 for time series, the step
    period for step series, None when unknown: then "actionable" cannot rule out a slow
    leak and follows "leak"). ``min_growth``: growth below it is never a leak (what a coarse
    series cannot tell from normal creep). ``coarse``: an NVML series (segment-sized steps at
    sampling times): its warm-up is cut off the regime and its growth must be carried by
    ``NVML_MIN_EFFECTIVE_INCREMENTS`` increments' worth.
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
    verdict = _judge(pos, x, floor, settled, tol, sigma, g, seconds_per_unit, min_growth, coarse)
    if verdict.leak and settled < n:
        # the unsettled readings may be given back, but they must not contradict the growth:
        # a buffer that is full wobbles around its level (a small release makes the whole
        # plateau look unsettled), a leak under a sawtooth keeps rising through it
        expected = g.rate * float(pos[-1] - pos[settled - 1])
        if float(x[-1] - floor[settled - 1]) < MIN_PACE_RATIO * expected:
            g.leak = g.actionable = False
            g.to_oom = g.seconds_to_oom = None
            g.rate = 0.0
            if g.bytes_per_second is not None:
                g.bytes_per_second = 0.0
            g.reason = f"growth stopped: the last {n - settled} readings kept no more"
            return g
    if not verdict.leak and settled == n:
        # The newest readings may be a step change (an eval spike read at the boundary, a
        # copy switched on) that is not a trend itself and must not hide one before it. Not
        # a plateau, though: once the readings since the growth ended outlast the pauses the
        # growth itself made, the growth has stopped (a bounded buffer is full) and the alarm
        # it raised while it filled clears.
        a = _regime_bounds(floor, settled, tol, coarse)[0]
        if 3 <= a < n - 1 and int(np.count_nonzero(np.diff(floor[a:]) > tol)) < MIN_INCREMENTS:
            since = n - 1 - a  # readings since the growth before the change ended
            if since <= _pause_allowance(floor, a + 1, tol, coarse):
                before = _judge(pos, x, floor, a + 1, tol, sigma, copy.copy(g), seconds_per_unit, min_growth, coarse)
                if before.leak:
                    for name in Growth.__dataclass_fields__:
                        setattr(g, name, getattr(before, name))
                    g.reason += " (before a step change in the newest readings)"
    return g


def _pause_allowance(floor: np.ndarray, end: int, tol: float, coarse: bool) -> float:
    """Readings a growth in ``floor[:end]`` may pause before it counts as stopped: three times
    its rhythm (the median gap between its increments), at least 3, and at least its longest
    pause."""
    _a, _seg, ev_seg = _regime_bounds(floor, end, tol, coarse)
    ev_at = np.flatnonzero(ev_seg)
    if len(ev_at) < 2:
        return 3.0
    gaps = np.diff(ev_at)
    return float(max(3.0, 3.0 * float(np.median(gaps)), float(gaps.max())))


def _regime_bounds(floor: np.ndarray, end: int, tol: float, coarse: bool = False) -> tuple[int, np.ndarray, np.ndarray]:
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
    if coarse:
        # a warm-up's few huge segments early in the regime, then a steady stream: judge the stream
        seg = d[start:]
        grew = seg[seg > 0]
        if len(grew) >= 2 * MIN_INCREMENTS:
            big = np.flatnonzero(seg > WARMUP_OUTLIER * float(np.median(grew)))
            if len(big) and big[-1] < WARMUP_SHARE * len(seg):
                start += int(big[-1]) + 1
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
    coarse: bool = False,
) -> Growth:
    """The verdict on the regime of ``floor[:end]``; fills and returns ``g``."""
    a, seg, ev_seg = _regime_bounds(floor, end, tol, coarse)
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
    idx = a + thin_indices(span + 1, MAX_STAT_POINTS)
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
        reasons.append(
            f"grew {g.growth / 2**20:.0f} MiB, under the {min_growth / 2**20:.0f} MiB this series can resolve"
        )
    if g.increments < MIN_INCREMENTS:
        reasons.append(f"{g.increments} increment(s): a step change, not a trend")
    if float(seg.max()) > MAX_INCREMENT_SHARE * g.growth:
        reasons.append("one increment dominates: a step change")
    elif coarse:
        grew = seg[seg > 0]
        n_eff = float(grew.sum()) ** 2 / float(np.sum(grew**2)) if len(grew) else 0.0
        if n_eff < NVML_MIN_EFFECTIVE_INCREMENTS:
            reasons.append(f"grew in ~{n_eff:.0f} large segments: the allocator's reserve settling looks the same")
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
        if (
            any(r.startswith(("growth stopped", "one increment", "growth slowing")) for r in reasons)
            or g.increments < MIN_INCREMENTS
        ):
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
