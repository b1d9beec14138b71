"""ONE function from probe records to a leak verdict: the CLI, the kernel tracker and the API
all call ``verdict_from_records``, so they cannot disagree on the same trace.

The verdict holds the detector's fields (``detector.StepsReport.to_json``) plus ``source``,
``current_step``, ``skipped`` (records that failed validation), the one-line ``message`` and
the chart's ``forecast`` line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from .records import StepTrace, steps_from_records
from .wording import leak_message

#: Used only when neither the caller nor the records say how much memory there is.
FALLBACK_CAPACITY = 80 * 2**30
#: Fewer valid steps than this: no verdict yet.
MIN_STEPS = 3


def capacity_of(trace: StepTrace, capacity: Optional[float], default: Optional[float]) -> tuple[float, Optional[str]]:
    """The memory available: given, else what the records say (the probe's limit, the trace's
    ``mem_total``), else ``default`` (a meta file's limit, a card size recorded beside the trace),
    else 80 GiB with a note saying so."""
    for value in (capacity, trace.limit, trace.mem_total, default):
        if value:
            return float(value), None
    note = f"no capacity in the trace: assuming {FALLBACK_CAPACITY / 2**30:.0f} GiB (use --capacity)"
    return float(FALLBACK_CAPACITY), note


def verdict_from_trace(
    trace: StepTrace, capacity: Optional[float] = None, default_capacity: Optional[float] = None
) -> Optional[dict[str, Any]]:
    """The verdict on validated step columns; None with fewer than ``MIN_STEPS`` steps."""
    if len(trace) < MIN_STEPS:
        return None
    from .detector import analyze_steps  # scipy: imported on first use, not at server start

    cap, note = capacity_of(trace, capacity, default_capacity)
    report = analyze_steps(
        trace.steps,
        trace.allocated,
        reserved=trace.reserved,
        capacity=cap,
        t=trace.t,
        peak=trace.peak,
        alloc_retries=trace.alloc_retries,
    ).to_json()
    report["source"] = "steps"
    report["current_step"] = int(trace.steps.max())
    report["skipped"] = trace.skipped
    report["capacity_note"] = note
    report["message"] = leak_message(report)
    report["forecast"] = forecast_line(report, "step", float(report["current_step"]), report.get("steps_to_oom"))
    return report


def verdict_from_records(
    records: Sequence[Any], capacity: Optional[float] = None, default_capacity: Optional[float] = None
) -> Optional[dict[str, Any]]:
    """Leak verdict on raw step records (validated here; bad ones are skipped and counted)."""
    return verdict_from_trace(steps_from_records(list(records)), capacity, default_capacity)


def forecast_line(report: dict[str, Any], axis: str, now: float, to_oom: Optional[float]) -> Optional[dict[str, Any]]:
    """The chart's dashed line: from the memory counted against the limit now to the limit at
    the forecast OOM, on the chart's x axis (steps, or Unix seconds)."""
    level, capacity = report.get("level"), report.get("capacity")
    if not report.get("actionable") or to_oom is None or level is None or not capacity:
        return None
    return {"axis": axis, "x0": now, "y0": float(level), "x1": now + float(to_oom), "y1": float(capacity)}


def nvml_verdict(t: Any, used: Any, capacity: Optional[float], device_used: Any = None) -> Optional[dict[str, Any]]:
    """Leak verdict on one process's (or kernel's) NVML memory over time (no probe needed)."""
    if len(t) < 10 or not capacity:
        return None
    from .detector import analyze_time

    report = analyze_time(t, used, capacity=capacity, device_used=device_used).to_json()
    report["source"] = "nvml"
    report["message"] = leak_message(report)
    report["forecast"] = forecast_line(report, "time", float(t[-1]), report.get("seconds_to_oom"))
    return report
