"""``GET status|devices|snapshot``: the sampler's state now, over HTTP.

Thin: parse and check the arguments, ask the sampler, answer. Nothing here calls NVML.
"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..metrics.snapshot_document import parse_fields, snapshot_json
from .base import BaseHandler


class StatusHandler(BaseHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.write_json(self.panel.status_json())


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
            fields = parse_fields(self.list_arg("fields"))
        except ValueError as err:
            raise web.HTTPError(400, str(err)) from None
        panel = self.panel
        sampler = panel.sampler
        self.write_json(
            snapshot_json(sampler.status, sampler.snapshot(), fields, panel.tracker.owner_of, panel.audience())
        )
