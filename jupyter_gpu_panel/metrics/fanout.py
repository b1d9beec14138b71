"""``Fanout``: sampler ticks and the kernels document, out to every websocket client.

The sampler thread hands each snapshot to the event loop once; the loop sends it to
every client whose chosen rate is due, serialising once per distinct field
selection, so 100 clients cost one NVML read and a handful of ``json.dumps`` per tick.

Messages are encoded once, as bytes (tornado sends bytes as they are, text frames all the
same), and handed to each client's send queue (``api/send_queue.py``; the clients are the
sockets of ``api/websocket.py``): a client that reads slowly gets the latest snapshot and
kernels document, never a backlog.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional, Protocol, Union

import orjson

from .privacy import Audience
from .sampler import Sampler, Snapshot
from .snapshot_document import OwnerLookup, snapshot_json

log = logging.getLogger(__name__)

#: Websocket writes per event-loop callback when a tick goes out to many clients.
SEND_BATCH = 20

Message = Union[str, bytes]


class FanoutClient(Protocol):
    interval: float
    fields: Optional[tuple[str, ...]]
    last_sent: float
    audience: Audience  # which processes, and which of their fields, it may see

    def send(self, message: Message, kind: str) -> None:
        """Queue a message of a kind ("snapshot", "kernels", ...) for this client; never blocks."""
        ...


class Fanout:
    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self.clients: set[FanoutClient] = set()
        self.owner_of: Optional[OwnerLookup] = None
        self.published = 0  # ticks handed to the loop
        #: the kernels document's version: its ``seq`` in stream messages (a client that skipped
        #: versions sees a gap, never a step back)
        self.kernels_seq = 0
        #: the last kernels message, for a client that connects between changes
        self.kernels_latest: Optional[bytes] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        sampler.add_listener(self._on_tick)

    def close(self) -> None:
        self._loop = None
        self.clients.clear()
        self.kernels_latest = None

    def add(self, client: FanoutClient) -> None:
        """Called on the event loop, which is the loop ticks are handed to."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self.clients.add(client)

    def remove(self, client: FanoutClient) -> None:
        self.clients.discard(client)

    def _on_tick(self, snap: Snapshot) -> None:
        # sampler thread: only hand over; never touch sockets here
        loop = self._loop
        if loop is not None and self.clients and not loop.is_closed():
            loop.call_soon_threadsafe(self.publish, snap)

    def publish(self, snap: Snapshot) -> None:
        self.published += 1
        tolerance = self.sampler.interval / 2
        encoded: dict[Any, bytes] = {}
        batch: list[tuple[FanoutClient, Message]] = []
        for client in list(self.clients):
            if snap.t - client.last_sent < client.interval - tolerance:
                continue
            key = (client.fields, client.audience)
            message = encoded.get(key)
            if message is None:
                doc = snapshot_json(self.sampler.status, snap, client.fields, self.owner_of, client.audience)
                message = encoded[key] = snapshot_message(doc)
            client.last_sent = snap.t
            batch.append((client, message))
        self._send_batched(batch, "snapshot")

    def publish_kernels(self, doc: dict[str, Any]) -> None:
        """The kernels document (the tracker calls this when it changed): to every client, encoded once."""
        self.kernels_seq += 1
        message = self.kernels_latest = kernels_message(doc, self.kernels_seq)
        self._send_batched([(client, message) for client in list(self.clients)], "kernels")

    def _send_batched(self, sends: list[tuple[FanoutClient, Message]], kind: str) -> None:
        """``SEND_BATCH`` writes per loop callback: 200 clients due on the same tick would
        otherwise hold the loop for tens of ms; in batches, other requests run in between."""
        for client, message in sends[:SEND_BATCH]:
            if client in self.clients:
                self._send(client, message, kind)
        rest = sends[SEND_BATCH:]
        if rest:
            asyncio.get_running_loop().call_soon(self._send_batched, rest, kind)

    def _send(self, client: FanoutClient, message: Message, kind: str) -> None:
        try:
            client.send(message, kind)
        except Exception:
            log.debug("dropping websocket client", exc_info=True)
            self.remove(client)


def snapshot_message(doc: dict[str, Any]) -> bytes:
    """``{"type": "snapshot", "snapshot": doc}``: the one encoding of a snapshot message, for the
    tick's fanout and a new socket's first picture alike."""
    return orjson.dumps({"type": "snapshot", "snapshot": doc})


def kernels_message(doc: dict[str, Any], seq: int) -> bytes:
    """``{"type": "kernels", "seq": n, "kernels": doc}``: pushed on change, so the panel polls
    nothing. ``seq`` comes first, so a reader can check order without parsing the document."""
    return orjson.dumps({"type": "kernels", "seq": seq, "kernels": doc}, option=orjson.OPT_SERIALIZE_NUMPY)


def message_json(doc: dict[str, Any]) -> str:
    """A websocket message as strict JSON: NaN and infinities become null, as in REST answers."""
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY).decode()
