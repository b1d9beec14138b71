"""What ``core.Probe`` and its mixins (``clock``, ``iterations``, ``triage``, ``oom``) share.

Each mixin reads attributes that ``Probe.__init__`` sets and calls methods that ``core`` or
another mixin defines. ``ProbeState``, the mixins' common base, declares them once, so the type
checker sees every such use and ``Probe`` must define each of the methods. It sits last in
``Probe``'s method order: its abstract methods never shadow the real ones.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Optional

from .grouping import Iterations


class ProbeState(ABC):
    """The attributes ``core.Probe.__init__`` sets and the methods the mixins call across."""

    # torch, imported when the probe starts (the package imports nothing of it before): Any,
    # since the probe runs against whichever torch the user's kernel has
    torch: Any
    device: int
    pid: int
    limit: int
    step: int  # records written (the ``i`` of the next one)
    iterations: dict[str, Iterations]  # per kind: optimizer steps, forward calls
    _last_t: dict[str, Optional[float]]  # per kind: the newest record's time
    _lock: threading.Lock  # the clock's thread records too
    _fh: Any  # the steps file while open (a text file from ``os.fdopen``), else None
    triage_request_path: Path
    triage_path: Path
    _next_triage_check: float
    _last_step_t: Optional[float]
    _discovery: Any  # torch's handle of the forward-discovery pre-hook, while it looks
    _discovery_seen: set[int]
    _discovery_calls: int
    _forward_hooks: dict[int, tuple[Callable[[], Any], Any]]  # id(module) -> (ref, handle)
    _call_impl_code: Any  # the code object of torch's ``Module._call_impl``
    _ticks: int  # the clock's: ``iter`` of its next record

    @abstractmethod
    def reading(self) -> dict[str, Any]:
        """The allocator's state now, in the ``*.iters.jsonl`` fields."""

    @abstractmethod
    def _limit(self) -> int:
        """What this process may allocate now."""

    @abstractmethod
    def _record(self, kind: str, key: Optional[str], source: Any, now: float) -> None:
        """One record of ``kind`` in the steps file."""

    @abstractmethod
    def _write_private(self, path: Path, text: str) -> None:
        """Write a file only this user can read, never through a symlink."""

    @abstractmethod
    def idle_after(self) -> float:
        """Seconds without an optimizer step after which a loop's forward calls are recorded."""
