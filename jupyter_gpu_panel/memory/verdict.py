"""ONE function from probe records to a leak verdict, and ONE from NVML readings: the CLI, the
kernel tracker and the API (and, through the tracker, the Prometheus exporter) call
``verdict_from_records`` / ``verdict_from_trace`` on probe records and ``nvml_final_verdict`` on
NVML readings (``nvml_verdicts`` per pid of a trace), so they cannot disagree on the same trace.

An NVML verdict is made twice and the more urgent one is given: ``nvml_verdict`` on the whole
series (ten readings or more; slow, sure growth) and the per-tick judge
(``tick_growth.TickJudge``: a fast growth in seconds). The tracker holds a judge the sampler
feeds every tick; the CLI replays a trace's samples through a fresh one; both hand its verdict
to ``nvml_final_verdict``, which puts it in the same frame (the process's own level, the same
headroom) before comparing.

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
or the card's size when the records hold neither). A caller's capacity (``--capacity``) is an
upper bound like the others, never a replacement: the records' cap and the device's free memory
still bound the headroom, as they do in the server. NVML verdicts are bounded the same way: the
caller's capacity, the card's total, and the device's free memory (other processes count);
their ``headroom_bound`` is ``device free`` or ``capacity``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from ..probe import protocol as P
from .oom import mark_oom
from .records import StepTrace, steps_from_records
from .tick_growth import ACTIONABLE_SECONDS as TICK_ACTIONABLE_SECONDS
from .tick_growth import TickJudge, device_used_of, more_urgent
from .wording import leak_message

#: Used only when neither the caller nor the records say how much memory there is.
FALLBACK_CAPACITY = 80 * 2**30
#: Fewer valid steps than this: no verdict yet.
MIN_STEPS = 3
#: Fewer NVML samples than this: no verdict yet (the server, the CLI and the exporter alike).
MIN_NVML_SAMPLES = 10


#: ``headroom_bound`` values.
BOUND_PROCESS_CAP = "process cap"
BOUND_DEVICE_FREE = "device free"
BOUND_CAPACITY = "capacity"
HEADROOM_BOUNDS = (BOUND_PROCESS_CAP, BOUND_DEVICE_FREE, BOUND_CAPACITY)
#: ``step_source`` values: what one iteration's records come from.
STEP_SOURCES = {P.KIND_STEP: "optimizer", P.KIND_FORWARD: "forward", P.KIND_CLOCK: "timer"}


def capacity_bound(
    trace: StepTrace, capacity: Optional[float], default: Optional[float]
) -> tuple[float, Optional[str], str]:
    """The memory this process can reach now, the note when it was assumed, and which bound
    applied: the tightest of the caller's ``capacity`` (``--capacity``: an upper bound, never a
    replacement), the process cap the probe recorded last (``limit``), and the device's free
    memory plus this process's reserve at the newest ``free`` reading; the card's size (the
    trace's ``mem_total``, else ``default``: a meta file's limit, a card size recorded beside the
    trace) bounds it too when no cap was recorded; 80 GiB when nothing is known."""
    bounds: list[tuple[float, str]] = []
    if capacity:
        bounds.append((float(capacity), BOUND_CAPACITY))
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
    note = f"no capacity in the trace: assuming {FALLBACK_CAPACITY / 2**30:.0f} GiB (use --capacity)"
    return float(FALLBACK_CAPACITY), note, BOUND_CAPACITY


def capacity_of(trace: StepTrace, capacity: Optional[float], default: Optional[float]) -> tuple[float, Optional[str]]:
    """``capacity_bound`` without the bound's name."""
    value, note, _bound = capacity_bound(trace, capacity, default)
    return value, note


