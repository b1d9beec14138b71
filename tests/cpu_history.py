"""A CPU stand-in for torch's CUDA allocator, at the one boundary the triage tests cannot cross
without a GPU: ``torch.cuda.memory._record_memory_history`` / ``_snapshot`` and the allocator's
counters are CUDA-only, and torch here is the CPU build.

``CPUAllocator`` is a ``TorchDispatchMode``: every storage an operator creates is an allocation
(``allocated`` counts the live ones), and while it records, each gets an ``alloc`` event with the
Python stack, innermost frame first, as torch's history has it (none inside autograd's backward,
where CUDA's history has no Python frame either), and a ``free_completed`` event when the storage
dies. ``HistoryProbe`` is the real ``Probe`` reading it instead of the CUDA allocator: the step
hook, the triage request, the recording window, the marker, the file written and the server's
reading of it are the real ones. Used in-process, by a script (``python -m cpu_history``) and in
a real kernel. The GPU run (``tests/gpu/triage_period_proof.py``) uses torch's own history.
"""

from __future__ import annotations

import traceback
import weakref
from pathlib import Path
from typing import Any, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from jupyter_gpu_panel.probe import Probe


class CPUAllocator(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}  # storage address -> bytes
        self.events: Optional[list[dict[str, Any]]] = None  # the history, while recording
        self.allocs = self.frees = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t)
        return out

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        addr, size = storage.data_ptr(), storage.nbytes()
        if size == 0 or addr in self.live:  # a view, or an in-place result: no new storage
            return
        self.allocs += 1
        self.live[addr] = size
        # torch keeps a storage's Python object while its C++ storage lives (an autograd graph's
        # saved tensors included), so this fires when the memory is given back
        weakref.finalize(storage, self._freed, addr, size).atexit = False
        if self.events is not None:
            in_backward = torch._C._current_autograd_node() is not None
            stack = [] if in_backward else traceback.extract_stack()[:-3]
            frames = [{"filename": f.filename, "line": f.lineno, "name": f.name} for f in reversed(stack)]
            self.events.append({"action": "alloc", "addr": addr, "size": size, "frames": frames})

    def _freed(self, addr: int, size: int) -> None:
        if self.live.pop(addr, None) is None:
            return
        self.frees += 1
        if self.events is not None:
            self.events.append({"action": "free_completed", "addr": addr, "size": size})

    @property
    def allocated(self) -> int:
        return sum(self.live.values())


class HistoryProbe(Probe):
    """The probe, reading ``CPUAllocator`` where it reads the CUDA allocator."""

    def __init__(self, alloc: CPUAllocator, directory: Optional[Path] = None) -> None:
        self.alloc = alloc
        super().__init__(directory=directory, device=0)

    def _limit(self) -> int:
        return 1 << 34

    def _free(self) -> Optional[int]:
        return None

    def reading(self) -> dict[str, Any]:
        held = self.alloc.allocated
        return {
            "allocated": held,
            "reserved": held,
            "active": held,
            "inactive_split": 0,
            "peak_allocated": held,
            "alloc_retries": 0,
            "num_ooms": 0,
        }

    def _triage_readings(self) -> tuple[Optional[int], Optional[int]]:
        return self.alloc.allocated, self.alloc.allocs + 2 * self.alloc.frees

    def _record_history(self, on: bool) -> None:
        self.alloc.events = [] if on else None

    def _snapshot(self) -> dict[str, Any]:
        return {"device_traces": [list(self.alloc.events or [])]}

    def _triage_step_marker(self) -> None:
        torch.empty(1)  # through the mode: an allocation whose stack holds this function's name


def start(directory: Optional[str] = None) -> HistoryProbe:
    """The stand-in allocator on (this thread's operators) and the probe started with it."""
    alloc = CPUAllocator()
    alloc.__enter__()
    probe = HistoryProbe(alloc, Path(directory) if directory else None)
    probe.open()
    return probe


def stop(probe: HistoryProbe) -> None:
    probe.close()
    probe.alloc.__exit__(None, None, None)
