"""The API's one contract, ``jupyter_gpu_panel/api/openapi.json``, as validators for the tests.

HTTP responses are checked by openapi-core (path and operation lookup, documented status,
media type, headers, body schema with the OpenAPI 3.1 dialect); websocket messages by
openapi-schema-validator's OAS 3.1 validator against ``components.schemas.StreamMessage``.
Nothing here re-implements a check: a failure is the libraries' report, raised as
``ContractError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Optional, Union
from urllib.parse import urlsplit

from jsonschema.exceptions import best_match
from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS31Validator

SPEC_PATH = Path(__file__).resolve().parents[1] / "jupyter_gpu_panel" / "api" / "openapi.json"
API_PREFIX = "/api/gpu-panel/"
HOST = "http://localhost"

Body = Union[bytes, str, Mapping[str, Any], list, None]


class ContractError(AssertionError):
    """A response or message the contract does not allow."""


class UndocumentedRoute(ContractError):
    """The path (or its method) is in no operation of the contract."""


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _openapi() -> OpenAPI:
    return OpenAPI.from_dict(spec())


@cache
def _schema_validator(name: str) -> OAS31Validator:
    # the components travel with the root schema, so its $refs resolve inside the document
    root = {"$ref": f"#/components/schemas/{name}", "components": spec()["components"]}
    return OAS31Validator(root, format_checker=OAS31Validator.FORMAT_CHECKER)


def api_path(url: str) -> Optional[str]:
    """``/api/gpu-panel/...`` from a URL or path (the server's base_url and the query dropped);
    None for anything outside the API."""
    path = urlsplit(url).path
    at = path.find(API_PREFIX)
    return None if at < 0 else path[at:]


def _strict_json(body: Any) -> Any:
    """The body as JSON, refusing what RFC 8259 does not allow (``NaN``, ``Infinity``)."""

    def reject(name: str) -> Any:
        raise ContractError(f"the body is not strict JSON: it holds {name}")

    if isinstance(body, bytes):
        body = body.decode("utf-8")
    try:
        return json.loads(body, parse_constant=reject)
    except ValueError as err:
        raise ContractError(f"the body is not JSON: {err}: {body[:300]!r}") from None


def _bytes(body: Body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, allow_nan=False).encode("utf-8")


def _describe(err: BaseException) -> str:
    """openapi-core's error with the schema errors it wraps."""
    parts = [f"{type(err).__name__}: {err}"]
    cause: Optional[BaseException] = err.__cause__
    while cause is not None:
        parts.append(f"{type(cause).__name__}: {cause}")
        for schema_error in getattr(cause, "schema_errors", ()) or ():
            where = "/".join(str(p) for p in schema_error.absolute_path)
            parts.append(f"  at /{where}: {schema_error.message[:500]}")
            for sub in schema_error.context or ():
                sub_where = "/".join(str(p) for p in sub.absolute_path)
                parts.append(f"    (oneOf branch) at /{sub_where}: {sub.message[:300]}")
        cause = cause.__cause__
    return "\n".join(parts)


def validate_response(method: str, path: str, status: int, headers: Optional[Mapping[str, Any]], body: Body) -> None:
    """Raise ``ContractError`` unless ``status``/``headers``/``body`` is a response the contract
    documents for ``method path`` (``path`` may be a full URL; the base_url is dropped)."""
    route = api_path(path)
    if route is None:
        raise UndocumentedRoute(f"{path} is not under {API_PREFIX}")
    headers = dict(headers or {})
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    raw = _bytes(body)
    if content_type and content_type.split(";")[0].strip().endswith("json"):
        _strict_json(raw)
    request = MockRequest(HOST, method.lower(), route)
    response = MockResponse(raw, status_code=int(status), headers=headers, content_type=content_type or "")
    try:
        _openapi().validate_response(request, response)
    except (PathNotFound, OperationNotFound) as err:
        raise UndocumentedRoute(f"{method.upper()} {route[:200]}: {err}") from None
    except Exception as err:  # noqa: BLE001 - every other openapi-core error is a contract violation
        what = f"{method.upper()} {route[:200]} -> {status}"
        raise ContractError(f"{what}:\n{_describe(err)}\nbody: {raw[:2000]!r}") from None


def validate_schema(name: str, doc: Any) -> None:
    """Raise ``ContractError`` unless ``doc`` is valid against ``components.schemas[name]``."""
    validator = _schema_validator(name)
    errors = list(validator.iter_errors(doc))
    if errors:
        best = best_match(errors)
        where = "/".join(str(p) for p in best.absolute_path)
        raise ContractError(
            f"not a valid {name} at /{where}: {best.message[:500]}{_nearest_branch(best)}\n"
            f"document: {json.dumps(doc)[:2000]}"
        )


def _nearest_branch(error: Any) -> str:
    """For a ``oneOf`` miss: the errors of the branch that came closest (fewest errors)."""
    by_branch: dict[Any, list[Any]] = {}
    for sub in error.context or ():
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    if not by_branch:
        return ""
    nearest = min(by_branch.values(), key=len)
    return "".join(f"\n  nearest branch, at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in nearest)


def validate_ws_message(doc: Union[str, bytes, Mapping[str, Any]]) -> dict[str, Any]:
    """Check one message the server sent on the stream; returns it parsed."""
    if isinstance(doc, (str, bytes)):
        doc = _strict_json(doc)
    validate_schema("StreamMessage", doc)
    return dict(doc)  # type: ignore[arg-type]