def verdict_from_trace(
    trace: StepTrace, capacity: Optional[float] = None, default_capacity: Optional[float] = None
) -> Optional[dict[str, Any]]:
    """The verdict on validated step columns; None with fewer than ``MIN_STEPS`` iterations
    (unless the run ended out of memory: then the verdict explains that, ``state`` ``oom``)."""
    if len(trace) < MIN_STEPS and trace.oom is None:
        return None
    from .detector import StepsReport, analyze_steps  # scipy: imported on first use, not at server start

    cap, note, bound = capacity_bound(trace, capacity, default_capacity)
    if len(trace) >= MIN_STEPS:
        report = analyze_steps(
            trace.steps,
            trace.allocated,
            reserved=trace.reserved,
            capacity=cap,
            t=trace.t,
            peak=trace.peak,
            alloc_retries=trace.alloc_retries,
        ).to_json()
    else:  # out of memory before the third iteration: no growth to judge, a failure to explain
        report = StepsReport(capacity=cap, reason="too few steps").to_json()
    report["source"] = "steps"
    report["current_step"] = int(trace.steps.max()) if len(trace) else 0
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
    mark_oom(report, trace.oom)  # ``state``, and the OOM's explanation in place of a forecast
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


def nvml_capacity(
    level: float, total: Optional[float], device_used: Optional[float], capacity: Optional[float]
) -> tuple[Optional[float], str]:
    """The memory a process (or a kernel's processes) can reach now, in its own frame (its own
    ``level`` plus what it can still get), and which bound applied: the caller's ``capacity``
    (``--capacity``: an upper bound, never a replacement), the device's free memory
    (``total - device_used``: other processes on the card count), and the card's ``total``."""
    bounds: list[tuple[float, str]] = []
    if capacity:
        bounds.append((float(capacity), BOUND_CAPACITY))
    if total:
        bounds.append((float(total), BOUND_CAPACITY))
        if device_used is not None and math.isfinite(device_used):
            bounds.append((level + float(total) - float(device_used), BOUND_DEVICE_FREE))
    if not bounds:
        return None, BOUND_CAPACITY
    value, bound = min(bounds, key=lambda b: b[0])
    return value, bound


def nvml_verdict(
    t: Any,
    used: Any,
    *,
    total: Optional[float],
    device_used: Optional[float] = None,
    capacity: Optional[float] = None,
) -> Optional[dict[str, Any]]:
    """THE leak verdict on NVML readings (no probe needed), for the tracker's kernels, the CLI's
    pids and, through the tracker, the exporter: one process's (or kernel's) ``used`` over ``t``,
    the device's ``total`` and ``device_used`` at the last sample, and the caller's optional
    ``capacity`` bound. None with fewer than ``MIN_NVML_SAMPLES`` samples or no capacity known."""
    if len(t) < MIN_NVML_SAMPLES:
        return None
    u = np.asarray(used, dtype=float)
    finite = u[np.isfinite(u)]
    if not len(finite):
        return None
    cap, bound = nvml_capacity(float(finite[-1]), total, device_used, capacity)
    if not cap:
        return None
    from .detector import analyze_time  # scipy: imported on first use, not at server start

    report = analyze_time(t, u, capacity=cap).to_json()
    report["source"] = "nvml"
    report["headroom_bound"] = bound
    report["message"] = leak_message(report)
    report["forecast"] = forecast_line(report, "time", float(t[-1]), report.get("seconds_to_oom"))
    return report


def nvml_final_verdict(
    t: Any,
    used: Any,
    *,
    total: Optional[float],
    device_used: Optional[float] = None,
    capacity: Optional[float] = None,
    tick: Optional[Mapping[str, Any]] = None,
) -> Optional[dict[str, Any]]:
    """THE final NVML verdict on a process (or a kernel's processes), for the tracker, the CLI
    and, through the tracker, the exporter: ``nvml_verdict`` on its readings, or the per-tick
    judge's verdict ``tick`` (``TickJudge.verdict_for`` of its pids: the sampler's judge in the
    server, a fresh one replaying the trace in the CLI) when that one fills the memory sooner
    (``tick_growth.more_urgent``, the rule the tracker has always applied). Both are compared in
    the same frame: the per-tick rate against the headroom ``nvml_verdict`` would use now."""
    slow = nvml_verdict(t, used, total=total, device_used=device_used, capacity=capacity)
    if tick is None:
        return slow
    fast = _tick_verdict(tick, t, used, total=total, device_used=device_used, capacity=capacity)
    return fast if more_urgent(fast, slow) else slow


