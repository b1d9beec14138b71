"""The probe's iterations: optimizer calls grouped into iterations, and loops without an optimizer.

``Iterations`` (``grouping``) groups hook calls: an iteration ends when a source (an optimizer, a top-level
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

#: Top-level module calls the discovery pre-hook looks at before it gives up.
DISCOVERY_MAX_CALLS = 16


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
