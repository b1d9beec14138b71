"""``GET openapi.json``: the API's contract, ``openapi.json`` next to this module."""

from __future__ import annotations

from importlib import resources

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import BaseHandler


class OpenAPIHandler(BaseHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(openapi_text())


def openapi_text() -> str:
    """The API's contract (``api/openapi.json``), as shipped in the package."""
    return (resources.files("jupyter_gpu_panel.api") / "openapi.json").read_text(encoding="utf-8")
