"""``api/openapi.json`` is a valid OpenAPI 3.1 document, covers exactly the server's routes, is
what the server serves, and has teeth (the validators the suite relies on reject drift)."""

from __future__ import annotations

import json
import re

import pytest
from openapi_spec_validator import validate
from tornado.web import RequestHandler

from jupyter_gpu_panel.api import routes

from contract import SPEC_PATH, ContractError, UndocumentedRoute, spec, validate_response, validate_ws_message

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
JSON = {"Content-Type": "application/json"}
SNAPSHOT = '"source": "replay", "state": "ok", "message": null, "gpus": []'


def test_the_contract_is_a_valid_openapi_3_1_document():
    doc = spec()
    assert doc["openapi"].startswith("3.1.")
    validate(doc)  # openapi-spec-validator picks the 3.1 validator from the document


def _template(pattern: str) -> str:
    """A tornado route pattern as an OpenAPI path template: ``(?P<pid>...)`` -> ``{pid}``."""
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern).replace("\\.", ".")


def _methods(handler: type) -> set[str]:
    return {m for m in HTTP_METHODS if getattr(handler, m) is not getattr(RequestHandler, m)}


def test_every_route_has_a_path_and_every_path_a_route():
    served = {_template(pattern): handler for pattern, handler in routes()}
    assert set(served) == set(spec()["paths"])
    for path, handler in served.items():
        assert _methods(handler) == set(spec()["paths"][path]) - {"parameters"}, path


def test_path_parameters_are_the_route_groups():
    for pattern, _ in routes():
        path = _template(pattern)
        groups = set(re.findall(r"\(\?P<(\w+)>", pattern))
        for op in spec()["paths"][path].values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == groups, path


def test_every_http_4xx_is_a_json_error():
    for path, ops in spec()["paths"].items():
        if path.endswith("/stream"):
            continue  # a websocket handshake: tornado's and jupyter_server's own pages
        for method, op in ops.items():
            assert "403" in op["responses"], (method, path)
            for status, response in op["responses"].items():
                if status.startswith("4"):
                    assert response["content"] == {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    }, (method, path, status)


async def test_the_served_contract_is_the_file(jp_fetch, panel):
    resp = await jp_fetch("api", "gpu-panel", "openapi.json")
    assert resp.code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.body == SPEC_PATH.read_bytes()
    assert json.loads(resp.body) == spec()


# -- the validators the suite relies on fail where they should ---------------------------------


@pytest.mark.parametrize(
    "method, path, status, headers, body",
    [
        ("GET", "/api/gpu-panel/status", 500, JSON, b'{"message": "Unhandled error"}'),  # undocumented status
        ("GET", "/api/gpu-panel/status", 403, JSON, b'{"error": "no"}'),  # not an Error
        ("GET", "/api/gpu-panel/status", 403, {"Content-Type": "text/html"}, b"<html>"),  # not JSON
        ("GET", "/api/gpu-panel/snapshot", 200, JSON, '{"t": NaN, ' + SNAPSHOT + "}"),  # not strict JSON
        ("GET", "/api/gpu-panel/snapshot", 200, JSON, '{"t": 1, ' + SNAPSHOT + ', "x": 1}'),  # an unknown key
        ("GET", "/api/gpu-panel/kernels", 200, JSON, b'{"kernels": [], "pid_namespace": "host"}'),
        ("POST", "/api/gpu-panel/benchmarks", 201, JSON, b'{"path": "a.ipynb"}'),  # no Location
    ],
    ids=["500", "403-shape", "403-html", "nan", "extra-key", "missing-keys", "no-location"],
)
def test_validate_response_rejects_drift(method, path, status, headers, body):
    with pytest.raises(ContractError):
        validate_response(method, path, status, headers, body)


def test_validate_response_accepts_what_is_documented():
    validate_response("GET", "/api/gpu-panel/snapshot", 200, JSON, '{"t": 1, ' + SNAPSHOT + "}")


def test_validate_response_knows_no_other_route():
    with pytest.raises(UndocumentedRoute):
        validate_response("GET", "/api/gpu-panel/nope", 404, {"Content-Type": "text/html"}, b"<html>")


@pytest.mark.parametrize(
    "message",
    [
        {"type": "snapshot"},
        {"type": "config", "interval": 1.0},
        {"type": "error", "message": ""},
        {"type": "hello", "status": {}},
        {"type": "bye"},
        "[]",
    ],
)
def test_validate_ws_message_rejects_drift(message):
    with pytest.raises(ContractError):
        validate_ws_message(message)
