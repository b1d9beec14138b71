"""One sampling loop per server, in its own thread.

Each GPU is read by its own single-thread executor with a deadline, so a call that
hangs (a GPU falling off the bus) stalls neither the loop nor the other GPUs: that
GPU reads as ``unresponsive`` until its stuck call returns. Slow fields (PCIe, energy,
ECC, NVLink) are read by separate executors on their own cadence and merged into
the fast readings, so their ~21 ms calls never delay a tick.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .history import History
from .processes import ProcessDescriber
from .readings import GPU_ERROR, GPU_LOST, GPU_UNRESPONSIVE, STATE_STARTING, DeviceInfo, GPUReading
from .sources.base import Source, SourceStatus, version_fields

log = logging.getLogger(__name__)

#: The fastest tick the server will run, whatever a client or config asks for.
MIN_INTERVAL = 0.1


@dataclass
class Snapshot:
    t: float
    gpus: list[GPUReading] = field(default_factory=list)


@dataclass
class SamplerHealth:
    running: bool = False
    ticks: int = 0
    reads: int = 0  # source.read_fast calls made: one per GPU per tick, whatever the clients
    last_tick: Optional[float] = None
    tick_ms: Optional[float] = None
    errors: int = 0
    last_error: Optional[str] = None


class _Reader:
    """One GPU's executors plus the calls still in flight on them."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.fast = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"gpu{index}-fast")
        self.slow = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"gpu{index}-slow")
        self.fast_pending: Optional[Future[GPUReading]] = None
        self.slow_pending: Optional[Future[dict[str, Any]]] = None
        self.slow_values: dict[str, Any] = {}
        self.slow_at = 0.0
        self.lost = False

    def shutdown(self) -> None:
        # never wait: a hung NVML call must not block server shutdown
        self.fast.shutdown(wait=False, cancel_futures=True)
        self.slow.shutdown(wait=False, cancel_futures=True)


