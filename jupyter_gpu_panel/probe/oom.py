"""The probe's OOM record: when a CUDA allocation fails, what was asked, what was held, by which line.

torch's OOM observer (``torch._C._cuda_attach_out_of_memory_observer``, torch 2.1+ CUDA builds)
calls us inside the failing allocation, after the allocator released its lock and before the
exception is raised: the allocator's counters and the snapshot are read there, as they were at
the failure (the exception unwinds the frames' temporaries). The observer cannot be detached, so
one is attached per process and speaks to the probe running now.

A failure is only an OOM of the run when nothing catches it: a batch-size finder catches its
own. So the observer only notes it (``_oom_pending``), and the record is written when:

- a kernel's cell ends with the error (the cell hook: ``note_cell_error``); without an observer
  (older torch, or one that could not attach) the error's message and the counters then are used;
- a script ends with it (``sys.excepthook``), or exits with an observed failure after which no
  iteration ran (``atexit``).

An iteration recorded after the failure drops the note: the loop caught it and went on.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from typing import Any, Optional

from . import protocol as P
from .holders import call_site, code_of, history_holders, is_user_file, traceback_frames, variable_holders
from .state import ProbeState

#: The observer takes a snapshot at most this often (a finder that fails a hundred sizes).
SNAPSHOT_SECONDS = 1.0
#: An observed failure older than this when a cell ends with an OOM is another failure's.
OBSERVED_SECONDS = 600.0

#: The probe the process's one observer reports to (the observer outlives a stopped probe).
_current: Optional[OomRecorder] = None
_attached = False


def _observer(device: int, requested: int, limit: int, device_free: int) -> None:
    probe = _current
    if probe is not None:
        try:
            probe.on_oom_observed(int(device), int(requested), int(limit), int(device_free))
        except Exception as exc:  # noqa: BLE001 - the user's OOM must stay theirs, not ours
            print(f"jupyter-gpu-panel: reading the OOM failed: {exc}", file=sys.stderr)


def attach_observer(torch: Any) -> bool:
    """Attach the process's OOM observer once; False where this torch has none (a CPU build)."""
    global _attached
    if _attached:
        return True
    attach = getattr(torch._C, "_cuda_attach_out_of_memory_observer", None)
    if attach is None:
        return False
    try:
        attach(_observer)
    except Exception:  # noqa: BLE001 - no CUDA here, or a torch that refuses it
        return False
    _attached = True
    return True


#: The probe's own files: never the user's line (the observer's frames sit on top of the stack).
_OWN_DIR = os.path.dirname(os.path.abspath(__file__))


def _stack_frames(start: Any) -> list[dict[str, Any]]:
    """The Python stack from ``start`` outward (innermost first), as snapshot frames; ours left out."""
    out: list[dict[str, Any]] = []
    f = start
    while f is not None and len(out) < 256:
        if not f.f_code.co_filename.startswith(_OWN_DIR):
            out.append({P.FRAME_FILE: f.f_code.co_filename, P.FRAME_LINE: f.f_lineno, P.FRAME_NAME: f.f_code.co_name})
        f = f.f_back
    return out


