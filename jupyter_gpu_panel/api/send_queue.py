"""Backpressure for one websocket client: a bounded queue and one write in flight.

A client that reads slowly (a background tab, a stalled network) must not grow the server:
tornado buffers every ``write_message`` in user space until the socket takes it. So each
client gets a ``SendQueue`` (pure logic, no I/O) and a ``Writer`` that hands tornado the
next message only when the previous one reached the kernel's socket buffer. State documents
(a snapshot, the kernels document) replace a queued one of their kind: only the latest
matters. A client whose write has not drained for ``stall_timeout`` seconds is closed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any, Callable, Optional, Union

Message = Union[str, bytes]

#: Kinds where a newer message makes a queued older one worthless.
LATEST_ONLY = frozenset({"snapshot", "kernels"})
#: Queued messages of other kinds (hello, config, error: answers to the client's own
#: messages) a client may leave unread before it is closed: a client that sends and never
#: reads could otherwise queue answers forever.
MAX_QUEUED = 32
#: RFC 6455 "policy violation": the server ends the connection for the client's behaviour.
CLOSE_TOO_SLOW = 1008


def too_slow_reason(stall_timeout: float) -> str:
    """The close frame's reason (at most 123 bytes by RFC 6455)."""
    return f"client too slow: not read for {stall_timeout:g} s"


QUEUE_FULL_REASON = f"client too slow: {MAX_QUEUED} answers unread"


class SendQueue:
    """Messages waiting for the socket, in the order they were produced.

    A newer message of a ``LATEST_ONLY`` kind drops the queued one of that kind and goes to
    the back: what the client receives is always a subsequence of what was sent to it, in
    order, so a snapshot's ``t`` and a kernels document's ``seq`` never step back.
    """

    def __init__(self, max_queued: int = MAX_QUEUED) -> None:
        self.max_queued = max_queued
        # key: the kind for LATEST_ONLY kinds (one at most), (kind, n) for the others
        self._items: OrderedDict[Any, tuple[str, Message]] = OrderedDict()
        self._others = 0
        self._n = itertools.count()
        self.replaced = 0  # messages dropped because a newer one of their kind came

    def __len__(self) -> int:
        return len(self._items)

    def put(self, kind: str, message: Message) -> bool:
        """Queue a message; False (nothing queued) when ``max_queued`` others already wait."""
        if kind in LATEST_ONLY:
            if self._items.pop(kind, None) is not None:
                self.replaced += 1
            self._items[kind] = (kind, message)
            return True
        if self._others >= self.max_queued:
            return False
        self._others += 1
        self._items[(kind, next(self._n))] = (kind, message)
        return True

    def pop(self) -> Optional[tuple[str, Message]]:
        """The oldest message and its kind, or None."""
        if not self._items:
            return None
        _, (kind, message) = self._items.popitem(last=False)
        if kind not in LATEST_ONLY:
            self._others -= 1
        return kind, message

    def clear(self) -> None:
        self._items.clear()
        self._others = 0


class Writer:
    """Drains a ``SendQueue`` into a socket, one write at a time.

    ``write`` starts a write and returns an awaitable that completes when the socket took the
    message (tornado's ``write_message``) or raises when the socket closed; ``close(code,
    reason)`` ends the connection. Both are called on the event loop only.
    """

    def __init__(
        self,
        write: Callable[[Message], Awaitable[None]],
        close: Callable[[int, str], None],
        stall_timeout: float,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._write = write
        self._close = close
        self.stall_timeout = stall_timeout
        self.queue = SendQueue(max_queued)
        self.closed = False
        self.closed_reason: Optional[str] = None  # set when this writer closed the client
        self.sent = 0
        self._in_flight: Optional[asyncio.Future[None]] = None
        self._since = 0.0  # loop time the write in flight started
        self._timer: Optional[asyncio.TimerHandle] = None

    @property
    def busy(self) -> bool:
        return self._in_flight is not None

    def send(self, kind: str, message: Message) -> None:
        if self.closed:
            return
        if not self.queue.put(kind, message):
            self._give_up(QUEUE_FULL_REASON)
            return
        self._pump()

    def stop(self) -> None:
        """The connection is gone: drop what is queued and the stall timer."""
        self.closed = True
        self.queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _pump(self) -> None:
        if self._in_flight is not None or self.closed:
            return
        item = self.queue.pop()
        if item is None:
            return
        try:
            future = asyncio.ensure_future(self._write(item[1]))
        except Exception:  # noqa: BLE001 -- closed under us (tornado's WebSocketClosedError, or the stream's)
            self.stop()
            return
        self._in_flight = future
        self._since = asyncio.get_running_loop().time()
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.stall_timeout, self._check_stall)
        # done callbacks run from the loop (call_soon), so a chain of writes never recurses
        future.add_done_callback(self._written)

    def _written(self, future: asyncio.Future[None]) -> None:
        self._in_flight = None
        if future.cancelled() or future.exception() is not None:  # the socket closed mid-write
            self.stop()
            return
        self.sent += 1
        self._pump()

    def _check_stall(self) -> None:
        # one timer per client at most, re-armed for the write now in flight: no timer per write
        self._timer = None
        if self._in_flight is None or self.closed:
            return
        waited = asyncio.get_running_loop().time() - self._since
        if waited >= self.stall_timeout:
            self._give_up(too_slow_reason(self.stall_timeout))
        else:
            self._timer = asyncio.get_running_loop().call_later(self.stall_timeout - waited, self._check_stall)

    def _give_up(self, reason: str) -> None:
        self.closed_reason = reason
        self.stop()
        # the close frame queues behind the write in flight: a client that starts reading again
        # gets it; one that never does is cut off by tornado after its close timeout (5 s)
        self._close(CLOSE_TOO_SLOW, reason)
