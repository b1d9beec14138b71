"""Triage: which allocation stack's tensors survive the steps (from torch's allocation history).

A leak every step leaves survivors from every step; a leak every Nth step from one step in N,
so the probe records until it saw two of its growth increments (``triage_plan`` asks, from the
verdict). What the last step still references (its loss, autograd's gradients: no Python frame)
survives from the last step only. So the stack named is the user's frame that holds the bytes
surviving from before the last step; "inside torch" only when no user frame holds any.
"""

from __future__ import annotations

import bisect
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from ..probe import protocol as P
from ..probe.protocol import LIBRARY_FRAMES, MODULE_CALL_FILE, MODULE_CALL_NAMES, STEP_MARKER, TRIAGE_MAX_STEPS
from .wording import human_bytes

if TYPE_CHECKING:  # numpy only names a type here: the module runs without importing it
    import numpy as np

    #: Readings along the steps: a list, or a trace's column as it is (not copied)
    Readings = Union[Sequence[float], np.ndarray]

#: Boundary readings the period is taken from (the newest ones of the step window).
PERIOD_READINGS = 512
#: The leak's increments: the largest rises of the readings' floor that make this share of its growth.
INCREMENT_SHARE_OF_GROWTH = 0.8

DEFAULT_SKIP = LIBRARY_FRAMES


def _is_user(fr: Mapping[str, Any], skip: Sequence[str]) -> bool:
    name = str(fr.get(P.FRAME_FILE, "") or "")
    return bool(name) and not any(s in name for s in skip)


def _is_module_call(fr: Mapping[str, Any]) -> bool:
    """A frame of torch's ``nn.Module.__call__`` machinery (``_call_impl`` and its wrappers)."""
    name = str(fr.get(P.FRAME_FILE, "") or "").replace("\\", "/")
    return MODULE_CALL_FILE in name and fr.get(P.FRAME_NAME) in MODULE_CALL_NAMES


def _user_frames(
    frames: Sequence[Mapping[str, Any]], skip: Sequence[str]
) -> tuple[Optional[Mapping[str, Any]], Optional[Mapping[str, Any]]]:
    """``(call site, innermost user frame)`` of an allocation's stack (innermost frame first).

    The call site is the first user frame outside the outermost ``nn.Module`` call, walking
    outward: the line of the loop that called into the model (``fake = G(z)``). That, not a
    line inside a model's ``forward``, is the one to name: the tensor a leak keeps is what that
    call returned (or its autograd graph), its variable is on that line, and the same forward
    runs from several calls (a GAN calls ``G`` in the D and in the G update) of which only one
    may leak. When the stack holds no module call, both are the innermost user frame; when no
    user frame lies outside the module calls (a loop inside a library: Lightning, a
    ``Trainer``), the call site is the innermost user frame.
    """
    frames = list(frames or ())
    inner = next((fr for fr in frames if _is_user(fr, skip)), None)
    outer = max((k for k, fr in enumerate(frames) if _is_module_call(fr)), default=-1)
    site = next((fr for fr in frames[outer + 1 :] if _is_user(fr, skip)), None) if outer >= 0 else inner
    return (site or inner), inner


def _user_frame(frames: Sequence[Mapping[str, Any]], skip: Sequence[str]) -> Optional[Mapping[str, Any]]:
    return _user_frames(frames, skip)[0]


def _place(fr: Mapping[str, Any]) -> str:
    return f"{P.code_key(fr.get(P.FRAME_FILE), fr.get(P.FRAME_LINE))} {fr.get(P.FRAME_NAME, '')}".strip()


def _is_marker(ev: Mapping[str, Any]) -> bool:
    return any(fr.get(P.FRAME_NAME) == STEP_MARKER for fr in ev.get(P.EVENT_FRAMES) or ())


def _step_of_events(events: Sequence[Mapping[str, Any]], steps: int) -> list[int]:
    """Which step each event belongs to: cut at the probe's markers, or, in a history without
    them, into ``steps`` equal runs of events (a training loop does the same work each step)."""
    marks = [i for i, ev in enumerate(events) if ev.get(P.EVENT_ACTION) == P.ACTION_ALLOC and _is_marker(ev)]
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


