"""The probe's triage: torch's allocation history over a leak's period, on the server's request.

When the server writes ``probe-<pid>.triage-request`` (on a leak alarm, or the panel's "Find the
leaking line"), the hook notices it within a second, records the allocation history with Python
stacks (cut at a tiny marker allocation at each iteration boundary), and writes the allocations
and each stack line's code (only this process can read it: notebook cells live in its linecache)
to ``probe-<pid>.triage.json``. The server names the stack that survives.

How long: at least the steps asked; when the request carries the size of one growth increment
(a leak every 25th step adds 25 steps' worth at once), until the allocated bytes read at the
boundaries rose by two increments and one step more, since a 4-step window sees one increment of
such a leak, or none. Bounded by ``max_steps``, ``max_seconds`` and the history's size (torch's
ring buffer drops the oldest events past ``protocol.TRIAGE_MAX_ENTRIES``: the recording stops
before); the result says which ended it (``TriageWindow``).
"""

from __future__ import annotations

import json
import linecache
import os
import sys
import time
from typing import Any, Optional

from . import protocol as P
from .protocol import MAX_META_BYTES, TRIAGE_MAX_ENTRIES, TRIAGE_MAX_SECONDS, TRIAGE_MAX_STEPS, TRIAGE_STEPS
from .state import ProbeState

#: How often the step hook looks for a triage request (a stat call, so not every step).
TRIAGE_POLL_SECONDS = 1.0
#: A rise of the boundary readings above their highest so far by this share of the increment
#: asked counts as one increment (an increment's size varies with what the leaking step held).
INCREMENT_SHARE = 0.5
#: Share of ``TRIAGE_MAX_ENTRIES`` at which the recording stops, before the ring drops events.
ENTRIES_SHARE = 0.9
#: Raw frames looked at per allocation (the kept ones: ``protocol.TRIAGE_MAX_FRAMES``).
TRIAGE_WALK_FRAMES = 256


def _keep_frames(frames: list[Any]) -> list[dict[str, Any]]:
    """The frames of one allocation worth sending: the innermost few, every user frame and every
    ``nn.Module`` call boundary (so the server can find the call site outside the outermost
    module call), in order; past ``protocol.TRIAGE_MAX_FRAMES``, the middle ones are dropped."""
    kept = []
    for k, f in enumerate(frames[:TRIAGE_WALK_FRAMES]):
        name = str(f.get(P.FRAME_FILE) or "")
        user = bool(name) and not any(s in name for s in P.LIBRARY_FRAMES)
        call = f.get(P.FRAME_NAME) == "_call_impl" and P.MODULE_CALL_FILE in name.replace("\\", "/")
        if k < P.TRIAGE_INNER_FRAMES or user or call:
            kept.append({key: f.get(key) for key in (P.FRAME_FILE, P.FRAME_LINE, P.FRAME_NAME)})
    if len(kept) > P.TRIAGE_MAX_FRAMES:
        inner = P.TRIAGE_INNER_FRAMES
        kept = kept[:inner] + kept[len(kept) - (P.TRIAGE_MAX_FRAMES - inner) :]
    return kept


def _survivors_and_markers(history: list[Any]) -> list[Any]:
    """The allocations of the history never freed in it, and the step markers, in order: all the
    server reads (a leak's line survives; what was freed cannot be one), so two periods of a
    long loop's history stay a small file."""
    alive: dict[Any, int] = {}
    markers: list[int] = []
    for k, ev in enumerate(history):
        action, addr = ev.get(P.EVENT_ACTION), ev.get(P.EVENT_ADDR)
        if action == P.ACTION_ALLOC:
            if any(f.get(P.FRAME_NAME) == P.STEP_MARKER for f in ev.get(P.EVENT_FRAMES) or ()):
                markers.append(k)
            elif addr is not None:
                alive[addr] = k
        elif action in P.FREE_ACTIONS and addr is not None:
            alive.pop(addr, None)
    return [history[k] for k in sorted([*alive.values(), *markers])]


def _number(req: dict[str, Any], key: str) -> Optional[float]:
    """A finite positive number of the request, or None (the request is the user's to write)."""
    value = req.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value > 0 and value < float(2**62) else None


