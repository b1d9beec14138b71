"""The in-kernel memory probe: one line of allocator readings after every optimizer step.

``%load_ext jupyter_gpu_panel`` in a notebook, or ``jupyter_gpu_panel.probe.start()`` in a
script (torchrun included: each rank writes its own file). torch's global optimizer-step
hook calls us after every ``optimizer.step()`` of any optimizer, so the training loop needs
no change, and every reading is taken at the same point of the iteration: boundary
readings are deterministic, which is what makes a 512 B/step slope measurable.

Records use the ``*.iters.jsonl`` format of the project's recorded traces, plus
``limit`` (device total x per-process memory fraction) and ``device``. They go to
``<jupyter runtime dir>/gpu-panel/probe-<pid>.iters.jsonl`` (directory 0700, files 0600,
rotated at ``max_bytes``) beside ``probe-<pid>.json`` (who wrote it), where the server
finds them. Nothing here synchronises the GPU: the allocator counters are host-side.

Triage: when the server writes ``probe-<pid>.triage-request`` (on a leak alarm, or the panel's
"Find the leaking line"), the step hook notices it within a second, records torch's
allocation history for the next few steps and writes what it saw to ``probe-<pid>.triage.json``
(the allocations with their Python stacks, and each stack line's code, which only this process
can read: notebook cells live in its linecache). The server names the stack that survives.
"""

from __future__ import annotations

import json
import linecache
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Optional

from .protocol import (
    ALREADY_LOADED,
    MAX_META_BYTES,
    PROBE_DIR_NAME,
    RELEASED_PREFIX,
    TRIAGE_MAX_STEPS,
    TRIAGE_STEPS,
    loaded_reply,
    probe_file,
)

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
FLUSH_SECONDS = 0.5
#: How often the step hook looks for a triage request (a stat call, so not every step).
TRIAGE_POLL_SECONDS = 1.0
TRIAGE_MAX_ENTRIES = 200_000
TRIAGE_MAX_FRAMES = 32  # enough to get out of torch's own frames to the user's line


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


