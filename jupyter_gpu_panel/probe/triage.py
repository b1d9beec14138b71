"""The probe's triage: torch's allocation history for a few iterations, on the server's request.

When the server writes ``probe-<pid>.triage-request`` (on a leak alarm, or the panel's "Find the
leaking line"), the hook notices it within a second, records the allocation history with Python
stacks for the next few iterations (cut at a tiny marker allocation at each boundary), and writes
the allocations and each stack line's code (only this process can read it: notebook cells live
in its linecache) to ``probe-<pid>.triage.json``. The server names the stack that survives.
"""

from __future__ import annotations

import json
import linecache
import os
import sys
import time
from typing import Any

from . import protocol as P
from .protocol import MAX_META_BYTES, TRIAGE_MAX_STEPS, TRIAGE_STEPS

#: How often the step hook looks for a triage request (a stat call, so not every step).
TRIAGE_POLL_SECONDS = 1.0
TRIAGE_MAX_ENTRIES = 200_000
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


class TriageRecorder:
    """Mixed into ``core.Probe``, whose ``__init__`` sets what these methods use: ``torch``,
    ``device``, ``pid``, the triage paths and counters, and ``_write_private``."""

    _triage_unit = P.UNIT_STEP  # what the steps of the triage being recorded are (``protocol.TRIAGE_UNITS``)

    def _triage_tick(self, now: float, unit: str = P.UNIT_STEP) -> None:
        """At each iteration's start (each clock reading: ``unit`` second): mark the step
        boundary while recording, else look for a request now and then."""
        try:
            if self._triage_left:
                self._triage_step_marker()
                self._triage_left -= 1
                if not self._triage_left:
                    self._finish_triage()
            elif now >= self._next_triage_check:
                self._next_triage_check = now + TRIAGE_POLL_SECONDS
                if os.path.exists(self.triage_request_path):
                    self._triage_unit = unit
                    self._start_triage()
        except Exception as exc:  # noqa: BLE001 - a training step must never fail because of us
            if self._triage_left:
                self._triage_left = 0
                try:
                    self._record_history(False)  # never leave the (costly) recording on
                except Exception:  # noqa: BLE001
                    pass
            print(f"jupyter-gpu-panel: triage failed: {exc}", file=sys.stderr)

    # -- loops without an optimizer: find the top-level modules, hook them -------------------

    def _start_triage(self) -> None:
        steps = TRIAGE_STEPS
        try:
            with open(self.triage_request_path, "rb") as fh:
                req = json.loads(fh.read(MAX_META_BYTES) or b"{}")
            steps = max(1, min(TRIAGE_MAX_STEPS, int(req.get(P.REQUEST_STEPS, steps))))
        except (OSError, ValueError, TypeError, AttributeError):
            pass
        try:
            self.triage_request_path.unlink()
        except OSError:
            pass
        try:
            self._record_history(True)
        except Exception as exc:  # noqa: BLE001 - a training step must never fail because of us
            self._write_triage({P.RESULT_ERROR: f"torch cannot record the allocation history here: {exc}"})
            return
        self._triage_steps = self._triage_left = steps
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
        return self.torch.cuda.memory._snapshot()

    def _finish_triage(self) -> None:
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
            self._write_triage({P.RESULT_ERROR: error})
            return
        traces = snap.get(P.RESULT_TRACES) or []  # torch's snapshot: the same key as ours
        events, code = [], {}
        for ev in traces[self.device] if self.device < len(traces) else []:
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
        self._write_triage({P.RESULT_TRACES: [events], P.RESULT_CODE: code})

    def _write_triage(self, doc: dict[str, Any]) -> None:
        doc = {
            P.RESULT_TIME: time.time(),
            P.RESULT_PID: self.pid,
            P.RESULT_DEVICE: self.device,
            P.RESULT_STEPS: self._triage_steps,
            P.RESULT_UNIT: self._triage_unit,
            **doc,
        }
        tmp = self.triage_path.with_suffix(".tmp")
        self._write_private(tmp, json.dumps(doc, separators=(",", ":")))
        os.replace(tmp, self.triage_path)  # the server never reads half a file
