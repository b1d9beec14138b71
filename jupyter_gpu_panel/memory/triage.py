"""Triage: which allocation stack's tensors survive every step (from torch's allocation history)."""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

from .protocol import STEP_MARKER, TRIAGE_MAX_STEPS
from .wording import human_bytes


def _user_frame(frames: Sequence[Mapping[str, Any]], skip: Sequence[str]) -> Optional[Mapping[str, Any]]:
    for fr in frames or ():
        name = str(fr.get("filename", ""))
        if not name or any(s in name for s in skip):
            continue
        return fr
    return None


DEFAULT_SKIP = ("/torch/", "\\torch\\", "<frozen", "/site-packages/", "/dist-packages/", "/lib/python3")


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
            key, where, label, code = (
                "<no user frame>",
                "<inside torch>",
                "inside torch (no Python frame of yours)",
                None,
            )
        else:
            where = f"{fr.get('filename')}:{fr.get('line')} {fr.get('name', '')}".strip()
            key = where
            code = source_line(str(fr.get("filename")), int(fr.get("line") or 0)) if source_line else None
            label = f"`{_short_place(str(fr.get('filename')), fr.get('line'))}" + (f" {code.strip()}`" if code else "`")
        grp = groups.setdefault(
            key, {"where": where, "code": code, "label": label, "bytes": 0, "count": 0, "_steps": set()}
        )
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


def triage_result(doc: Any) -> dict[str, Any]:
    """What the panel shows for a probe's ``triage.json``: the stacks that survive every step."""
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    raw_steps = doc.get("steps")
    steps = (
        raw_steps
        if isinstance(raw_steps, int) and not isinstance(raw_steps, bool) and 0 < raw_steps <= TRIAGE_MAX_STEPS
        else 0
    )
    t = doc.get("t") if isinstance(doc.get("t"), (int, float)) and math.isfinite(doc["t"]) else None
    out: dict[str, Any] = {"t": t, "steps": steps, "message": None, "stacks": [], "error": None}
    if doc.get("error"):
        return {**out, "state": "error", "error": str(doc["error"])[:500]}
    code = doc.get("code") if isinstance(doc.get("code"), dict) else {}

    def source_line(filename: str, line: int) -> Optional[str]:
        text = code.get(f"{filename}:{line}")
        return text[:300] if isinstance(text, str) else None

    found = triage_snapshot(doc, max(steps, 1), source_line=source_line)
    stacks = [
        {k: s[k] for k in ("where", "code", "bytes", "bytes_per_step", "count", "every_step")}
        for s in found["stacks"][:5]
    ]
    message = found["message"] or f"Nothing allocated during {steps} steps survived them."
    return {**out, "state": "done", "stacks": stacks, "message": message}
