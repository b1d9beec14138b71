"""The API fuzzed from its contract (schemathesis) against a real Jupyter server, and a table of
malformed inputs that must each get a 4xx with a JSON message, never a 5xx or a dead server.

The server is a separate process (``python -m jupyter_server``) on a free loopback port with a
random token, the replay source and temporary root and runtime directories.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, unquote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from conftest import ROOT
from contract import SPEC_PATH, validate_response, validate_ws_message

API = "/api/gpu-panel"
TEMPLATE = "gpu-health-check"


@dataclass
class Server:
    url: str
    token: str
    root: Path
    log: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def request(self, method: str, route: str, **kwargs: Any) -> requests.Response:
        """One request to ``/api/gpu-panel/<route>``, its answer checked against the contract."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        resp = requests.request(method, f"{self.url}{API}/{route}", headers=headers, timeout=20, **kwargs)
        validate_response(method, resp.url, resp.status_code, resp.headers, resp.content)
        return resp

    def assert_alive(self) -> None:
        resp = self.request("GET", "status")
        assert resp.status_code == 200, resp.text[:500]
        assert resp.json()["sampler"]["running"] is True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("jupyter-server")
    root, runtime, config = base / "root", base / "runtime", base / "config"
    for folder in (root, runtime, config):
        folder.mkdir()
    token = secrets.token_hex(24)
    port = _free_port()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_CONFIG_DIR=str(config))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    cmd = [
        sys.executable, "-m", "jupyter_server",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        '--ServerApp.jpserver_extensions={"jupyter_gpu_panel": True}',
        "--GPUPanel.source=replay",
        "--GPUPanel.interval=0.1",
    ]  # fmt: skip
    log = base / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=str(base), env=env, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"the server exited:\n{log.read_text(errors='replace')[-3000:]}"
            try:
                if requests.get(f"{srv.url}{API}/status", headers=srv.headers, timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"the server did not start:\n{log.read_text(errors='replace')[-3000:]}"
            time.sleep(0.2)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# -- fuzzing from the contract ----------------------------------------------------------------


# The schema is loaded from the file at collection and each case sent to this module's server
# (schemathesis' lazy ``from_fixture`` fails on pytest 9: it sets ``node._nodeid``). The stream is
# a websocket: it has its own table below.
schema = schemathesis.openapi.from_path(str(SPEC_PATH)).exclude(path_regex=r"/stream$")


#: no 5xx; every answer's status, media type, headers and body as documented
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
    status_code_conformance,
]


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case, server: Server):
    case.call_and_validate(base_url=server.url, headers=server.headers, checks=CHECKS)


def test_the_server_still_answers_after_fuzzing(server: Server):
    server.assert_alive()


# -- malformed input: a 4xx with a message, and the server goes on ------------------------------


def _post_benchmark(server: Server, path: Any) -> requests.Response:
    return server.request("POST", "benchmarks", data=json.dumps({"template": TEMPLATE, "path": path}))


MALFORMED: dict[str, tuple[Callable[[Server], requests.Response], int]] = {
    "benchmark path with U+2028": (lambda s: _post_benchmark(s, "a\u2028b.ipynb"), 400),
    "benchmark path with U+202E": (lambda s: _post_benchmark(s, "a\u202eb.ipynb"), 400),
    "benchmark path with DEL": (lambda s: _post_benchmark(s, "a\x7fb.ipynb"), 400),
    "benchmark name of 300 bytes": (lambda s: _post_benchmark(s, "a" * 294 + ".ipynb"), 400),
    "benchmark body nested 100000 deep": (lambda s: s.request("POST", "benchmarks", data="[" * 100_000), 400),
    "triage of a 4301-digit pid": (lambda s: s.request("POST", f"probes/{'9' * 4301}/triage"), None),
    "history gpu=-1": (lambda s: s.request("GET", "history", params={"gpu": "-1"}), 400),
    "history gpu=2**64": (lambda s: s.request("GET", "history", params={"gpu": "18446744073709551616"}), 400),
    "history of a GPU the server lacks": (lambda s: s.request("GET", "history", params={"gpu": "7"}), 400),
    "history max_points=abc": (lambda s: s.request("GET", "history", params={"max_points": "abc"}), 400),
    "kernels refresh=2": (lambda s: s.request("GET", "kernels", params={"refresh": "2"}), 400),
    "interrupt an unknown kernel": (lambda s: s.request("POST", f"kernels/{'0' * 8}-no-such-kernel/interrupt"), 404),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_input_gets_a_4xx_with_a_message(server: Server, case: str):
    send, status = MALFORMED[case]
    resp = send(server)
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:500])
    if status is not None:
        assert resp.status_code == status, resp.text[:500]
    assert resp.headers["Content-Type"].startswith("application/json"), resp.headers["Content-Type"]
    body = resp.json()
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in resp.text
    server.assert_alive()


