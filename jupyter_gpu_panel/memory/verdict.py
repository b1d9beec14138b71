"""ONE function from probe records to a leak verdict: the CLI, the kernel tracker and the API
all call ``verdict_from_records``, so they cannot disagree on the same trace.

The verdict holds the detector's fields (``detector.StepsReport.to_json``) plus ``source``,
``current_step``, ``skipped`` (records that failed validation), the one-line ``message`` and
the chart's ``forecast`` line.

A "step" here is an iteration of the loop (``records.StepTrace``): several optimizers stepping
in one iteration (a GAN's G and D) count once, and ``steps_per_iteration`` says how many hook
calls made one (null when the records do not say: recorded traces, older probes).
``step_source`` says what the iterations are: ``optimizer`` steps, ``forward`` calls of a
loop without an optimizer, or ``timer``: the probe's clock in code that runs neither, whose
positions are seconds (``bytes_per_step`` is then bytes a second).

Headroom is bounded by what this process can still get now: the process cap the probe re-reads
at every record (``set_per_process_memory_fraction``), and the device's free memory plus this
process's own reserve (other processes on the card take memory too). ``headroom_bound`` names
the bound that applied: ``process cap``, ``device free``, or ``capacity`` (given by the caller,
or the card's size when the records hold neither).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from . import protocol as P
from .records import StepTrace, steps_from_records
from .wording import leak_message

#: Used only when neither the caller nor the records say how much memory there is.
FALLBACK_CAPACITY = 80 * 2**30
#: Fewer valid steps than this: no verdict yet.
MIN_STEPS = 3


#: ``headroom_bound`` values.
BOUND_PROCESS_CAP = "process cap"
BOUND_DEVICE_FREE = "device free"
BOUND_CAPACITY = "capacity"
HEADROOM_BOUNDS = (BOUND_PROCESS_CAP, BOUND_DEVICE_FREE, BOUND_CAPACITY)
#: ``step_source`` values: what one iteration's records come from.
STEP_SOURCES = {P.KIND_STEP: "optimizer", P.KIND_FORWARD: "forward", P.KIND_TIME: "timer"}


def capacity_bound(
    trace: StepTrace, capacity: Optional[float], default: Optional[float]
) -> tuple[float, Optional[str], str]:
    """The memory this process can reach now, the note when it was assumed, and which bound
    applied. ``capacity`` (the caller's, e.g. ``--capacity``) wins outright; else the tighter of
    the process cap the probe recorded last (``limit``) and the device's free memory plus this
    process's reserve at the newest ``free`` reading; else the trace's ``mem_total``, else
    ``default`` (a meta file's limit, a card size recorded beside the trace), else 80 GiB."""
    if capacity:
        return float(capacity), None, BOUND_CAPACITY
    bounds: list[tuple[float, str]] = []
    if trace.limit:
        bounds.append((float(trace.limit), BOUND_PROCESS_CAP))
    if trace.free is not None and trace.free_reserved is not None:
        bounds.append((float(trace.free) + float(trace.free_reserved), BOUND_DEVICE_FREE))
        if not trace.limit:  # the card's size still bounds it when no cap was recorded
            for value in (trace.mem_total, default):
                if value:
                    bounds.append((float(value), BOUND_CAPACITY))
                    break
    if bounds:
        value, bound = min(bounds, key=lambda b: b[0])
        return value, None, bound
    for value in (trace.mem_total, default):
        if value:
            return float(value), None, BOUND_CAPACITY
    note = f"no capacity in the trace: assuming {FALLBACK_CAPACITY / 2**30:.0f} GiB (use --capacity)"
    return float(FALLBACK_CAPACITY), note, BOUND_CAPACITY


def capacity_of(trace: StepTrace, capacity: Optional[float], default: Optional[float]) -> tuple[float, Optional[str]]:
    """``capacity_bound`` without the bound's name."""
    value, note, _bound = capacity_bound(trace, capacity, default)
    return value, note


def verdict_from_trace(
    trace: StepTrace, capacity: Optional[float] = None, default_capacity: Optional[float] = None
) -> Optional[dict[str, Any]]:
    """The verdict on validated step columns; None with fewer than ``MIN_STEPS`` iterations."""
    if len(trace) < MIN_STEPS:
        return None
    from .detector import analyze_steps  # scipy: imported on first use, not at server start

    cap, note, bound = capacity_bound(trace, capacity, default_capacity)
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
    report["headroom_bound"] = bound
    report["steps_per_iteration"] = trace.steps_per_iteration
    report["step_source"] = STEP_SOURCES.get(trace.kind, "optimizer")
    report["message"] = leak_message(report)
    # the chart's x axis is the records' ``i``: one iteration advances it by records_per_iteration
    now = float(trace.last_i if trace.last_i is not None else report["current_step"])
    to_oom = report.get("steps_to_oom")
    report["forecast"] = forecast_line(
        report, "step", now, None if to_oom is None else float(to_oom) * trace.records_per_iteration
    )
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
