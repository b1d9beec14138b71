"""The probe's ``Probe``: the allocator's readings after every optimizer step, written to
``probe-<pid>.iters.jsonl`` (see the package's docstring for what is recorded and when).

Its mixins: ``iterations`` (which calls make one iteration, loops without an optimizer), ``clock``
(code that runs neither), ``triage`` (the allocation history on the server's request) and ``oom``
(the record of an allocation that failed: what was asked, what held the memory).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

from . import protocol as P
from .clock import ClockRecords
from .grouping import Iterations
from .iterations import ForwardRecords
from .oom import OomRecorder
from .protocol import PROBE_DIR_NAME, probe_file
from .torch_install import torch_install_command
from .triage import TriageRecorder

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
FLUSH_SECONDS = 0.5
#: Optimizer-step intervals longer than this are pauses, not the loop's rhythm.
MAX_STEP_INTERVAL = 30.0


def probe_dir() -> Path:
    """Per-user and private: the Jupyter runtime directory (as the server sees it)."""
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir()) / PROBE_DIR_NAME


def _kernel_id() -> Optional[str]:
    """The Jupyter kernel id, from the kernel's connection file name (``kernel-<id>.json``)."""
    try:
        from ipykernel import get_connection_file

        match = re.search(r"kernel-([0-9a-fA-F-]+)\.json$", get_connection_file())
        return match.group(1) if match else None
    except Exception:  # noqa: BLE001 - not in a kernel (a script, torchrun)
        return None


