"""``WS stream``, the websocket: one snapshot per tick, at the rate and with the fields the client
picks, and the kernels document on every change (both from ``metrics/fanout.py``).

A bad message gets an ``{"type": "error", "message": ...}`` reply and the socket stays open.
Every message goes through the client's send queue (``send_queue.py``): one write in flight,
the latest snapshot and kernels document only, and a client that does not read for
``GPUPanel.stream_stall_timeout`` seconds is closed (1008, "client too slow: ...").
"""

from __future__ import annotations

import math
from typing import Any, Optional

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from tornado import web, websocket

from ..metrics.fanout import Message, kernels_message, message_json, snapshot_message
from ..metrics.privacy import Audience
from ..metrics.sampler import MIN_INTERVAL
from ..metrics.snapshot_document import parse_fields, snapshot_json
from .base import AUTH_RESOURCE, MAX_BODY_BYTES, PanelMixin, parse_json_object
from .send_queue import Writer

#: The slowest rate a client may ask for (one snapshot an hour).
MAX_INTERVAL = 3600.0


def parse_stream_message(raw: Any, server_interval: float) -> dict[str, Any]:
    """A client's ``{"interval"?, "fields"?}`` checked; ValueError with a message otherwise."""
    msg = parse_json_object(raw if isinstance(raw, (str, bytes)) else str(raw), "a message")
    unknown = sorted(set(msg) - {"interval", "fields"})
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(repr(k[:40]) for k in unknown[:5])}; send interval and/or fields")
    out: dict[str, Any] = {}
    if "interval" in msg:
        value = msg["interval"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("interval must be a number of seconds")
        value = float(value) if not isinstance(value, int) or abs(value) < 10**9 else math.inf
        if not math.isfinite(value) or not 0 < value <= MAX_INTERVAL:
            raise ValueError(f"interval must be a number of seconds in (0, {MAX_INTERVAL:.0f}]")
        # never faster than the server ticks, whatever a client asks for
        out["interval"] = max(value, server_interval, MIN_INTERVAL)
    if "fields" in msg:
        fields = msg["fields"]
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            raise ValueError("fields must be a list of field names or null")
        out["fields"] = parse_fields(fields)
    return out


class StreamHandler(PanelMixin, JupyterHandler, websocket.WebSocketHandler):
    interval: float
    fields: Optional[tuple[str, ...]]
    last_sent: float
    audience: Audience
    writer: Optional[Writer] = None

    async def pre_get(self) -> None:
        user = self.current_user
        allowed = await ensure_async(self.authorizer.is_authorized(self, user, "read", AUTH_RESOURCE))
        if not allowed:
            raise web.HTTPError(403)

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self.pre_get()
        res = super().get(*args, **kwargs)
        if res is not None:
            await res

    def get_compression_options(self) -> Optional[dict[str, Any]]:
        return None

    @property
    def max_message_size(self) -> int:
        return MAX_BODY_BYTES

    def open(self, *args: Any, **kwargs: Any) -> None:
        panel = self.panel
        sampler = panel.sampler
        self.interval = sampler.interval
        self.fields = None
        self.last_sent = 0.0
        self.audience = panel.audience()
        self.writer = Writer(self._write, self._close_slow, panel.stream_stall_timeout)
        self.send(message_json({"type": "hello", "status": panel.status_json()}), "hello")
        snap = sampler.snapshot()
        if snap is not None:  # the first picture at once, not after a tick
            doc = snapshot_json(sampler.status, snap, None, panel.tracker.owner_of, self.audience)
            self.send(snapshot_message(doc), "snapshot")
            self.last_sent = snap.t
        if panel.fanout.kernels_latest is not None:  # then every change, as the tracker sees it
            self.send(panel.fanout.kernels_latest, "kernels")
        elif panel.tracker.refreshed:
            self.send(kernels_message(panel.tracker.doc, panel.fanout.kernels_seq), "kernels")
        panel.fanout.add(self)

    def on_message(self, message: Any) -> None:
        try:
            config = parse_stream_message(message, self.panel.sampler.interval)
        except ValueError as err:
            self.send(message_json({"type": "error", "message": str(err)}), "error")
            return
        self.interval = config.get("interval", self.interval)
        if "fields" in config:
            self.fields = config["fields"]
        self.send(
            message_json({"type": "config", "interval": self.interval, "fields": list(self.fields or [])}), "config"
        )

    def send(self, message: Message, kind: str) -> None:
        """Queue a message; the writer sends it when the socket took the previous one."""
        if self.writer is None or self.writer.closed:
            self.panel.fanout.remove(self)
            return
        self.writer.send(kind, message)
        if self.writer.closed:  # the socket had gone (a tab closed mid-tick) or the client was too slow
            self.panel.fanout.remove(self)

    def _write(self, message: Message) -> Any:
        # bytes go out as they are (a text frame all the same): no re-encoding per client
        return self.write_message(message)

    def _close_slow(self, code: int, reason: str) -> None:
        self.panel.fanout.remove(self)
        self.log.warning("gpu-panel stream: closing %s (%s)", self.request.remote_ip, reason)
        self.close(code, reason)

    def on_close(self) -> None:
        if self.writer is not None:
            self.writer.stop()
        self.panel.fanout.remove(self)
