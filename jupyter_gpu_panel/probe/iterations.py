"""The probe's iterations: optimizer calls grouped into iterations, and loops without an optimizer.

``Iterations`` groups hook calls: an iteration ends when a source (an optimizer, a top-level
module) that already fired in it fires again. ``ForwardRecords`` finds a loop's top-level
``nn.Module`` calls (a global forward pre-hook, on only for one iteration) and hooks them, so an
inference or generation loop gets one ``kind: forward`` record an iteration.
"""

from __future__ import annotations

import sys
import time
import weakref
from typing import Any, Callable, Optional

from . import protocol as P
from .state import ProbeState

#: An iteration holding this many hook calls ends anyway (a loop that makes a new optimizer
#: every iteration never repeats one).
MAX_CALLS_PER_ITERATION = 64
#: Top-level module calls the discovery pre-hook looks at before it gives up.
DISCOVERY_MAX_CALLS = 16


class Iterations:
    """Groups hook calls into iterations: an iteration ends when a source (an optimizer, a
    top-level module) that already fired in it fires again.

    Sources get small stable ids in the order first seen (weakly held: a source that is
    garbage-collected frees its slot in the lookup, never its id). A new source whose
    predecessors in the iteration all died (a loop that builds its optimizer every iteration)
    starts a new iteration too, and no iteration holds more than ``MAX_CALLS_PER_ITERATION``.
    """

    def __init__(self) -> None:
        self.index = -1  # no iteration yet
        self.calls = 0  # hook calls in the current iteration
        self.last_calls: Optional[int] = None  # hook calls of the previous complete iteration
        self._fired: dict[int, Callable[[], Any]] = {}  # source id -> weak reference, this iteration
        self._ids: dict[int, tuple[int, Callable[[], Any]]] = {}  # id(obj) -> (source id, ref)
        self._next = 0

    def source_id(self, obj: Any) -> tuple[int, Callable[[], Any], bool]:
        """``(small id, weak reference, first time seen)``."""
        hit = self._ids.get(id(obj))
        if hit is not None and hit[1]() is obj:
            return hit[0], hit[1], False
        try:
            ref: Callable[[], Any] = weakref.ref(obj)
        except TypeError:  # no weak references: hold it (optimizers and modules have them)
            ref = (lambda o: lambda: o)(obj)
        sid = min(self._next, P.MAX_SOURCES)
        self._next += 1
        if len(self._ids) >= 256:  # drop sources that were garbage-collected
            self._ids = {k: v for k, v in self._ids.items() if v[1]() is not None}
        self._ids[id(obj)] = (sid, ref)
        return sid, ref, True

    def fire(self, obj: Any) -> tuple[int, bool]:
        """Count one hook call of ``obj``: ``(its id, whether it starts a new iteration)``."""
        sid, ref, new = self.source_id(obj)
        starts = (
            self.index < 0
            or sid in self._fired
            or self.calls >= MAX_CALLS_PER_ITERATION
            or (new and all(r() is None for r in self._fired.values()))
        )
        if starts:
            if self.index >= 0:
                self.last_calls = self.calls
            self.index += 1
            self.calls = 0
            self._fired = {}
        self._fired[sid] = ref
        self.calls += 1
        return sid, starts


class ForwardRecords(ProbeState):
    """Mixed into ``core.Probe``, whose ``__init__`` sets what these methods use (see
    ``ProbeState``): ``torch``, the discovery state, ``_forward_hooks``, ``_last_step_t`` and ``_record``."""

    def _on_forward(self, module: Any, args: Any, output: Any) -> None:
        """End of a top-level module call: recorded only in a loop without an optimizer."""
        now = time.time()
        if self._last_step_t is not None and now - self._last_step_t < self.idle_after():
            return None  # a training loop: its optimizer steps are the readings
        try:
            self._record(P.KIND_FORWARD, P.MOD, module, now)
        except Exception as exc:  # noqa: BLE001 - an inference loop must never fail because of us
            print(f"jupyter-gpu-panel: probe record failed: {exc}", file=sys.stderr)
        return None

    def arm_forward_discovery(self) -> None:
        """Look at the next top-level module calls (until one repeats) and hook those modules.
        Idempotent; the global pre-hook removes itself after one iteration of the loop."""
        if self._discovery is not None:
            return
        try:
            from torch.nn.modules.module import register_module_forward_pre_hook

            self._call_impl_code = self.torch.nn.Module._call_impl.__code__
        except (ImportError, AttributeError):
            return
        self._discovery_seen = set()
        self._discovery_calls = 0
        self._discovery = register_module_forward_pre_hook(self._discover)

    def _disarm(self) -> None:
        if self._discovery is not None:
            self._discovery.remove()
            self._discovery = None

    def _is_top_level_call(self) -> Optional[bool]:
        """Whether the module call running the hook is outside any other module call (None:
        this torch calls hooks from somewhere we do not recognise)."""
        code = self._call_impl_code
        f: Any = sys._getframe(1)  # Module._call_impl of this call is a frame or two above
        seen = 0
        while f is not None:
            if f.f_code is code:
                seen += 1
                if seen > 1:
                    return False
            f = f.f_back
        return True if seen == 1 else None

    def _discover(self, module: Any, args: Any) -> None:
        try:
            top = self._is_top_level_call()
            if top is None:
                self._disarm()
                return None
            if not top:
                return None
            self._discovery_calls += 1
            key = id(module)
            if key in self._discovery_seen or self._discovery_calls > DISCOVERY_MAX_CALLS:
                self._disarm()  # one iteration seen: every top-level module of the loop is hooked
                return None
            self._discovery_seen.add(key)
            self.hook_module(module)
        except Exception:  # noqa: BLE001 - never break the user's forward
            self._disarm()
        return None

    def hook_module(self, module: Any) -> None:
        """Record at the end of ``module``'s calls when no optimizer steps (idempotent)."""
        hit = self._forward_hooks.get(id(module))
        if hit is not None and hit[0]() is module:
            return
        handle = module.register_forward_hook(self._on_forward)
        try:
            ref: Callable[[], Any] = weakref.ref(module)
        except TypeError:
            ref = (lambda o: lambda: o)(module)
        if len(self._forward_hooks) >= 64:
            self._forward_hooks = {k: v for k, v in self._forward_hooks.items() if v[0]() is not None}
        self._forward_hooks[id(module)] = (ref, handle)

    # -- triage: which allocation stack survives every step ---------------------------------
