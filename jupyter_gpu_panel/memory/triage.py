"""Triage: which allocation stack's tensors survive every step (from torch's allocation history)."""

from __future__ import annotations

import bisect
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

from ..probe import protocol as P
from ..probe.protocol import LIBRARY_FRAMES, MODULE_CALL_FILE, MODULE_CALL_NAMES, STEP_MARKER, TRIAGE_MAX_STEPS
from .wording import human_bytes

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


def triage_snapshot(
    snapshot: Mapping[str, Any],
    steps: int,
    *,
    device: Optional[int] = None,
    skip: Sequence[str] = DEFAULT_SKIP,
    source_line: Optional[Callable[[str, int], Optional[str]]] = None,
    unit: str = P.UNIT_STEP,
) -> dict[str, Any]:
    """Name the allocation stacks whose tensors survive every step (``unit``: what a step is,
    ``second`` when the probe's clock cut the history).

    ``snapshot`` is ``torch.cuda.memory._snapshot()`` taken after recording the allocation
    history (``torch.cuda.memory._record_memory_history()``) for ``steps`` optimizer steps:
    every allocation in its ``device_traces`` that was never freed by the end survived. They
    are grouped by the innermost frame outside torch and the standard library. A leak leaves
    survivors from every step; what the last step still references (its gradients, its loss)
    survives from one step only, so groups are ranked by the steps they survive from, then by
    bytes. ``source_line(filename, line)`` may return the code text.
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
            key, where, label, code = (
                "<no user frame>",
                "<inside torch>",
                "inside torch (no Python frame of yours)",
                None,
            )
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
        per_step = grp.pop("_steps")
        grp["steps_kept"] = len(per_step)
        # what one step keeps: the median over the steps (the last one also holds what the
        # running step still references, the first may differ: warm-up)
        grp["bytes_per_step"] = float(statistics.median([per_step.get(k, 0) for k in range(steps)]))
        # one survivor a step is the leak's signature (the first step may differ: warm-up)
        grp["every_step"] = grp["steps_kept"] >= max(2, steps - 1)
        inners = grp.pop("_inner")
        grp["_inner_frame"] = max(inners.values(), key=lambda v: v[0])[1] if inners else None
    ranked = sorted(groups.values(), key=lambda g: (-g["steps_kept"], -g["bytes"]))
    message = None
    if ranked and ranked[0]["bytes"] > 0:
        top = ranked[0]
        label = top.pop("label")
        if top["every_step"]:
            message = f"{label} keeps {human_bytes(top['bytes_per_step'])} a {unit}"
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


def triage_result(doc: Any) -> dict[str, Any]:
    """What the panel shows for a probe's ``triage.json``: the stacks that survive every step."""
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    raw_steps = doc.get(P.RESULT_STEPS)
    steps = (
        raw_steps
        if isinstance(raw_steps, int) and not isinstance(raw_steps, bool) and 0 < raw_steps <= TRIAGE_MAX_STEPS
        else 0
    )
    raw_t = doc.get(P.RESULT_TIME)
    t = raw_t if isinstance(raw_t, (int, float)) and not isinstance(raw_t, bool) and math.isfinite(raw_t) else None
    out: dict[str, Any] = {"t": t, "steps": steps, "message": None, "stacks": [], "error": None}
    if doc.get(P.RESULT_ERROR):
        return {**out, "state": "error", "error": str(doc[P.RESULT_ERROR])[:500]}
    code = doc.get(P.RESULT_CODE) if isinstance(doc.get(P.RESULT_CODE), dict) else {}

    def source_line(filename: str, line: int) -> Optional[str]:
        text = code.get(P.code_key(filename, line))
        return text[:300] if isinstance(text, str) else None

    unit = doc.get(P.RESULT_UNIT) if doc.get(P.RESULT_UNIT) in P.TRIAGE_UNITS else P.UNIT_STEP
    found = triage_snapshot(doc, max(steps, 1), source_line=source_line, unit=unit)
    stacks = [
        {k: s[k] for k in ("where", "code", "bytes", "bytes_per_step", "count", "every_step")}
        for s in found["stacks"][:5]
    ]
    message = found["message"] or f"Nothing allocated during {steps} {unit}s survived them."
    return {**out, "state": "done", "stacks": stacks, "message": message}
