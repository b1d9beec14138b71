"""The probe's clock: code that neither steps an optimizer nor calls a hooked module.

A loop of plain tensor operations (moving batches to the GPU and keeping them, a hand-written
sampler) writes no step and no forward record, so the probe would see nothing. While a cell (or
a script) runs with neither kind recorded for ``protocol.IDLE_OPTIMIZER_SECONDS``, a daemon
thread reads the allocator every ``protocol.CLOCK_SECONDS`` and, once it has moved in this run,
writes a ``protocol.KIND_CLOCK`` record (``kind: time``) every reading; the detector judges that series on a time axis
(bytes a second, a forecast in seconds). Once a step or a forward record comes, the clock stays
quiet until the next cell starts.

The thread only reads host-side allocator counters (no GPU synchronisation) once a second:
its cost is measured by ``tests/perf/bench_probe_clock.py``. A triage asked for such a loop is
cut at the clock's readings: its steps are seconds (``unit: second`` in ``triage.json``).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Optional

from . import protocol as P
from .state import ProbeState


class ClockRecords(ProbeState):
    """Mixed into ``core.Probe``, which defines what these methods use (``_record`` and
    ``reading``: see ``ProbeState``); the run's state (``executing`` and the rest) is kept here."""

    executing: bool = True  # a script runs from start to end; a kernel only inside a cell
    _run_started: float = 0.0  # when the current cell (or the script's probe) started
    _run_records = 0  # step and forward records written since then
    _run_baseline: Optional[int] = None  # allocated bytes at the clock's first look this run
    _run_clock_writes = False  # the allocator moved this run: the clock writes every tick
    _ticks = 0  # ``iter`` of the next clock record
    _clock: Optional[threading.Thread] = None
    _clock_stop: Optional[threading.Event] = None

    def run_starts(self, now: Optional[float] = None) -> None:
        """A cell starts (or the probe, in a script): the clock waits for this run's loop."""
        self._run_started = time.time() if now is None else now
        self._run_records = 0
        self._run_baseline = None
        self._run_clock_writes = False
        self.executing = True

    def run_ends(self) -> None:
        """The cell ended: an idle kernel is not read."""
        self.executing = False

    def clock_due(self, now: float) -> bool:
        """Whether the clock reads now: running, and nothing else recorded this run after the
        grace (a training loop's first step, an inference loop's first module call, come within it)."""
        return self.executing and self._run_records == 0 and now - self._run_started >= P.IDLE_OPTIMIZER_SECONDS

    def clock_tick(self, now: float) -> bool:
        """One look of the clock; True when it wrote a record. Code that never moves the
        allocator (a plotting cell, a pandas job) writes nothing, so it never takes the verdict
        over from the training that ran before it; once the allocator moves, every tick is written
        (flat stretches included: a bounded fill is told from a leak by them)."""
        if not self.clock_due(now):
            return False
        if not self._run_clock_writes:
            allocated = int(self.reading()[P.ALLOCATED])
            if self._run_baseline is None or allocated == self._run_baseline:
                self._run_baseline = allocated
                return False
            self._run_clock_writes = True
        self._record(P.KIND_CLOCK, None, None, now)
        return True

    def start_clock(self, period: float = P.CLOCK_SECONDS) -> None:
        if self._clock is not None:
            return
        self._clock_stop = threading.Event()
        self._clock = threading.Thread(
            target=self._clock_loop, args=(period, self._clock_stop), name="gpu-panel-probe-clock", daemon=True
        )
        self._clock.start()

    def stop_clock(self) -> None:
        if self._clock is None or self._clock_stop is None:
            return
        self._clock_stop.set()
        if self._clock is not threading.current_thread():
            self._clock.join(timeout=5)
        self._clock = None

    def _clock_loop(self, period: float, stop: threading.Event) -> None:
        while not stop.wait(period):
            try:
                self.clock_tick(time.time())
            except Exception as exc:  # noqa: BLE001 - the user's code must never fail because of us
                print(f"jupyter-gpu-panel: probe clock record failed: {exc}", file=sys.stderr)

    def _count_run_record(self, kind: str) -> None:
        if kind != P.KIND_CLOCK:
            self._run_records += 1

    def _clock_fields(self, rec: dict[str, Any]) -> None:
        """A clock record's iteration field: ``iter`` counts the clock's readings."""
        rec[P.ITER] = self._ticks
        self._ticks += 1