def _site(frames: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    site = call_site(frames)
    if site is None:
        return None
    filename, line = str(site[P.FRAME_FILE]), int(site[P.FRAME_LINE] or 0)
    return {P.FRAME_FILE: filename, P.FRAME_LINE: line, P.HOLDER_CODE: code_of(filename, line)}


class OomRecorder(ProbeState):
    """Mixed into ``core.Probe``, whose ``__init__`` sets what these methods use (see ``ProbeState``): ``torch``,
    ``device``, ``_limit``, ``reading``, ``_lock``, ``_fh``, ``step``, ``iterations``, ``_last_t``
    and the clock's ``_ticks``."""

    _oom_pending: Optional[dict[str, Any]] = None
    _oom_observed = False
    _last_snapshot = 0.0
    _excepthook: Any = None

    def watch_oom(self, script: bool) -> None:
        """Attach the observer; in a script, also note an OOM that ends it."""
        global _current
        _current = self
        self._oom_observed = attach_observer(self.torch)
        if script and self._excepthook is None:
            self._excepthook = sys.excepthook
            sys.excepthook = self._on_uncaught
            atexit.register(self._at_exit)

    def unwatch_oom(self) -> None:
        global _current
        if _current is self:
            _current = None
        if self._excepthook is not None and sys.excepthook == self._on_uncaught:
            sys.excepthook = self._excepthook
        self._excepthook = None

    def holds(self, tensor: Any) -> bool:
        """Whether a tensor's storage is on this probe's device (what ran out)."""
        return bool(tensor.is_cuda) and tensor.device.index == self.device

    # -- the observer: inside the failing allocation ---------------------------------------
    def on_oom_observed(self, device: int, requested: int, limit: int, device_free: int) -> None:
        if device != self.device:
            return
        now = time.time()
        note: dict[str, Any] = {P.TIME: now, P.OOM_REQUESTED: requested, P.LIMIT: limit, P.FREE: device_free}
        note.update(self.reading())
        note[P.OOM_SITE] = _site(_stack_frames(sys._getframe(1)))
        holders: list[dict[str, Any]] = []
        if now - self._last_snapshot >= SNAPSHOT_SECONDS:
            self._last_snapshot = now
            try:
                holders = history_holders(self.torch.cuda.memory._snapshot(), self.device)
            except Exception:  # noqa: BLE001 - no snapshot: the variables may still tell
                pass
        note[P.OOM_HOLDERS] = holders
        self._oom_pending = note

    def loop_went_on(self) -> None:
        """An iteration was recorded: an observed failure before it was caught."""
        self._oom_pending = None

    # -- the failure ends a cell, or the script --------------------------------------------
    def note_cell_error(self, error: Any, cell: Optional[str], execution_count: Optional[int]) -> bool:
        """The cell hook: write the OOM record when the cell ended with CUDA's OOM error."""
        if not P.is_cuda_oom(error):
            self._oom_pending = None  # any observed failure was caught inside the cell
            return False
        self.write_oom(error, {P.CELL: cell, P.EXECUTION_COUNT: execution_count})
        return True

    def _on_uncaught(self, kind: Any, error: Any, tb: Any) -> None:
        try:
            if P.is_cuda_oom(error):
                self.write_oom(error, {})
        finally:
            (self._excepthook or sys.__excepthook__)(kind, error, tb)

    def _at_exit(self) -> None:
        if self._oom_pending is not None:
            self.write_oom(None, {})

    def write_oom(self, error: Optional[BaseException], where: dict[str, Any]) -> None:
        """One OOM record in the steps file, flushed now; never raises."""
        try:
            rec = self._oom_record(error, where)
            with self._lock:
                if self._fh is None:
                    return
                rec[P.INDEX] = self.step
                self.step += 1
                self._fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
                self._fh.flush()
        except Exception as exc:  # noqa: BLE001 - explaining the OOM must not raise another error
            print(f"jupyter-gpu-panel: recording the OOM failed: {exc}", file=sys.stderr)

    def _oom_record(self, error: Optional[BaseException], where: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        note = self._oom_pending
        self._oom_pending = None
        if note is not None and now - note[P.TIME] > OBSERVED_SECONDS:
            note = None
        message = str(error)[: P.MAX_OOM_MESSAGE] if error is not None else None
        stated = P.oom_numbers(message)
        # the iteration it failed in: the one after the newest recorded (of the kind recorded last)
        kind = max(P.KINDS, key=lambda k: self._last_t[k] or 0.0)
        if not self._last_t[kind]:
            kind = P.KIND_STEP
        rec: dict[str, Any] = {P.OOM: True, P.TIME: now, P.KIND: kind, P.ITER: self.iterations_done(kind)}
        if note is not None:
            rec[P.OOM_SOURCE] = P.OOM_SOURCE_OBSERVER
            rec.update({k: v for k, v in note.items() if k != P.TIME})
            if message is None:
                stated = {}
        else:
            rec[P.OOM_SOURCE] = P.OOM_SOURCE_EXCEPTION
            rec.update(self.reading())  # after the unwind: the message's numbers are the failure's
            rec.update({k: v for k, v in stated.items() if k != P.FREE})
            rec[P.LIMIT] = stated.get(P.LIMIT) or self._limit()
            rec[P.OOM_REQUESTED] = stated.get(P.OOM_REQUESTED)
            rec[P.OOM_HOLDERS] = []
            rec[P.OOM_SITE] = None
        if message is not None:
            rec[P.OOM_MESSAGE] = message
        if error is not None:
            frames = [f for f in traceback_frames(error) if is_user_file(f.f_code.co_filename)]
            if rec.get(P.OOM_SITE) is None and frames:
                rec[P.OOM_SITE] = _site(_stack_frames(frames[0]))
            found = variable_holders(frames, self.torch, self.holds)
            seen = {(h[P.FRAME_FILE], h[P.FRAME_LINE]) for h in rec[P.OOM_HOLDERS]}
            # the history's lines first (measured), then variables on other lines
            extra = [h for h in found if (h[P.FRAME_FILE], h[P.FRAME_LINE]) not in seen or h[P.FRAME_LINE] is None]
            rec[P.OOM_HOLDERS] = (rec[P.OOM_HOLDERS] + extra)[: P.MAX_OOM_HOLDERS]
        rec.update({k: v for k, v in where.items() if v is not None})
        rec[P.DEVICE] = self.device
        return rec

    def iterations_done(self, kind: str) -> int:
        """The index of the iteration in progress of ``kind``: the one after the newest recorded
        (the clock's: its next reading), 0 before the first."""
        if kind == P.KIND_CLOCK:
            return int(self._ticks)
        return self.iterations[kind].index + 1
