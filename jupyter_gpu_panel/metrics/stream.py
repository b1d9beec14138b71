"""Fan-out of sampler ticks to websocket clients.

The sampler thread hands each snapshot to the event loop once; the loop sends it to
every client whose chosen rate is due, serialising once per distinct field
selection, so 100 clients cost one NVML read and a handful of ``json.dumps`` per tick.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional, Protocol

import orjson

from .sampler import Sampler, Snapshot
from .snapshot import Audience, OwnerLookup, snapshot_json

log = logging.getLogger(__name__)

#: Websocket writes per event-loop callback when a tick goes out to many clients.
SEND_BATCH = 20


class StreamClient(Protocol):
    interval: float
    fields: Optional[tuple[str, ...]]
    last_sent: float
    audience: Audience  # which processes, and which of their fields, it may see

    def send(self, message: str) -> None: ...


class StreamHub:
    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self.clients: set[StreamClient] = set()
        self.owner_of: Optional[OwnerLookup] = None
        self.published = 0  # ticks handed to the loop
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        sampler.add_listener(self._on_tick)

    def close(self) -> None:
        self._loop = None
        self.clients.clear()

    def add(self, client: StreamClient) -> None:
        """Called on the event loop, which is the loop ticks are handed to."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self.clients.add(client)

    def remove(self, client: StreamClient) -> None:
        self.clients.discard(client)

    def _on_tick(self, snap: Snapshot) -> None:
        # sampler thread: only hand over; never touch sockets here
        loop = self._loop
        if loop is not None and self.clients and not loop.is_closed():
            loop.call_soon_threadsafe(self.publish, snap)

    def publish(self, snap: Snapshot) -> None:
        self.published += 1
        tolerance = self.sampler.interval / 2
        encoded: dict[Any, str] = {}
        batch: list[tuple[StreamClient, str]] = []
        for client in list(self.clients):
            if snap.t - client.last_sent < client.interval - tolerance:
                continue
            key = (client.fields, client.audience)
            message = encoded.get(key)
            if message is None:
                doc = snapshot_json(self.sampler.status, snap, client.fields, self.owner_of, client.audience)
                message = encoded[key] = orjson.dumps({"type": "snapshot", "snapshot": doc}).decode()
            client.last_sent = snap.t
            batch.append((client, message))
        self._send_batched(batch)

    def publish_kernels(self, doc: dict[str, Any]) -> None:
        """The kernels document (the tracker calls this when it changed): to every client, encoded once."""
        message = kernels_message(doc)
        self._send_batched([(client, message) for client in list(self.clients)])

    def _send_batched(self, sends: list[tuple[StreamClient, str]]) -> None:
        """``SEND_BATCH`` writes per loop callback: 200 clients due on the same tick would
        otherwise hold the loop for tens of ms; in batches, other requests run in between."""
        for client, message in sends[:SEND_BATCH]:
            if client in self.clients:
                self._send(client, message)
        rest = sends[SEND_BATCH:]
        if rest:
            asyncio.get_running_loop().call_soon(self._send_batched, rest)

    def _send(self, client: StreamClient, message: str) -> None:
        try:
            client.send(message)
        except Exception:
            log.debug("dropping stream client", exc_info=True)
            self.remove(client)


def kernels_message(doc: dict[str, Any]) -> str:
    """``{"type": "kernels", "kernels": doc}``: pushed on change, so the panel polls nothing."""
    return orjson.dumps({"type": "kernels", "kernels": doc}, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def message_json(doc: dict[str, Any]) -> str:
    """A websocket message as strict JSON: NaN and infinities become null, as in REST answers."""
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY).decode()