class Probe:
    """Writes one record per optimizer step of this process."""

    def __init__(
        self, directory: Optional[Path] = None, device: Optional[int] = None, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        import torch

        self.torch = torch
        self.device = torch.cuda.current_device() if device is None else device
        self.dir = Path(directory) if directory else probe_dir()
        self.pid = os.getpid()
        self.max_bytes = max_bytes
        self.path = probe_file(self.dir, self.pid, "iters")
        self.cells_path = probe_file(self.dir, self.pid, "cells")
        self.meta_path = probe_file(self.dir, self.pid, "meta")
        self.triage_request_path = probe_file(self.dir, self.pid, "triage-request")
        self.triage_path = probe_file(self.dir, self.pid, "triage")
        self._triage_left = 0  # steps still to record; 0 when not recording
        self._triage_steps = 0
        self._next_triage_check = 0.0
        self.step = 0
        self._last_t: Optional[float] = None
        self._last_flush = 0.0
        self._handle: Any = None
        self._fh: Any = None
        self.limit = self._limit()

    def _limit(self) -> int:
        """What this process may allocate: the card's total times the per-process fraction."""
        cuda = self.torch.cuda
        total = cuda.get_device_properties(self.device).total_memory
        fraction = 1.0
        try:
            fraction = float(cuda.get_per_process_memory_fraction(self.device))
        except (AttributeError, RuntimeError):  # older torch: no getter
            pass
        return int(total * fraction)

    def open(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        meta = {
            "pid": self.pid,
            "kernel_id": _kernel_id(),
            "device": self.device,
            "limit": self.limit,
            "started": time.time(),
            "torch": self.torch.__version__,
            "argv": sys.argv[:4],
            "rank": os.environ.get("RANK"),
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
                "allocated": all_("allocated_bytes"),
                "reserved": all_("reserved_bytes"),
                "active": all_("active_bytes"),
                "inactive_split": all_("inactive_split_bytes"),
                "peak_allocated": all_("allocated_bytes", "peak"),
                "alloc_retries": int(nested.get("num_alloc_retries", 0)),
                "num_ooms": int(nested.get("num_ooms", 0)),
            }
        stats = self.torch.cuda.memory_stats(self.device)
        return {
            "allocated": stats.get("allocated_bytes.all.current", 0),
            "reserved": stats.get("reserved_bytes.all.current", 0),
            "active": stats.get("active_bytes.all.current", 0),
            "inactive_split": stats.get("inactive_split_bytes.all.current", 0),
            "peak_allocated": stats.get("allocated_bytes.all.peak", 0),
            "alloc_retries": stats.get("num_alloc_retries", 0),
            "num_ooms": stats.get("num_ooms", 0),
        }

    def _on_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        now = time.time()
        rec: dict[str, Any] = {
            "i": self.step,
            "t": now,
            "dt": None if self._last_t is None else now - self._last_t,
        }
        rec.update(self.reading())
        rec["limit"] = self.limit
        rec["device"] = self.device
        self._last_t = now
        self.step += 1
        self._fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
        if now - self._last_flush >= FLUSH_SECONDS:
            self._last_flush = now
            self._fh.flush()
            if self._fh.tell() > self.max_bytes:
                self._rotate()
        try:
            if self._triage_left:
                self._triage_step_marker()
                self._triage_left -= 1
                if not self._triage_left:
                    self._finish_triage()
            elif now >= self._next_triage_check:
                self._next_triage_check = now + TRIAGE_POLL_SECONDS
                if os.path.exists(self.triage_request_path):
                    self._start_triage()
        except Exception as exc:  # noqa: BLE001 - a training step must never fail because of us
            if self._triage_left:
                self._triage_left = 0
                try:
                    self._record_history(False)  # never leave the (costly) recording on
                except Exception:  # noqa: BLE001
                    pass
            print(f"jupyter-gpu-panel: triage failed: {exc}", file=sys.stderr)

    # -- triage: which allocation stack survives every step ---------------------------------

    def _start_triage(self) -> None:
        steps = TRIAGE_STEPS
        try:
            with open(self.triage_request_path, "rb") as fh:
                req = json.loads(fh.read(MAX_META_BYTES) or b"{}")
            steps = max(1, min(TRIAGE_MAX_STEPS, int(req.get("steps", steps))))
        except (OSError, ValueError, TypeError, AttributeError):
            pass
        try:
            self.triage_request_path.unlink()
        except OSError:
            pass
        try:
            self._record_history(True)
        except Exception as exc:  # noqa: BLE001 - a training step must never fail because of us
            self._write_triage({"error": f"torch cannot record the allocation history here: {exc}"})
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
            self._write_triage({"error": error})
            return
        traces = snap.get("device_traces") or []
        events, code = [], {}
        for ev in traces[self.device] if self.device < len(traces) else []:
            frames = [
                {"filename": f.get("filename"), "line": f.get("line"), "name": f.get("name")}
                for f in (ev.get("frames") or [])[:TRIAGE_MAX_FRAMES]
            ]
            if ev.get("action") == "alloc":
                for f in frames:
                    key = f"{f['filename']}:{f['line']}"
                    if key not in code:
                        code[key] = linecache.getline(str(f["filename"]), int(f["line"] or 0)).strip() or None
            events.append(
                {"action": ev.get("action"), "addr": ev.get("addr"), "size": ev.get("size"), "frames": frames}
            )
        self._write_triage({"device_traces": [events], "code": code})

    def _write_triage(self, doc: dict[str, Any]) -> None:
        doc = {"t": time.time(), "pid": self.pid, "device": self.device, "steps": self._triage_steps, **doc}
        tmp = self.triage_path.with_suffix(".tmp")
        self._write_private(tmp, json.dumps(doc, separators=(",", ":")))
        os.replace(tmp, self.triage_path)  # the server never reads half a file

    def _rotate(self) -> None:
        """Keep the newest records and one older file, so the size stays bounded."""
        self._fh.close()
        os.replace(self.path, self.path.with_suffix(".jsonl.1"))
        self._fh = self._open_private(self.path, "a")

    def record_cell(self, cell_id: str, execution_count: Optional[int]) -> None:
        """After each cell: what it left allocated (the per-cell leak signal)."""
        rec = {"t": time.time(), "cell": cell_id, "execution_count": execution_count, **self.reading()}
        with self._open_private(self.cells_path, "a") as fh:
            fh.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None


_probe: Optional[Probe] = None


def unavailable_reason() -> Optional[str]:
    """Why the probe cannot run here, or None when it can."""
    try:
        import torch
    except ImportError:
        return "torch is not installed: the GPU memory probe does nothing."
    if not torch.cuda.is_available():
        return "torch sees no CUDA GPU: the GPU memory probe does nothing."
    try:
        from torch.optim.optimizer import register_optimizer_step_post_hook  # noqa: F401
    except ImportError:
        return f"torch {torch.__version__} has no global optimizer-step hook (needs 2.0+)."
    return None


def start(
    directory: Optional[str] = None, device: Optional[int] = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> Optional[Probe]:
    """Start recording after every optimizer step of this process. Idempotent."""
    global _probe
    if _probe is not None:
        return _probe
    reason = unavailable_reason()
    if reason:
        print(f"jupyter-gpu-panel: {reason}", file=sys.stderr)
        return None
    probe = Probe(Path(directory) if directory else None, device, max_bytes)
    probe.open()
    _probe = probe
    return probe


def stop() -> None:
    global _probe
    if _probe is not None:
        _probe.close()
        _probe = None


def _post_run_cell(result: Any) -> None:
    if _probe is None:
        return
    info = getattr(result, "info", None)
    source = getattr(info, "raw_cell", "") or ""
    cell_id = getattr(info, "cell_id", None) or f"src:{hash(source.strip()) & 0xFFFFFFFF:08x}"
    _probe.record_cell(cell_id, getattr(result, "execution_count", None))


def load_in_kernel(ipython: Any) -> None:
    """Start the probe in this kernel and say so (``protocol.LOAD_CODE`` runs this): started,
    already running, or why it cannot run. Safe to call again."""
    if _probe is not None:
        print(f"{ALREADY_LOADED} (cuda:{_probe.device}).")
        return
    probe = start()
    if probe is None:
        return
    if _post_run_cell not in ipython.events.callbacks.get("post_run_cell", []):
        ipython.events.register("post_run_cell", _post_run_cell)
    print(loaded_reply(probe.device))


def load_ipython_extension(ipython: Any) -> None:
    load_in_kernel(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    try:
        ipython.events.unregister("post_run_cell", _post_run_cell)
    except ValueError:
        pass
    stop()


def release_cached() -> dict[str, Any]:
    """``torch.cuda.empty_cache()`` in this process, and what it gave back (the panel's *Release
    cached memory* on an idle kernel). Variables stay; only the allocator's unused blocks go.
    Prints one line the server reads (``protocol.RELEASED_PREFIX`` + JSON)."""
    torch = sys.modules.get("torch")  # never import torch here: a kernel that did not, holds none
    report: dict[str, Any] = {"torch": torch is not None, "cuda": False, "reserved_before": 0, "reserved_after": 0}
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        report["cuda"] = True
        report["reserved_before"] = int(sum(torch.cuda.memory_reserved(d) for d in range(torch.cuda.device_count())))
        torch.cuda.empty_cache()
        report["reserved_after"] = int(sum(torch.cuda.memory_reserved(d) for d in range(torch.cuda.device_count())))
    print(RELEASED_PREFIX + json.dumps(report))
    return report