class Probe(OomRecorder, TriageRecorder, ForwardRecords, ClockRecords):
    """Writes one record per optimizer step of this process (per iteration of a loop without
    an optimizer, and once a second in code that runs neither: see the package's docstring)."""

    def __init__(
        self, directory: Optional[Path] = None, device: Optional[int] = None, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        import torch

        self.torch = torch
        self.device = torch.cuda.current_device() if device is None else device
        self.dir = Path(directory) if directory else probe_dir()
        self.pid = os.getpid()
        self.max_bytes = max_bytes
        self.path = probe_file(self.dir, self.pid, P.FILE_ITERS)
        self.cells_path = probe_file(self.dir, self.pid, P.FILE_CELLS)
        self.meta_path = probe_file(self.dir, self.pid, P.FILE_META)
        self.triage_request_path = probe_file(self.dir, self.pid, P.FILE_TRIAGE_REQUEST)
        self.triage_path = probe_file(self.dir, self.pid, P.FILE_TRIAGE)
        self._next_triage_check = 0.0
        self.step = 0  # records written (the ``i`` of the next one)
        self.iterations = {P.KIND_STEP: Iterations(), P.KIND_FORWARD: Iterations()}
        self._last_t: dict[str, Optional[float]] = {kind: None for kind in P.KINDS}
        self._lock = threading.Lock()  # the clock's thread records too
        self._last_step_t: Optional[float] = None  # last optimizer step (Unix seconds)
        self._step_interval: Optional[float] = None  # smoothed interval between optimizer steps
        self._last_forward_write = 0.0
        self._next_free = 0.0
        self._free_ok = True
        self._last_flush = 0.0
        self._handle: Any = None
        self._discovery: Any = None  # the global forward pre-hook, while it looks for modules
        self._discovery_seen: set[int] = set()
        self._discovery_calls = 0
        self._forward_hooks: dict[int, tuple[Callable[[], Any], Any]] = {}  # id(module) -> (ref, handle)
        self._call_impl_code: Any = None
        self._fh: Any = None
        self._total: Optional[int] = None
        self.limit = self._limit()

    def _limit(self) -> int:
        """What this process may allocate now: the card's total times the per-process fraction
        (re-read at every record: ``set_per_process_memory_fraction`` may change it any time)."""
        cuda = self.torch.cuda
        if self._total is None:
            self._total = int(cuda.get_device_properties(self.device).total_memory)
        fraction = 1.0
        raw = getattr(self.torch._C, "_cuda_getMemoryFraction", None)  # the getter without its checks
        try:
            fraction = float(raw(self.device) if raw is not None else cuda.get_per_process_memory_fraction(self.device))
        except (AttributeError, RuntimeError, TypeError):  # older torch: no getter
            pass
        return int(self._total * fraction)

    def _free(self) -> Optional[int]:
        """The device's free memory now (every process's use counted), or None."""
        free, _total = self.torch.cuda.mem_get_info(self.device)
        return int(free)

    def open(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        meta = {
            P.META_PID: self.pid,
            P.META_KERNEL_ID: _kernel_id(),
            P.META_DEVICE: self.device,
            P.META_LIMIT: self.limit,
            P.META_STARTED: time.time(),
            P.META_TORCH: self.torch.__version__,
            P.META_ARGV: sys.argv[:4],
            P.META_RANK: os.environ.get("RANK"),
        }
        self._write_private(self.meta_path, json.dumps(meta))
        self._fh = self._open_private(self.path, "a")
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self._handle = register_optimizer_step_post_hook(self._on_step)

    @staticmethod
    def _open_private(path: Path, mode: str) -> Any:
        # O_NOFOLLOW: a symlink planted in the directory is never written through
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if "a" in mode else os.O_TRUNC)
        fd = os.open(path, flags, 0o600)
        return os.fdopen(fd, mode, buffering=1 << 16)

    def _write_private(self, path: Path, text: str) -> None:
        with self._open_private(path, "w") as fh:
            fh.write(text)

    def reading(self) -> dict[str, Any]:
        """The allocator's state now, in the ``*.iters.jsonl`` fields."""
        raw = getattr(self.torch._C, "_cuda_memoryStats", None)
        if raw is not None:
            # the allocator's nested stats as it keeps them: ~5x cheaper than memory_stats(),
            # which flattens ~150 keys in Python on every call (it was 110 us a step on an H100)
            nested = raw(self.device)

            def all_(key: str, field: str = "current") -> int:
                return int(nested.get(key, {}).get("all", {}).get(field, 0))

            return {
                P.ALLOCATED: all_("allocated_bytes"),
                P.RESERVED: all_("reserved_bytes"),
                P.ACTIVE: all_("active_bytes"),
                P.INACTIVE_SPLIT: all_("inactive_split_bytes"),
                P.PEAK_ALLOCATED: all_("allocated_bytes", "peak"),
                P.ALLOC_RETRIES: int(nested.get("num_alloc_retries", 0)),
                P.NUM_OOMS: int(nested.get("num_ooms", 0)),
            }
        stats = self.torch.cuda.memory_stats(self.device)  # torch's own key names
        return {
            P.ALLOCATED: stats.get("allocated_bytes.all.current", 0),
            P.RESERVED: stats.get("reserved_bytes.all.current", 0),
            P.ACTIVE: stats.get("active_bytes.all.current", 0),
            P.INACTIVE_SPLIT: stats.get("inactive_split_bytes.all.current", 0),
            P.PEAK_ALLOCATED: stats.get("allocated_bytes.all.peak", 0),
            P.ALLOC_RETRIES: stats.get("num_alloc_retries", 0),
            P.NUM_OOMS: stats.get("num_ooms", 0),
        }

    def _on_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        now = time.time()
        if self._last_step_t is not None:
            gap = now - self._last_step_t
            if 0 < gap < MAX_STEP_INTERVAL:
                prev = self._step_interval
                self._step_interval = gap if prev is None else 0.8 * prev + 0.2 * gap
        self._last_step_t = now
        self._record(P.KIND_STEP, P.OPT, optimizer, now)

    def idle_after(self) -> float:
        """Seconds without an optimizer step after which a loop's forward calls are recorded."""
        return max(P.IDLE_OPTIMIZER_SECONDS, 3.0 * (self._step_interval or 0.0))

    def _record(self, kind: str, key: Optional[str], source: Any, now: float) -> None:
        with self._lock:
            if self._fh is not None:
                self._record_locked(kind, key, source, now)

    def _record_locked(self, kind: str, key: Optional[str], source: Any, now: float) -> None:
        last_t = self._last_t[kind]
        rec: dict[str, Any] = {
            P.INDEX: self.step,
            P.KIND: kind,
            P.TIME: now,
            P.DT: None if last_t is None else now - last_t,
        }
        if kind == P.KIND_CLOCK:
            starts = True  # each reading of the clock is a step of its triage (a second)
            self._clock_fields(rec)
        else:
            its = self.iterations[kind]
            sid, starts = its.fire(source)
            if kind == P.KIND_FORWARD:
                # one record per iteration (its first call), at most every MIN_FORWARD_RECORD_SECONDS
                if not starts or now - self._last_forward_write < P.MIN_FORWARD_RECORD_SECONDS:
                    return
                self._last_forward_write = now
            rec[P.ITER] = its.index
            rec[key or P.OPT] = sid
            if its.last_calls is not None:
                rec[P.STEPS_PER_ITERATION] = its.last_calls
            self._count_run_record(kind)
            if self._oom_pending is not None:
                self.loop_went_on()  # an allocation failed before this iteration: it was caught
        rec.update(self.reading())
        rec[P.LIMIT] = self.limit = self._limit()
        if self._free_ok and now >= self._next_free:
            self._next_free = now + P.FREE_SECONDS
            try:
                free = self._free()
            except Exception:  # noqa: BLE001 - no driver query here (a CPU build): never again
                free, self._free_ok = None, False
            if free is not None:
                rec[P.FREE] = free
        rec[P.DEVICE] = self.device
        self._last_t[kind] = now
        self.step += 1
        self._fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
        if now - self._last_flush >= FLUSH_SECONDS:
            self._last_flush = now
            self._fh.flush()
            if self._fh.tell() > self.max_bytes:
                self._rotate()
        if starts:
            self._triage_tick(now, P.UNIT_SECOND if kind == P.KIND_CLOCK else P.UNIT_STEP)

    def _rotate(self) -> None:
        """Keep the newest records and one older file, so the size stays bounded."""
        self._fh.close()
        os.replace(self.path, self.path.with_suffix(".jsonl.1"))
        self._fh = self._open_private(self.path, "a")

    def record_cell(self, cell_id: str, execution_count: Optional[int]) -> None:
        """After each cell: what it left allocated (the per-cell leak signal)."""
        rec = {P.TIME: time.time(), P.CELL: cell_id, P.EXECUTION_COUNT: execution_count, **self.reading()}
        with self._open_private(self.cells_path, "a") as fh:
            fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
        with self._lock:
            if self._fh is not None:
                # the step records flush every FLUSH_SECONDS of training: the last steps of a cell
                # would wait for the next cell's first flush (the server's view of an idle kernel)
                self._fh.flush()

    def close(self) -> None:
        self.stop_clock()
        self.unwatch_oom()
        self._disarm()
        for _ref, handle in self._forward_hooks.values():
            handle.remove()
        self._forward_hooks = {}
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def unavailable_reason() -> Optional[str]:
    """Why the probe cannot run here, or None when it can."""
    try:
        import torch
    except ImportError:
        how, why = torch_install_command()
        return f"torch is not installed: the GPU memory probe does nothing. Install it with: {how}   ({why})"
    if not torch.cuda.is_available():
        return "torch sees no CUDA GPU: the GPU memory probe does nothing."
    try:
        from torch.optim.optimizer import register_optimizer_step_post_hook  # noqa: F401
    except ImportError:
        return f"torch {torch.__version__} has no global optimizer-step hook (needs 2.0+)."
    return None
