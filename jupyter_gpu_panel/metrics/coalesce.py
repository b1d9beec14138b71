"""Work that grows with the data, kept off the event loop *and* out of its way.

A thread pool alone is not enough: ten history queries on ten threads make the event loop
compete with ten threads for the GIL, and its lag grows with them. So the computations run on
one worker thread, one at a time, and identical requests within ``ttl`` seconds (one sampler
tick: the data cannot have changed) share one computation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable


class Coalescer:
    def __init__(self, ttl: float, name: str) -> None:
        self.ttl = ttl
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._entries: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}
        self.computed = 0  # computations actually run (the rest were shared)

    async def run(self, key: Hashable, fn: Callable[[], Any]) -> Any:
        """``fn()`` on the worker thread, or the result of an identical call made within ``ttl``."""
        now = time.monotonic()
        for k, (t, fut) in list(self._entries.items()):
            if fut.done() and now - t > self.ttl:
                del self._entries[k]
        entry = self._entries.get(key)
        if entry is None:
            self.computed += 1
            entry = self._entries[key] = (now, asyncio.wrap_future(self._executor.submit(fn)))
        return await asyncio.shield(entry[1])

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