class TriageWindow:
    """When a triage's recording stops, from the boundary readings: pure (numbers in, a reason
    out), so its bounds are tested without torch's CUDA-only history.

    ``steps``: the least recorded; ``increment``: bytes one growth increment adds (None: record
    ``steps`` and stop, the server had no period to give); ``max_steps``, ``max_seconds`` and
    ``max_entries`` bound it. ``allocated`` and ``events`` are the allocator's allocated bytes
    and its allocations + frees so far (history entries: one per allocation, two per free)."""

    def __init__(
        self,
        *,
        start: float,
        allocated: Optional[int],
        events: Optional[int],
        steps: int = TRIAGE_STEPS,
        increment: Optional[float] = None,
        max_steps: int = TRIAGE_MAX_STEPS,
        max_seconds: float = TRIAGE_MAX_SECONDS,
        max_entries: int = TRIAGE_MAX_ENTRIES,
    ) -> None:
        self.steps = max(1, min(TRIAGE_MAX_STEPS, int(steps)))
        self.max_steps = max(self.steps, min(TRIAGE_MAX_STEPS, int(max_steps)))
        self.max_seconds = min(float(max_seconds), TRIAGE_MAX_SECONDS)
        self.max_entries = max_entries
        self.increment = increment
        self.start, self.events0 = start, events
        self.allocated: list[Optional[int]] = [allocated]
        self.increments = 0
        self.recorded = 0  # steps recorded so far
        self.seconds = 0.0
        self._high = allocated  # the highest boundary reading so far
        self._second_at: Optional[int] = None  # the step that brought the second increment

    @classmethod
    def from_request(cls, req: dict[str, Any], **start: Any) -> TriageWindow:
        steps = _number(req, P.REQUEST_STEPS) or TRIAGE_STEPS
        return cls(
            steps=int(steps),
            increment=_number(req, P.REQUEST_INCREMENT),
            max_steps=int(_number(req, P.REQUEST_MAX_STEPS) or steps),
            max_seconds=_number(req, P.REQUEST_MAX_SECONDS) or TRIAGE_MAX_SECONDS,
            **start,
        )

    def step(self, now: float, allocated: Optional[int], events: Optional[int]) -> Optional[str]:
        """One more step recorded (its end read at ``now``): None to go on, else why it stops
        (``protocol.STOP_*``)."""
        self.recorded += 1
        self.seconds = max(0.0, now - self.start)
        self.allocated.append(allocated)
        if allocated is not None:
            if self.increment and self._high is not None and allocated - self._high >= INCREMENT_SHARE * self.increment:
                self.increments += 1
                if self.increments == P.TRIAGE_INCREMENTS:
                    self._second_at = self.recorded
            self._high = allocated if self._high is None else max(self._high, allocated)
        if self.recorded >= self.steps:
            if not self.increment:
                return P.STOP_STEPS
            if self._second_at is not None and self.recorded > self._second_at:
                return P.STOP_INCREMENTS  # one step past the second: its transients are not the leak's
        if events is not None and self.events0 is not None:
            if events - self.events0 >= ENTRIES_SHARE * self.max_entries:
                return P.STOP_ENTRIES
        if self.seconds >= self.max_seconds:
            return P.STOP_SECONDS
        if self.recorded >= self.max_steps:
            return P.STOP_MAX_STEPS
        return None

    def result(self) -> dict[str, Any]:
        return {
            P.RESULT_STEPS: self.recorded,
            P.RESULT_ALLOCATED: self.allocated,
            P.RESULT_INCREMENTS: self.increments if self.increment else None,
            P.RESULT_SECONDS: round(self.seconds, 3),
        }