def test_the_benchmark_request_was_refused_before_creating_anything(server: Server):
    created = [p.relative_to(server.root).as_posix() for p in server.root.rglob("*.ipynb")]
    assert not [p for p in created if any(ch in p for ch in "\u2028\u202e\x7f")], created


@pytest.mark.parametrize("length, limit", [(256, 255), (245, 244)], ids=["over-255", "no-room-for-checkpoint"])
def test_an_over_long_benchmark_name_is_refused_naming_the_limit(server: Server, length: int, limit: int):
    """Over 244 bytes a notebook saved, then its checkpoint (``<stem>-checkpoint.ipynb``, 11 bytes
    more) failed with ENAMETOOLONG: a 500."""
    resp = _post_benchmark(server, "a" * (length - len(".ipynb")) + ".ipynb")
    assert resp.status_code == 400 and f"{limit} bytes" in resp.json()["message"], resp.text[:300]
    assert not list(server.root.glob("aaaa*"))
    ok = _post_benchmark(server, "c" * (244 - len(".ipynb")) + ".ipynb")  # the longest that fits
    assert ok.status_code == 201, ok.text[:300]


@pytest.mark.parametrize("stem", ["b" * 249, "实" * 83], ids=["ascii", "cjk"])
def test_a_benchmark_beside_an_existing_255_byte_notebook_gets_a_name_that_fits(server: Server, stem: str):
    """The free name for an existing 255-byte notebook was its stem plus ``-1`` (257 bytes: no file
    system takes it) and the answer a 500; the stem is shortened so that the suffix (and the
    checkpoint's ``-checkpoint``) fits."""
    name = stem + ".ipynb"
    assert len(name.encode()) == 255
    (server.root / name).write_text("{}")
    resp = _post_benchmark(server, name)
    assert resp.status_code == 201, resp.text[:500]
    created = resp.json()["path"]
    assert created.endswith("-1.ipynb") and stem.startswith(created[: -len("-1.ipynb")])
    assert len(created.encode()) <= 244 and (server.root / created).is_file()
    assert (server.root / name).read_text() == "{}"  # never overwritten
    source = "".join(json.loads((server.root / created).read_text())["cells"][2]["source"])
    results = next(line for line in source.splitlines() if line.startswith("results_json = "))
    results_file = results.split("'")[1]
    assert results_file.endswith(".results.json") and len(results_file.encode()) <= 255
    server.assert_alive()


def _new_kernel(server: Server) -> str:
    resp = requests.post(f"{server.url}/api/kernels", headers=server.headers, json={"name": "python3"}, timeout=60)
    assert resp.status_code == 201, resp.text[:300]
    kernel_id = resp.json()["id"]
    # with no client connected its execution_state stays "starting" over REST: give it time to boot
    time.sleep(2)
    return kernel_id


def test_a_second_restart_while_one_runs_is_409_restart_in_progress(server: Server):
    """A double click on Restart: the second request arrives while the first restarts the kernel.
    It was ``500 Unhandled error`` 5 times of 5 (and jupyter_client started two kernels)."""
    from concurrent.futures import ThreadPoolExecutor

    kernel_id = _new_kernel(server)
    start = server.log.stat().st_size
    try:
        for _ in range(3):
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(lambda _: server.request("POST", f"kernels/{kernel_id}/restart"), range(2)))
            by_status = {r.status_code: r for r in answers}
            assert sorted(by_status) == [200, 409], [(r.status_code, r.text[:200]) for r in answers]
            assert "restart in progress" in by_status[409].json()["message"]
        # the guard is released when the restart ends: the next one is accepted
        assert server.request("POST", f"kernels/{kernel_id}/restart").status_code == 200
    finally:
        requests.delete(f"{server.url}/api/kernels/{kernel_id}", headers=server.headers, timeout=60)
    # (the kernels' own output shares this log: a kernel may print a traceback as it is stopped)
    log = server.log.read_bytes()[start:].decode(errors="replace")
    assert "Uncaught exception" not in log and "500 POST" not in log, log[-3000:]
    server.assert_alive()


def test_a_field_named_6500_times_is_answered_once(server: Server):
    """Each repeat was computed under the history lock (a second a request)."""
    resp = server.request("GET", "history?fields=" + ",".join(["mem_used"] * 6500 + ["util_gpu"]))
    assert resp.status_code == 200, resp.text[:300]
    doc = resp.json()
    assert doc["fields"] == ["mem_used", "util_gpu"]
    assert list(doc["gpus"][0]["values"]) == ["mem_used", "util_gpu"]


