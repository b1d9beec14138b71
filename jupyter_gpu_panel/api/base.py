"""What every handler shares: the auth resource, JSON in and out, argument parsing.

Every route is authenticated and authorized against the ``gpu-panel`` resource. Bad input is
a 4xx with a ``message``; documents always leave as strict JSON (no ``NaN`` literals).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Optional

import numpy as np
import orjson
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..services import Panel

log = logging.getLogger(__name__)

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

AUTH_RESOURCE = "gpu-panel"
API = "api/gpu-panel"
#: Request bodies and websocket messages are small JSON objects.
MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 8
#: Digits accepted in an integer argument (a pid, a GPU index, a point count).
MAX_INT_DIGITS = 12


def strict_json(doc: Any) -> bytes:
    """``doc`` as JSON a browser can parse: NaN and infinities become ``null`` (orjson does that
    natively), numpy arrays are written as lists without a copy through Python objects."""
    return orjson.dumps(doc, option=_JSON_OPTIONS)


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value``, counting stops past ``limit`` (iterative: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json_object(raw: Any, what: str = "request body") -> dict[str, Any]:
    """A small JSON object from a request body or websocket message; ValueError otherwise."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_BODY_BYTES:
            raise ValueError(f"{what} is larger than {MAX_BODY_BYTES} bytes")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{what} must be UTF-8 JSON") from None
    if len(raw) > MAX_BODY_BYTES:
        raise ValueError(f"{what} is larger than {MAX_BODY_BYTES} bytes")
    try:
        doc = json.loads(raw or "{}", parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply") from None
    except ValueError as err:
        raise ValueError(f"{what} must be JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{what} must be a JSON object")
    if json_depth(doc, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ValueError(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    return doc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_int(raw: str, name: str, lo: int, hi: int) -> int:
    """An integer in ``[lo, hi]`` from a query or path argument; ValueError with a message."""
    text = raw.strip()
    if not text.lstrip("-").isdigit() or len(text) > MAX_INT_DIGITS:
        raise ValueError(f"{name} must be an integer between {lo} and {hi}, got {raw[:40]!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def allowed_methods(handler: type[web.RequestHandler]) -> list[str]:
    """The HTTP methods ``handler`` implements (tornado's defaults answer 405)."""
    return [
        m
        for m in handler.SUPPORTED_METHODS
        if getattr(handler, m.lower(), None) is not getattr(web.RequestHandler, m.lower(), None)
    ]


class PanelMixin:
    auth_resource = AUTH_RESOURCE
    settings: dict[str, Any]
    request: Any

    @property
    def panel(self) -> Panel:
        return self.settings["gpu_panel"]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """A method a route lacks (``TRACE``, ``PROPFIND``...) is a JSON 405 with ``Allow``.

        tornado refuses it before ``prepare``, so the user is not known yet: jupyter_server's
        HTML error page asks for it anyway and logged a traceback on every such request to the
        stream route. Nothing here needs the user.
        """
        if status_code != 405:
            super().write_error(status_code, **kwargs)  # type: ignore[misc]
            return
        handler: Any = self  # a mixin: the request handler it is mixed into
        allowed = ", ".join(allowed_methods(type(handler)))
        handler.set_header("Allow", allowed)
        handler.set_header("Content-Type", "application/json")
        method = str(self.request.method)[:20]
        handler.finish(strict_json({"message": f"{method} is not allowed here; allowed: {allowed}", "reason": None}))


class BaseHandler(PanelMixin, APIHandler):
    def compute_etag(self) -> None:
        """No ETag: these documents change every tick, and tornado would hash each body (an hour
        of history is megabytes) on the event loop to compute one."""
        return None

    def write_json(self, doc: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(strict_json(doc))

    async def write_large(self, parts: list[bytes], chunk: int = 256 * 1024) -> None:
        """A JSON body of megabytes (``json_parts``), written ~``chunk`` bytes per loop step: one
        ``finish()`` of an hour of history copies it whole (headers + body) several times on the
        event loop."""
        self.set_header("Content-Type", "application/json")
        self.set_header("Content-Length", str(sum(len(p) for p in parts)))
        pending = 0
        for part in parts:
            self.write(part)
            pending += len(part)
            if pending >= chunk:
                pending = 0
                await self.flush()
        self.finish()

    def json_body(self) -> dict[str, Any]:
        try:
            return parse_json_object(self.request.body)
        except ValueError as err:
            raise web.HTTPError(400, str(err)) from None

    def int_arg(self, raw: str, name: str, lo: int, hi: int) -> int:
        try:
            return parse_int(raw, name, lo, hi)
        except ValueError as err:
            raise web.HTTPError(400, str(err)) from None

    def list_arg(self, name: str) -> Optional[list[str]]:
        raw = self.get_argument(name, None)
        return None if raw is None else raw.split(",")


def json_parts(doc: Any) -> list[bytes]:
    """``strict_json`` of a large document as pieces, one encoder call per leaf (a column, a value).

    One call for a whole hour of 8 GPUs would hold the GIL for its whole length, stalling the
    event loop even from a worker thread; per-column calls let the loop run in between. The
    pieces are never joined into one body: ``write_large`` sends them as they are (joining the
    megabytes cost a tenth of a full-hour query).
    """
    parts: list[bytes] = []
    _json_parts(doc, parts)
    return parts


def _json_parts(doc: Any, parts: list[bytes]) -> None:
    if isinstance(doc, dict):
        sep = b"{"
        for k, v in doc.items():
            parts.append(sep + orjson.dumps(str(k)) + b":")
            _json_parts(v, parts)
            sep = b","
        parts.append(b"}" if sep == b"," else b"{}")
    elif isinstance(doc, (list, tuple)) and any(isinstance(v, (dict, list, tuple, np.ndarray)) for v in doc):
        sep = b"["
        for v in doc:
            parts.append(sep)
            _json_parts(v, parts)
            sep = b","
        parts.append(b"]" if sep == b"," else b"[]")
    else:
        parts.append(strict_json(doc))
