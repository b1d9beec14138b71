"""What every handler shares: the auth resource, JSON in and out, argument parsing.

Every route is authenticated and authorized against the ``gpu-panel`` resource. Bad input is
a 4xx with a ``message``; documents always leave as strict JSON (no ``NaN`` literals).
"""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING, Any, Optional

from jupyter_server.base.handlers import APIHandler
from tornado import web

if TYPE_CHECKING:
    from ..app import GPUPanel

log = logging.getLogger(__name__)

AUTH_RESOURCE = "gpu-panel"
API = "api/gpu-panel"
#: Request bodies and websocket messages are small JSON objects.
MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 8
#: Digits accepted in an integer argument (a pid, a GPU index, a point count).
MAX_INT_DIGITS = 12


def strict_json(doc: Any) -> str:
    """``doc`` as JSON a browser can parse: a non-finite number becomes ``null`` (and is logged,
    since validated inputs should never produce one)."""
    try:
        return json.dumps(doc, allow_nan=False)
    except ValueError:
        log.warning("a non-finite number reached a response; sent as null")
        return json.dumps(_finite(doc), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


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


class PanelMixin:
    auth_resource = AUTH_RESOURCE
    settings: dict[str, Any]

    @property
    def panel(self) -> "GPUPanel":
        return self.settings["gpu_panel"]


class BaseHandler(PanelMixin, APIHandler):
    def write_json(self, doc: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(strict_json(doc))

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


def chunked_json(doc: Any, chunk: int = 512) -> str:
    """``strict_json`` of a large document, built from many small ``json.dumps`` calls.

    One C-level ``json.dumps`` of a full hour of 8 GPUs holds the GIL for tens of ms, stalling
    the event loop even from a worker thread; per-column calls let the loop run in between.
    """
    if isinstance(doc, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + chunked_json(v, chunk) for k, v in doc.items()) + "}"
    if isinstance(doc, (list, tuple)):
        if len(doc) <= chunk and not any(isinstance(v, (dict, list, tuple)) for v in doc):
            return strict_json(list(doc))
        if all(not isinstance(v, (dict, list, tuple)) for v in doc):
            return "[" + ",".join(strict_json(list(doc[i : i + chunk]))[1:-1] for i in range(0, len(doc), chunk) if doc[i : i + chunk]) + "]"
        return "[" + ",".join(chunked_json(v, chunk) for v in doc) + "]"
    return strict_json(doc)
