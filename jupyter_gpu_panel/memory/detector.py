"""Leak verdicts on the two kinds of series: per step (the probe) and per time (NVML).

Each builds on ``growth.detect_growth``; the fragmentation check (``fragmentation``) makes a
steps forecast count the allocator's reserve when the pool is fragmented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .fragmentation import fragmentation_check
from .growth import NVML_MIN_GROWTH, detect_growth
from .sawtooth import judge_saw
from .series import Growth, _as_array


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
    """Leak verdict on ``memory_allocated()`` read once an iteration (``records.StepTrace``).

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
    per_second = step_seconds(tt)
    detect_growth(
        pos, x, capacity=capacity, level=level, transient=transient, seconds_per_unit=per_second, result=report
    )
    # a generation-like loop: a leak kept once a sequence hides between the teeth of its saw,
    # where the floor of each period still shows it; a tooth longer than the ones before is none
    judge_saw(report, pos, x, capacity=capacity, level=level, transient=transient, seconds_per_unit=per_second)
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
    counts against ``capacity``: other processes' memory fills the card too. Judged as a
    ``coarse`` series (``growth``: the warm-up's segments cut off, growth carried by enough
    segments).
    """
    tt = _as_array(t)
    u = _as_array(used)
    level = None
    if device_used is not None:
        du = _as_array(device_used)
        du = du[np.isfinite(du)]
        if len(du):
            level = float(du[-1])
    report = TimeReport()
    detect_growth(  # fills the report it is given (and returns it as a Growth)
        tt,
        u,
        capacity=capacity,
        level=level,
        seconds_per_unit=1.0,
        min_growth=min_growth,
        coarse=True,
        result=report,
    )
    return report