def leak_period(pos: Readings, allocated: Readings, bytes_per_step: float) -> tuple[float, float]:
    """``(period, increment)`` of a leak from the step readings and the verdict's bytes a step.

    The readings' floor (the lowest reading from each step on: a step's transients drop out)
    rises by the leak's increments and by the wobble of the readings; the wobble of a bounded
    series adds little to the floor's total rise, so the increments are the fewest largest rises
    that make ``INCREMENT_SHARE_OF_GROWTH`` of it. The period is the steps between them (a leak
    every 25th step rises once in 25), their median the increment; with one rise, the period is
    that rise against the bytes a step (25 steps' worth at once: every 25th step). A rise larger
    than the bytes a step times the window's steps is a warm-up's (the optimizer's state), not
    the leak's."""
    n = min(len(pos), len(allocated), PERIOD_READINGS)
    rate = float(bytes_per_step)
    if n < 2 or not rate > 0:
        return 1.0, max(rate, 0.0)
    x = [float(v) for v in allocated[len(allocated) - n :]]
    at = [float(v) for v in pos[len(pos) - n :]]
    floor = x[:]
    for k in range(n - 2, -1, -1):
        floor[k] = min(floor[k], floor[k + 1])
    # a rise above what the leak adds over the whole window is none of its increments: the
    # optimizer's state and the first gradients appear at once in the first steps (a warm-up)
    most = rate * max(1.0, at[-1] - at[0])
    rises = sorted(
        ((floor[k] - floor[k - 1], k) for k in range(1, n) if 0 < floor[k] - floor[k - 1] <= most), reverse=True
    )
    total = sum(r for r, _ in rises)
    picked, covered = [], 0.0
    for r, k in rises:
        if covered >= INCREMENT_SHARE_OF_GROWTH * total:
            break
        picked.append((k, r))
        covered += r
    if not picked:
        return 1.0, rate
    picked.sort()
    increment = float(statistics.median(r for _, r in picked))
    if len(picked) >= 2:
        period = float(statistics.median(at[b] - at[a] for (a, _), (b, _) in zip(picked, picked[1:])))
    else:
        period = increment / rate
    return max(1.0, round(period)), increment


def triage_plan(leak: Optional[Mapping[str, Any]], pos: Readings, allocated: Readings) -> dict[str, Any]:
    """The triage request for a verdict: the increment the probe waits to see twice and the
    period it comes at, with room for two periods and a step (at least the usual 4 steps, at
    most ``TRIAGE_MAX_STEPS``). Without a leak (a manual triage), the usual 4 steps."""
    plan: dict[str, Any] = {P.REQUEST_STEPS: P.TRIAGE_STEPS}
    rate = (leak or {}).get("bytes_per_step")
    if not (leak or {}).get("leak") or not isinstance(rate, (int, float)) or not rate > 0:
        return plan
    onset = (leak or {}).get("onset_step")
    if isinstance(onset, (int, float)):  # the growth regime the verdict judged: not a warm-up before it
        keep = [k for k, p in enumerate(pos) if p >= onset - 1]
        pos, allocated = [pos[k] for k in keep], [allocated[k] for k in keep]
    period, increment = leak_period(pos, allocated, float(rate))
    need = int(math.ceil(P.TRIAGE_INCREMENTS * period)) + 2  # two increments from any phase, one step past
    plan[P.REQUEST_INCREMENT] = int(increment)
    plan[P.REQUEST_PERIOD] = period
    plan[P.REQUEST_MAX_STEPS] = max(P.TRIAGE_STEPS, min(TRIAGE_MAX_STEPS, need))
    plan[P.REQUEST_MAX_SECONDS] = P.TRIAGE_MAX_SECONDS
    return plan


def _group_stats(grp: dict[str, Any], steps: int) -> None:
    """A group's steps kept, bytes a step, and what it holds from before the last step."""
    per_step = grp.pop("_steps")
    last = steps - 1  # the step whose tensors the loop may still reference
    early = sorted(k for k in per_step if k < last)
    grp["steps_kept"] = len(per_step)
    grp["early_steps"] = len(early)
    grp["early_bytes"] = sum(per_step[k] for k in early)
    # one survivor a step is the leak's signature (the first step may differ: warm-up)
    grp["every_step"] = grp["steps_kept"] >= max(2, steps - 1)
    gaps = [b - a for a, b in zip(early, early[1:])]
    grp["gap"] = float(statistics.median(gaps)) if gaps and not grp["every_step"] else None
    if grp["every_step"]:
        # what one step keeps: the median over the steps (the last one also holds what the
        # running step still references, the first may differ: warm-up)
        grp["bytes_per_step"] = float(statistics.median([per_step.get(k, 0) for k in range(steps)]))
    else:  # a leak every Nth step: its bytes spread over the steps recorded before the last
        grp["bytes_per_step"] = grp["early_bytes"] / max(1, last)