class Sampler:
    def __init__(
        self,
        source: Source,
        interval: float = 1.0,
        slow_interval: float = 5.0,
        history_seconds: float = 3600.0,
        read_timeout: float = 2.0,
        describe_processes: bool = True,
    ) -> None:
        self.source = source
        self.interval = max(MIN_INTERVAL, float(interval))
        self.slow_interval = max(self.interval, float(slow_interval))
        self.read_timeout = min(float(read_timeout), max(self.interval * 0.8, MIN_INTERVAL))
        self.history = History(history_seconds, self.interval)
        self.health = SamplerHealth()
        self.status: SourceStatus = SourceStatus(
            source=getattr(source, "name", "unknown"), state=STATE_STARTING, message="Opening the GPU source..."
        )
        self.devices: list[DeviceInfo] = []
        self.latest: Optional[Snapshot] = None
        self._describer = ProcessDescriber() if describe_processes and source.local_pids else None
        self._listeners: list[Callable[[Snapshot], None]] = []
        self._readers: dict[int, _Reader] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------
    def open(self) -> SourceStatus:
        """Open the source (may block briefly: call it off the event loop)."""
        try:
            self.status = self.source.open()
        except Exception as err:
            log.exception("GPU source failed to open")
            self.status = SourceStatus(getattr(self.source, "name", "unknown"), "error", f"{type(err).__name__}: {err}")
        if self.status.ok:
            self.devices = self.source.devices()
            self._readers = {d.index: _Reader(d.index) for d in self.devices}
        return self.status

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gpu-panel-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.read_timeout + 1)
        for reader in self._readers.values():
            reader.shutdown()
        try:
            self.source.close()
        except Exception:
            log.debug("source close failed", exc_info=True)
        self.health.running = False

    def add_listener(self, fn: Callable[[Snapshot], None]) -> None:
        """``fn(snapshot)`` runs on the sampler thread after every tick: keep it cheap."""
        self._listeners.append(fn)

    # -- the loop -------------------------------------------------------------------------
    def _run(self) -> None:
        if self.status.state == STATE_STARTING:
            self.open()
        self.health.running = True
        next_tick = time.monotonic()
        while not self._stop.is_set():
            self.tick()
            next_tick += self.interval
            delay = next_tick - time.monotonic()
            if delay < 0:  # fell behind (a slow machine): skip, don't burst
                next_tick = time.monotonic()
                delay = 0
            self._stop.wait(delay)
        self.health.running = False

    def tick(self) -> Snapshot:
        """Read every GPU once and publish the snapshot. Public so tests can drive it."""
        started = time.monotonic()
        now = time.time()
        if not self.status.ok:
            snap = Snapshot(t=now)
        else:
            self._launch_slow(now)
            for reader in self._readers.values():
                if reader.fast_pending is None and not reader.lost:
                    reader.fast_pending = reader.fast.submit(self.source.read_fast, reader.index)
                    self.health.reads += 1
            deadline = started + self.read_timeout
            snap = Snapshot(t=now, gpus=[self._collect(r, deadline, now) for r in self._readers.values()])
            if self._describer is not None:
                self._describer.describe(snap.gpus)
        self.history.append([g for g in snap.gpus if g.state == "ok"])
        with self._lock:
            self.latest = snap
        self.health.ticks += 1
        self.health.last_tick = now
        self.health.tick_ms = round((time.monotonic() - started) * 1000, 3)
        for fn in list(self._listeners):
            try:
                fn(snap)
            except Exception:
                log.exception("sampler listener failed")
        return snap

    def _launch_slow(self, now: float) -> None:
        for reader in self._readers.values():
            if reader.slow_pending is not None and reader.slow_pending.done():
                try:
                    reader.slow_values = reader.slow_pending.result()
                except Exception as err:  # noqa: BLE001
                    self._note_error(reader, err)
                reader.slow_pending = None
            if reader.slow_pending is None and not reader.lost and now - reader.slow_at >= self.slow_interval:
                reader.slow_at = now
                reader.slow_pending = reader.slow.submit(self.source.read_slow, reader.index)

    def refresh_slow(self) -> None:
        """Read the slow fields now and wait for them: for one-shot readers such as the CLI."""
        for reader in self._readers.values():
            if reader.lost:
                continue
            future = reader.slow_pending or reader.slow.submit(self.source.read_slow, reader.index)
            try:
                reader.slow_values = future.result(timeout=self.read_timeout)
            except FutureTimeout:
                reader.slow_pending = future
                continue
            except Exception as err:  # noqa: BLE001
                self._note_error(reader, err)
            reader.slow_pending = None
            reader.slow_at = time.time()

    def _collect(self, reader: _Reader, deadline: float, now: float) -> GPUReading:
        if reader.lost:
            return GPUReading(index=reader.index, t=now, state=GPU_LOST, error="The GPU has fallen off the bus.")
        future = reader.fast_pending
        assert future is not None
        try:
            reading = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            # keep the future: the next tick waits for it instead of piling up calls
            return GPUReading(
                index=reader.index,
                t=now,
                state=GPU_UNRESPONSIVE,
                error=f"An NVML call has not returned for {self.read_timeout:.1f}+ s.",
            )
        except Exception as err:  # noqa: BLE001
            reader.fast_pending = None
            state = self._note_error(reader, err)
            return GPUReading(index=reader.index, t=now, state=state, error=f"{type(err).__name__}: {err}")
        reader.fast_pending = None
        for key, value in reader.slow_values.items():
            setattr(reading, key, value)
        return reading

    def _note_error(self, reader: _Reader, err: BaseException) -> str:
        self.health.errors += 1
        self.health.last_error = f"GPU {reader.index}: {type(err).__name__}: {err}"
        lost = getattr(self.source, "is_lost_error", None)
        if lost is not None and lost(err):
            reader.lost = True
            log.error("GPU %s is lost: %s", reader.index, err)
            return GPU_LOST
        log.warning("GPU %s read failed: %s", reader.index, err)
        return GPU_ERROR

    # -- views ---------------------------------------------------------------------------------
    def snapshot(self) -> Optional[Snapshot]:
        with self._lock:
            return self.latest

    def user_of(self, pid: int) -> Optional[str]:
        """The user of a GPU process, as psutil read it (None for recorded or hidden ones)."""
        return None if self._describer is None else self._describer.user_of(pid)

    def status_json(self) -> dict[str, Any]:
        st = self.status
        h = self.health
        return {
            "source": st.source,
            "state": st.state,
            "message": st.message,
            **version_fields(st, self.source.vendor),
            "replay_file": st.extra.get("replay_file"),
            "interval": self.interval,
            "min_interval": MIN_INTERVAL,
            "slow_interval": self.slow_interval,
            "history_seconds": self.history.history_seconds,
            "history_bytes": self.history.nbytes,
            "sampler": {
                "running": h.running,
                "ticks": h.ticks,
                "reads": h.reads,
                "last_tick": h.last_tick,
                "tick_ms": h.tick_ms,
                "errors": h.errors,
                "last_error": h.last_error,
            },
        }
