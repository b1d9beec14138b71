"""``GET cluster``: every node and GPU that Prometheus knows, and who holds each (cached per refresh)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import BaseHandler


class ClusterHandler(BaseHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        # encoded once per refresh, off the event loop; written a piece at a time
        await self.write_large(await self.panel.cluster.body())