def _rank(grp: Mapping[str, Any]) -> tuple[Any, ...]:
    """The user's frames that hold bytes from before the last step first (from two steps or
    more before one), then torch's; what only the last step holds after."""
    user = grp["where"] != NO_USER_FRAME
    if grp["early_steps"]:
        tier = (0 if grp["early_steps"] >= 2 else 1) if user else 2
    else:
        tier = 3 if user else 4
    return (tier, -grp["early_bytes"], -grp["steps_kept"], -grp["bytes"])


NO_USER_FRAME = "<inside torch>"


def triage_snapshot(
    snapshot: Mapping[str, Any],
    steps: int,
    *,
    device: Optional[int] = None,
    skip: Sequence[str] = DEFAULT_SKIP,
    source_line: Optional[Callable[[str, int], Optional[str]]] = None,
    unit: str = P.UNIT_STEP,
) -> dict[str, Any]:
    """Name the allocation stacks whose tensors survive the steps (``unit``: what a step is,
    ``second`` when the probe's clock cut the history).

    ``snapshot`` is ``torch.cuda.memory._snapshot()`` taken after recording the allocation
    history (``torch.cuda.memory._record_memory_history()``) for ``steps`` steps: every
    allocation in its ``device_traces`` that was never freed by the end survived. They are
    grouped by the user's call site (``_user_frames``) and ranked by ``_rank``: a leak keeps
    bytes from before the last step (from every step, or one in N), what the last step still
    references does not. ``source_line(filename, line)`` may return the code text.
    """
    traces = snapshot.get(P.RESULT_TRACES) or []
    if device is not None:
        traces = [traces[device]] if device < len(traces) else []
    steps = max(1, int(steps))
    alive: dict[int, tuple[Mapping[str, Any], int]] = {}
    for dev_events in traces:
        events = list(dev_events or [])
        step_of = _step_of_events(events, steps)
        for ev, k in zip(events, step_of):
            action = ev.get(P.EVENT_ACTION)
            addr = ev.get(P.EVENT_ADDR)
            if addr is None:
                continue
            if action == P.ACTION_ALLOC:
                if not _is_marker(ev):
                    alive[int(addr)] = (ev, k)
            elif action in P.FREE_ACTIONS:
                alive.pop(int(addr), None)
    groups: dict[str, dict[str, Any]] = {}
    for ev, k in alive.values():
        fr, inner = _user_frames(ev.get(P.EVENT_FRAMES) or [], skip)
        if fr is None:
            key, where, label, code = NO_USER_FRAME, NO_USER_FRAME, "inside torch (no Python frame of yours)", None
        else:
            where = _place(fr)
            key = where
            code = source_line(str(fr.get(P.FRAME_FILE)), int(fr.get(P.FRAME_LINE) or 0)) if source_line else None
            place = _short_place(str(fr.get(P.FRAME_FILE)), fr.get(P.FRAME_LINE))
            label = f"`{place}" + (f" {code.strip()}`" if code else "`")
        grp = groups.setdefault(
            key,
            {"where": where, "code": code, "label": label, "bytes": 0, "count": 0, "_steps": {}, "_inner": {}},
        )
        size = int(ev.get(P.EVENT_SIZE) or 0)
        grp["bytes"] += size
        grp["count"] += 1
        grp["_steps"][k] = grp["_steps"].get(k, 0) + size
        if inner is not None and inner is not fr:
            grp["_inner"][_place(inner)] = (grp["_inner"].get(_place(inner), (0, inner))[0] + size, inner)
    for grp in groups.values():
        _group_stats(grp, steps)
        inners = grp.pop("_inner")
        grp["_inner_frame"] = max(inners.values(), key=lambda v: v[0])[1] if inners else None
    ranked = sorted(groups.values(), key=_rank)
    message = None
    if ranked and ranked[0]["bytes"] > 0:
        top = ranked[0]
        label = top.pop("label")
        if top["every_step"]:
            message = f"{label} keeps {human_bytes(top['bytes_per_step'])} a {unit}"
        elif top["gap"] is not None and top["early_steps"] >= 2:
            per = top["early_bytes"] / top["early_steps"]
            message = f"{label} keeps {human_bytes(per)} every {top['gap']:g} {unit}s"
            message += f" ({human_bytes(top['early_bytes'])} over {steps} {unit}s)"
        else:
            message = f"{label} kept {human_bytes(top['bytes'])} over {steps} {unit}s"
        inner = top.get("_inner_frame")
        if inner is not None:
            text = source_line(str(inner.get(P.FRAME_FILE)), int(inner.get(P.FRAME_LINE) or 0)) if source_line else None
            place = _short_place(str(inner.get(P.FRAME_FILE)), inner.get(P.FRAME_LINE))
            message += f" (allocated in `{place}" + (f" {text.strip()}`)" if text else "`)")
    for grp in ranked:
        grp.pop("label", None)
        grp.pop("_inner_frame", None)
    return {"stacks": ranked, "steps": steps, "message": message}