#: methods no route of ours implements (HEAD included: tornado answers 405 without a head())
ODD_METHODS = ("TRACE", "PROPFIND", "MKCOL", "BREW", "PATCH", "PUT", "DELETE", "HEAD", "POST", "GET")
EXAMPLE_ARGS = {"{kernel_id}": "no-such-kernel", "{action}": "restart", "{pid}": "1"}


def test_every_route_answers_an_odd_method_with_a_clean_405(server: Server):
    """``TRACE`` on the stream route logged a traceback each time (jupyter_server's HTML error page
    asked for the user before the request had one): a JSON 405 with ``Allow``, on every route."""
    from contract import spec

    start = server.log.stat().st_size
    tried = 0
    for path, operations in spec()["paths"].items():
        route = path
        for name, value in EXAMPLE_ARGS.items():
            route = route.replace(name, value)
        for method in ODD_METHODS:
            if method.lower() in operations:
                continue  # documented: fuzzed above
            resp = requests.request(method, server.url + route, headers=server.headers, timeout=20)
            tried += 1
            assert resp.status_code == 405, (method, route, resp.status_code, resp.text[:300])
            allowed = {m.strip() for m in resp.headers["Allow"].split(",")}
            assert {m.upper() for m in operations if m != "parameters"} <= allowed, (route, allowed)
            assert method not in allowed
            if method != "HEAD":
                assert resp.headers["Content-Type"].startswith("application/json")
                assert method in resp.json()["message"]
    assert tried >= 90
    time.sleep(0.2)  # the server's log lines reach the file
    log = server.log.read_bytes()[start:].decode(errors="replace")
    assert "Traceback" not in log and "Uncaught exception" not in log, log[-3000:]
    server.assert_alive()


@pytest.mark.parametrize(
    "folder, path, first",
    [
        ("实验", "实验/x.ipynb", "实验/x.ipynb"),
        ("📊 runs", "📊 runs", f"📊 runs/{TEMPLATE}.ipynb"),
    ],
    ids=["cjk-file", "emoji-folder"],
)
def test_benchmark_in_a_unicode_folder_gets_a_percent_encoded_location(server: Server, folder, path, first):
    (server.root / folder).mkdir()
    stem = first[: -len(".ipynb")]

    def create(expected: str) -> None:
        resp = _post_benchmark(server, path)
        assert resp.status_code == 201, resp.text[:500]
        assert resp.json() == {"path": expected}
        location = resp.headers["Location"]
        assert location.isascii() and " " not in location
        assert location == "/api/contents/" + quote(expected, safe="/")
        assert unquote(location) == f"/api/contents/{expected}"
        assert (server.root / expected).is_file()

    create(first)
    create(f"{stem}-1.ipynb")  # the first exists: never overwritten
    (server.root / first).unlink()
    create(first)  # the name is free again: -1 came only from the first existing
    server.assert_alive()


# -- the websocket: a bad message gets an error reply and the socket stays open ----------------

BAD_MESSAGES = {
    "interval of 400 digits": json.dumps({"interval": int("9" * 400)}),
    "nested 100 deep": '{"fields": ' + "[" * 99 + "]" * 99 + "}",
    "a list": "[]",
    "a string": '"x"',
    "fields not strings": json.dumps({"fields": [1]}),
}


async def _stream(server: Server, send: list[str]) -> list[dict[str, Any]]:
    """Connect, send each message, and collect the replies (error or config) to each."""
    url = server.url.replace("http://", "ws://") + f"{API}/stream"
    ws = await websocket_connect(HTTPRequest(url, headers=server.headers, connect_timeout=10))
    try:
        hello = validate_ws_message(await asyncio.wait_for(ws.read_message(), 10))
        assert hello["type"] == "hello"
        replies = []
        for message in send:
            await ws.write_message(message)
            while True:
                raw = await asyncio.wait_for(ws.read_message(), 10)
                assert raw is not None, f"the server closed the socket after {message[:60]!r}"
                msg = validate_ws_message(raw)
                if msg["type"] in ("error", "config"):
                    replies.append(msg)
                    break
        return replies
    finally:
        ws.close()


@pytest.mark.parametrize("case", list(BAD_MESSAGES))
def test_bad_stream_message_gets_an_error_and_the_socket_stays_open(server: Server, case: str):
    error, config = asyncio.run(_stream(server, [BAD_MESSAGES[case], json.dumps({"interval": 1})]))
    assert error["type"] == "error" and error["message"]
    assert config == {"type": "config", "interval": 1.0, "fields": []}
    server.assert_alive()
