"""REST and websocket handlers: thin adapters from HTTP to the sampler's state.

Every route is authenticated and authorized against the ``gpu-panel`` resource.
Bad input is a 4xx with a ``message``; nothing here touches NVML.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import TYPE_CHECKING, Any, Optional

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from tornado import web, websocket

from . import __version__
from .readings import HISTORY_FIELDS
from .sampler import MIN_INTERVAL
from .views import parse_fields, snapshot_json

if TYPE_CHECKING:
    from .app import GPUPanel

AUTH_RESOURCE = "gpu-panel"
API = "api/gpu-panel"
MAX_HISTORY_POINTS = 100_000


class PanelMixin:
    auth_resource = AUTH_RESOURCE
    settings: dict[str, Any]

    @property
    def panel(self) -> "GPUPanel":
        return self.settings["gpu_panel"]

    def user_filter(self) -> Optional[str]:
        """Other users' processes are hidden unless the server shows all users."""
        if self.panel.show_all_users:
            return None
        import getpass

        return getpass.getuser()


class BaseHandler(PanelMixin, APIHandler):
    def write_json(self, doc: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(doc))


class StatusHandler(BaseHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.write_json({"version": __version__, **self.panel.sampler.status_json()})


class DevicesHandler(BaseHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.write_json({"devices": [d.to_json() for d in self.panel.sampler.devices]})


class SnapshotHandler(BaseHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        try:
            fields = parse_fields(self._list_arg("fields"))
        except ValueError as err:
            raise web.HTTPError(400, str(err)) from None
        sampler = self.panel.sampler
        self.write_json(
            snapshot_json(sampler.status, sampler.snapshot(), fields, self.panel.hub.owner_of, self.user_filter())
        )

    def _list_arg(self, name: str) -> Optional[list[str]]:
        raw = self.get_argument(name, None)
        return None if raw is None else raw.split(",")


class HistoryHandler(SnapshotHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        since = self._float_arg("since")
        fields = self._list_arg("fields")
        if fields is not None:
            unknown = [f for f in fields if f not in HISTORY_FIELDS]
            if unknown:
                raise web.HTTPError(
                    400, f"unknown history field(s) {', '.join(unknown)}; choose from {', '.join(HISTORY_FIELDS)}"
                )
        raw_points = self.get_argument("max_points", "0")
        try:
            max_points = int(raw_points)
        except ValueError:
            raise web.HTTPError(400, f"max_points must be an integer, got {raw_points!r}") from None
        if not 0 <= max_points <= MAX_HISTORY_POINTS:
            raise web.HTTPError(400, f"max_points must be between 0 (all) and {MAX_HISTORY_POINTS}")
        gpu = self.get_argument("gpu", None)
        gpus = None
        if gpu is not None:
            try:
                gpus = [int(g) for g in gpu.split(",")]
            except ValueError:
                raise web.HTTPError(400, f"gpu must be a comma-separated list of indices, got {gpu!r}") from None
        doc = self.panel.sampler.history.query(since=since, fields=fields, max_points=max_points, gpus=gpus)
        sampler = self.panel.sampler
        self.write_json({"now": sampler.health.last_tick, "interval": sampler.interval, **doc})

    def _float_arg(self, name: str) -> Optional[float]:
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return None
        try:
            value = float(raw)
        except ValueError:
            raise web.HTTPError(400, f"{name} must be a number (Unix seconds), got {raw!r}") from None
        if not math.isfinite(value):
            raise web.HTTPError(400, f"{name} must be finite")
        return value


class OpenAPIHandler(BaseHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        text = (resources.files("jupyter_gpu_panel") / "openapi.json").read_text(encoding="utf-8")
        self.set_header("Content-Type", "application/json")
        self.finish(text)


class StreamHandler(PanelMixin, JupyterHandler, websocket.WebSocketHandler):
    """``WS stream``: one snapshot per tick, at the rate and with the fields the client picks."""

    interval: float
    fields: Optional[tuple[str, ...]]
    last_sent: float
    user_scope: Optional[str]

    async def pre_get(self) -> None:
        user = self.current_user
        allowed = await ensure_async(self.authorizer.is_authorized(self, user, "read", AUTH_RESOURCE))
        if not allowed:
            raise web.HTTPError(403)

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await ensure_async(self.pre_get())
        res = super().get(*args, **kwargs)
        if res is not None:
            await res

    def open(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        sampler = self.panel.sampler
        self.interval = sampler.interval
        self.fields = None
        self.last_sent = 0.0
        self.user_scope = self.user_filter()
        self.write_message(json.dumps({"type": "hello", "status": {"version": __version__, **sampler.status_json()}}))
        snap = sampler.snapshot()
        if snap is not None:  # the first picture at once, not after a tick
            doc = snapshot_json(sampler.status, snap, None, self.panel.hub.owner_of, self.user_scope)
            self.write_message(json.dumps({"type": "snapshot", "snapshot": doc}))
            self.last_sent = snap.t
        self.panel.hub.add(self)

    def on_message(self, message: Any) -> None:
        try:
            msg = json.loads(message)
            if not isinstance(msg, dict):
                raise ValueError("a message must be a JSON object")
            if "interval" in msg:
                value = msg["interval"]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError("interval must be a number of seconds")
                if value <= 0:
                    raise ValueError("interval must be positive")
                # never faster than the server ticks, whatever a client asks for
                self.interval = max(float(value), self.panel.sampler.interval, MIN_INTERVAL)
            if "fields" in msg:
                fields = msg["fields"]
                if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
                    raise ValueError("fields must be a list of field names or null")
                self.fields = parse_fields(fields)
        except ValueError as err:
            self.write_message(json.dumps({"type": "error", "message": str(err)}))
            return
        self.write_message(
            json.dumps({"type": "config", "interval": self.interval, "fields": list(self.fields or [])})
        )

    def send(self, message: str) -> None:
        self.write_message(message)

    def on_close(self) -> None:
        self.panel.hub.remove(self)


def routes() -> list[tuple[str, Any]]:
    """Patterns relative to the server's base_url (ExtensionApp joins them)."""
    ours: list[tuple[str, Any]] = [
        (rf"/{API}/status", StatusHandler),
        (rf"/{API}/devices", DevicesHandler),
        (rf"/{API}/snapshot", SnapshotHandler),
        (rf"/{API}/history", HistoryHandler),
        (rf"/{API}/openapi.json", OpenAPIHandler),
        (rf"/{API}/stream", StreamHandler),
    ]
    from .benchmarks.handlers import routes as benchmark_routes
    from .kernels_handlers import routes as kernel_routes

    ours += kernel_routes() + benchmark_routes("/")
    return ours