def _finite(value: Any, low: float = 0.0, high: float = float(2**62)) -> Optional[float]:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok and low <= value <= high else None


def recording_of(doc: Mapping[str, Any], steps: int, unit: str) -> tuple[dict[str, Any], str]:
    """How the probe's recording went (``triage.json``'s fields, checked: the file is the user's
    process's to write): the steps and seconds it took, the growth increments it saw and the
    period asked, why it stopped, and whether a bound (steps, time, history size) ended it
    before the increments were seen; and the sentence that says so, or ''."""
    raw_stopped = doc.get(P.RESULT_STOPPED)
    stopped = raw_stopped if isinstance(raw_stopped, str) and raw_stopped in P.STOP_REASONS else None
    raw = _finite(doc.get(P.RESULT_INCREMENTS), 0, TRIAGE_MAX_STEPS)
    increments = None if raw is None else int(raw)
    seconds = _finite(doc.get(P.RESULT_SECONDS))
    bounded = stopped in (P.STOP_MAX_STEPS, P.STOP_SECONDS, P.STOP_ENTRIES)
    view = {
        "steps": steps,
        "seconds": seconds,
        "increments": increments,
        "period": _finite(doc.get(P.RESULT_PERIOD), 1.0),
        "stopped": stopped,
        "bounded": bounded,
    }
    if stopped is None or not bounded:
        return view, ""
    bound = {
        P.STOP_MAX_STEPS: f"its bound of {steps} {unit}s",
        P.STOP_SECONDS: f"its time bound ({seconds or 0:.0f} s)",
        P.STOP_ENTRIES: f"the bound on torch's history ({P.TRIAGE_MAX_ENTRIES:,} events)",
    }[stopped]
    seen = "" if increments is None else f" after {increments} of {P.TRIAGE_INCREMENTS} growth increments"
    return view, f" Recording stopped at {bound}{seen}."


def triage_result(doc: Any) -> dict[str, Any]:
    """What the panel shows for a probe's ``triage.json``: the stacks that survive the steps,
    and how the recording went (``recording_of``)."""
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    raw_steps = doc.get(P.RESULT_STEPS)
    steps = (
        raw_steps
        if isinstance(raw_steps, int) and not isinstance(raw_steps, bool) and 0 < raw_steps <= TRIAGE_MAX_STEPS
        else 0
    )
    t = _finite(doc.get(P.RESULT_TIME), -math.inf, math.inf)
    raw_unit = doc.get(P.RESULT_UNIT)
    unit = raw_unit if isinstance(raw_unit, str) and raw_unit in P.TRIAGE_UNITS else P.UNIT_STEP
    rec, note = recording_of(doc, steps, unit)
    out: dict[str, Any] = {"t": t, "steps": steps, "message": None, "stacks": [], "error": None, "recording": rec}
    if doc.get(P.RESULT_ERROR):
        return {**out, "state": "error", "error": str(doc[P.RESULT_ERROR])[:500]}
    raw_code = doc.get(P.RESULT_CODE)
    code: dict[str, Any] = raw_code if isinstance(raw_code, dict) else {}

    def source_line(filename: str, line: int) -> Optional[str]:
        text = code.get(P.code_key(filename, line))
        return text[:300] if isinstance(text, str) else None

    found = triage_snapshot(doc, max(steps, 1), source_line=source_line, unit=unit)
    stacks = [
        {k: s[k] for k in ("where", "code", "bytes", "bytes_per_step", "count", "every_step")}
        for s in found["stacks"][:5]
    ]
    message = found["message"] or f"Nothing allocated during {steps} {unit}s survived them."
    return {**out, "state": "done", "stacks": stacks, "message": message + note}
