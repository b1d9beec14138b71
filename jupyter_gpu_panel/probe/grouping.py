"""``Iterations``: hook calls grouped into iterations (an iteration ends when a source that
already fired in it fires again). Its own module: ``state.ProbeState`` names it, and
``iterations.py`` builds on ``ProbeState``, so keeping it there would close an import circle.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Optional

from . import protocol as P

#: An iteration holding this many hook calls ends anyway (a loop that makes a new optimizer
#: every iteration never repeats one).
MAX_CALLS_PER_ITERATION = 64


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