def _tick_verdict(
    v: Mapping[str, Any],
    t: Any,
    used: Any,
    *,
    total: Optional[float],
    device_used: Optional[float],
    capacity: Optional[float],
) -> dict[str, Any]:
    """A per-tick verdict in ``nvml_verdict``'s shape and frame (the API's ``NvmlVerdict``): the
    level is the series' own last reading, the capacity and its bound ``nvml_capacity``'s, so the
    kernel's chart draws its forecast from the kernel's memory, as for the refresh path's."""
    u = np.asarray(used, dtype=float)
    finite = u[np.isfinite(u)]
    level = float(finite[-1]) if len(finite) else float(v["level"])
    now = float(t[-1]) if len(t) else float(v["t"])
    cap, bound = nvml_capacity(level, total, device_used, capacity)
    headroom = None if cap is None else cap - level
    rate = float(v["bytes_per_second"])
    to_oom = None if headroom is None else max(0.0, headroom) / rate
    report: dict[str, Any] = {
        "leak": bool(v["leak"]),
        "actionable": to_oom is not None and to_oom <= TICK_ACTIONABLE_SECONDS,
        "onset_time": v["onset_time"],
        "bytes_per_second": rate,
        "seconds_to_oom": to_oom,
        "reason": f"per tick: {v['reason']}",
        "evidence_samples": int(v["evidence_ticks"]),
        "required_samples": float(v["required_ticks"]),
        "headroom": headroom,
        "capacity": cap,
        "level": level,
        "source": "nvml",
        "headroom_bound": bound,
    }
    report["message"] = leak_message(report)
    report["forecast"] = forecast_line(report, "time", now, to_oom)
    return report


def nvml_verdicts(
    rows: Sequence[Mapping[str, Any]], capacity: Optional[float] = None, pid: Optional[int] = None
) -> list[dict[str, Any]]:
    """``nvml_final_verdict`` per pid of NVML samples (``{"t", "mem_used", "mem_total", "procs"}``,
    a ``*.nvml.jsonl`` trace): each pid judged on its own ``used``, with the device's use at that
    pid's last sample, so a leaking process that shares the card is the one blamed and the other
    one's memory shortens its forecast, and the per-tick judge's verdict at the trace's end (the
    samples replayed through a fresh ``TickJudge``, as the sampler feeds the server's). A pid
    with no verdict (too few samples) gets a no-leak placeholder."""
    rows = list(rows)
    judge = TickJudge.replay(rows, capacity)
    series: dict[int, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    last_row: dict[int, Mapping[str, Any]] = {}
    for row in rows:
        if row.get("t") is None:
            continue
        for p in row.get("procs") or []:
            if not isinstance(p, Mapping) or p.get("used") is None or p.get("pid") is None:
                continue
            if pid is not None and int(p["pid"]) != pid:
                continue
            ts, us = series[int(p["pid"])]
            ts.append(float(row["t"]))
            us.append(float(p["used"]))
            last_row[int(p["pid"])] = row
    from .detector import TimeReport

    out = []
    for p, (ts, us) in sorted(series.items()):
        row = last_row[p]
        total = row.get("mem_total")
        report = nvml_final_verdict(
            ts, us, total=total, device_used=device_used_of(row), capacity=capacity, tick=judge.verdict_for([p])
        )
        if report is None:
            report = TimeReport(capacity=capacity or total, reason="too few samples").to_json()
            report.update(source="nvml", forecast=None, headroom_bound=BOUND_CAPACITY)
            report["message"] = leak_message(report)
        out.append({"pid": p, **report})
    return out