class TriageRecorder(ProbeState):
    """Mixed into ``core.Probe``, whose ``__init__`` sets what these methods use (see ``ProbeState``): ``torch``,
    ``device``, ``pid``, the triage paths and ``_next_triage_check``, and ``_write_private``."""

    _triage_unit = P.UNIT_STEP  # what the steps of the triage being recorded are (``protocol.TRIAGE_UNITS``)
    _triage_window: Optional[TriageWindow] = None  # while recording
    _triage_period: Optional[float] = None  # the period the request gave (steps between increments)

    def _triage_tick(self, now: float, unit: str = P.UNIT_STEP) -> None:
        """At each iteration's start (each clock reading: ``unit`` second): mark the step
        boundary while recording and decide whether to stop, else look for a request now and then."""
        try:
            window = self._triage_window
            if window is not None:
                self._triage_step_marker()
                stopped = window.step(now, *self._triage_readings())
                if stopped is not None:
                    self._finish_triage(stopped)
            elif now >= self._next_triage_check:
                self._next_triage_check = now + TRIAGE_POLL_SECONDS
                if os.path.exists(self.triage_request_path):
                    self._triage_unit = unit
                    self._start_triage(now)
        except Exception as exc:  # noqa: BLE001 - a training step must never fail because of us
            if self._triage_window is not None:
                self._triage_window = None
                try:
                    self._record_history(False)  # never leave the (costly) recording on
                except Exception:  # noqa: BLE001
                    pass
            print(f"jupyter-gpu-panel: triage failed: {exc}", file=sys.stderr)

    def _triage_readings(self) -> tuple[Optional[int], Optional[int]]:
        """The allocator's allocated bytes, and its allocations + 2 x frees so far: the history
        entries they made (one ``alloc``, a ``free_requested`` and a ``free_completed``)."""
        stats = self.torch.cuda.memory_stats(self.device)  # torch's own key names
        allocs, frees = stats.get("allocation.all.allocated"), stats.get("allocation.all.freed")
        events = None if allocs is None or frees is None else int(allocs) + 2 * int(frees)
        return int(stats.get("allocated_bytes.all.current", 0)), events

    def _start_triage(self, now: float) -> None:
        req: dict[str, Any] = {}
        try:
            with open(self.triage_request_path, "rb") as fh:
                doc = json.loads(fh.read(MAX_META_BYTES) or b"{}")
            req = doc if isinstance(doc, dict) else {}
        except (OSError, ValueError, RecursionError):
            pass
        try:
            self.triage_request_path.unlink()
        except OSError:
            pass
        self._triage_period = _number(req, P.REQUEST_PERIOD)
        try:
            allocated, events = self._triage_readings()
            window = TriageWindow.from_request(req, start=now, allocated=allocated, events=events)
            self._record_history(True)
        except Exception as exc:  # noqa: BLE001 - a training step must never fail because of us
            self._write_triage({P.RESULT_ERROR: f"torch cannot record the allocation history here: {exc}"})
            return
        self._triage_window = window
        self._triage_step_marker()

    def _triage_step_marker(self) -> None:
        """A tiny allocation at the step boundary, so the history can be cut into steps
        (``protocol.STEP_MARKER`` names this function). Without it the triage still works, less exactly."""
        try:
            self.torch.empty(1, device=f"cuda:{self.device}")
        except Exception:  # noqa: BLE001
            pass

    def _record_history(self, on: bool) -> None:
        """torch's allocation history with Python stacks (torch 2.1+), on or off."""
        memory = self.torch.cuda.memory
        if on:
            memory._record_memory_history(max_entries=TRIAGE_MAX_ENTRIES, stacks="python")
        else:
            memory._record_memory_history(enabled=None)

    def _snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = self.torch.cuda.memory._snapshot()  # torch's Snapshot, a TypedDict
        return snap

    def _finish_triage(self, stopped: str) -> None:
        error = None
        try:
            snap = self._snapshot()
        except Exception as exc:  # noqa: BLE001
            snap, error = None, f"torch could not take the memory snapshot: {exc}"
        finally:
            try:
                self._record_history(False)
            except Exception:  # noqa: BLE001
                pass
        if snap is None:
            self._write_triage({P.RESULT_ERROR: error, P.RESULT_STOPPED: stopped})
            self._triage_window = None
            return
        traces = snap.get(P.RESULT_TRACES) or []  # torch's snapshot: the same key as ours
        history = traces[self.device] if self.device < len(traces) else []
        events, code = [], {}
        for ev in _survivors_and_markers(history):
            frames = _keep_frames(ev.get(P.EVENT_FRAMES) or [])
            if ev.get(P.EVENT_ACTION) == P.ACTION_ALLOC:
                for f in frames:
                    key = P.code_key(f[P.FRAME_FILE], f[P.FRAME_LINE])
                    if key not in code:
                        line = linecache.getline(str(f[P.FRAME_FILE]), int(f[P.FRAME_LINE] or 0))
                        code[key] = line.strip() or None
            events.append(
                {**{k: ev.get(k) for k in (P.EVENT_ACTION, P.EVENT_ADDR, P.EVENT_SIZE)}, P.EVENT_FRAMES: frames}
            )
        if stopped != P.STOP_ENTRIES and len(history) >= TRIAGE_MAX_ENTRIES:
            stopped = P.STOP_ENTRIES  # the ring was full after all: its oldest events are gone
        self._write_triage({P.RESULT_TRACES: [events], P.RESULT_CODE: code, P.RESULT_STOPPED: stopped})
        self._triage_window = None

    def _write_triage(self, doc: dict[str, Any]) -> None:
        window = self._triage_window
        doc = {
            P.RESULT_TIME: time.time(),
            P.RESULT_PID: self.pid,
            P.RESULT_DEVICE: self.device,
            **(window.result() if window is not None else {P.RESULT_STEPS: 0}),
            P.RESULT_UNIT: self._triage_unit,
            P.RESULT_PERIOD: self._triage_period,
            **doc,
        }
        tmp = self.triage_path.with_suffix(".tmp")
        self._write_private(tmp, json.dumps(doc, separators=(",", ":")))
        os.replace(tmp, self.triage_path)  # the server never reads half a file
