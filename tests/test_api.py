"""The REST and websocket API of a real Jupyter server, on the replay source."""

import asyncio
import json
import time

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_gpu_panel.metrics.readings import HISTORY_FIELDS
from jupyter_gpu_panel.metrics.sources.replay import demo_trace_path, load_trace

from conftest import TRACES
from contract import validate_ws_message

BUNDLED_FROM = TRACES / "h100" / "two_procs_one_leaks.nvml.jsonl"


async def get_json(jp_fetch, path, **params):
    resp = await jp_fetch("api", "gpu-panel", path, params=params)
    assert resp.code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    return json.loads(resp.body)


async def wait_ticks(panel, n=2, timeout=5.0):
    start = panel.sampler.health.ticks
    deadline = time.monotonic() + timeout
    while panel.sampler.health.ticks < start + n:
        assert time.monotonic() < deadline, "sampler did not tick"
        await asyncio.sleep(0.02)


def test_bundled_trace_is_the_recording_byte_for_byte():
    assert demo_trace_path().read_bytes() == BUNDLED_FROM.read_bytes()


async def test_status_reports_replay_source_and_health(jp_fetch, panel):
    await wait_ticks(panel)
    doc = await get_json(jp_fetch, "status")
    assert doc["source"] == "replay"
    assert doc["state"] == "ok"
    assert "recorded" in doc["message"].lower() or "replaying" in doc["message"].lower()
    assert doc["replay_file"] == demo_trace_path().name
    assert doc["driver_version"] == "580.159.04"
    assert doc["interval"] == pytest.approx(0.1)
    assert doc["min_interval"] == pytest.approx(0.1)
    assert doc["sampler"]["running"] is True
    assert doc["sampler"]["ticks"] >= 2
    assert doc["sampler"]["errors"] == 0
    assert doc["sampler"]["tick_ms"] is not None


async def test_devices_are_the_recorded_card(jp_fetch, panel):
    doc = await get_json(jp_fetch, "devices")
    [dev] = doc["devices"]
    assert dev["name"] == "NVIDIA H100 80GB HBM3"
    assert dev["uuid"] == "GPU-05c72b6c-921a-1c50-883c-627e184a1b90"
    first = load_trace(BUNDLED_FROM)[0][0]
    assert dev["memory_total"] == first["mem_total"]


async def test_snapshot_values_equal_the_trace(jp_fetch, panel):
    await wait_ticks(panel)
    doc = await get_json(jp_fetch, "snapshot")
    assert doc["source"] == "replay" and doc["state"] == "ok"
    [gpu] = doc["gpus"]
    expected = panel.sampler.source.sample_at(0, gpu["t"])  # the sample live at that instant
    recorded = load_trace(BUNDLED_FROM)[0]
    assert expected in recorded
    for field in ("mem_used", "mem_total", "util_gpu", "util_mem", "power_mw", "temp_c", "clock_sm"):
        assert gpu[field] == expected[field], field
    assert gpu["mem_free"] == expected["mem_total"] - expected["mem_used"]
    assert gpu["power_limit_mw"] == 700000
    assert gpu["fan_pct"] is None  # not in the recording: null, not invented
    assert [(p["pid"], p["used"]) for p in gpu["processes"]] == [(p["pid"], p["used"]) for p in expected["procs"]]


async def test_snapshot_field_selection_and_bad_field(jp_fetch, panel):
    await wait_ticks(panel)
    doc = await get_json(jp_fetch, "snapshot", fields="mem_used,util_gpu")
    assert set(doc["gpus"][0]) == {"index", "t", "state", "error", "mem_used", "util_gpu"}
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("api", "gpu-panel", "snapshot", params={"fields": "mem_used,bogus"})
    assert err.value.code == 400
    assert "bogus" in json.loads(err.value.response.body)["message"]


async def test_history_grows_and_matches_the_trace(jp_fetch, panel):
    await wait_ticks(panel, 5)
    doc = await get_json(jp_fetch, "history")
    assert doc["fields"] == list(HISTORY_FIELDS)
    [gpu] = doc["gpus"]
    assert len(gpu["t"]) >= 5
    assert gpu["t"] == sorted(gpu["t"])
    source = panel.sampler.source
    for t, used in zip(gpu["t"], gpu["values"]["mem_used"]):
        assert used == source.sample_at(0, t)["mem_used"]
    pids = {p["pid"] for p in doc["processes"]}
    assert pids <= {400, 512} and pids
    # since= returns only newer points; max_points bounds the count
    later = await get_json(jp_fetch, "history", since=str(gpu["t"][-2]), fields="util_gpu")
    assert later["gpus"][0]["t"][0] > gpu["t"][-2]
    assert list(later["gpus"][0]["values"]) == ["util_gpu"]
    small = (await get_json(jp_fetch, "history", max_points="2"))["gpus"][0]
    assert len(small["t"]) == 2
    # the full series up to the same instant, split as the server splits it into 2 buckets:
    # each point is its bucket's last time and its maximum memory (a peak is never averaged away)
    full = (await get_json(jp_fetch, "history"))["gpus"][0]
    rows = [(t, used) for t, used in zip(full["t"], full["values"]["mem_used"]) if t <= small["t"][-1]]
    buckets = [rows[: len(rows) // 2], rows[len(rows) // 2 :]]
    assert small["t"] == [bucket[-1][0] for bucket in buckets]
    assert small["values"]["mem_used"] == [max(used for _, used in bucket) for bucket in buckets]


async def test_history_answers_a_repeated_field_once(jp_fetch, panel):
    """``mem_used`` named 6,500 times was computed 6,500 times under the history lock (a second a
    request, and the ordinary queries waited behind it): each field is answered once."""
    await wait_ticks(panel, 3)
    # 4,000: the commas travel percent-encoded here (tests/test_fuzz.py sends 6,500 raw)
    fields = ",".join(["mem_used"] * 4000 + ["util_gpu", "mem_used", "util_gpu"])
    doc = await get_json(jp_fetch, "history", fields=fields)
    assert doc["fields"] == ["mem_used", "util_gpu"]
    [gpu] = doc["gpus"]
    assert list(gpu["values"]) == ["mem_used", "util_gpu"]
    assert len(gpu["values"]["mem_used"]) == len(gpu["t"]) >= 3


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "nan"}, "finite"),
        ({"max_points": "-1"}, "max_points"),
        ({"max_points": "lots"}, "max_points"),
        ({"fields": "mem_used,evil"}, "evil"),
        ({"gpu": "zero"}, "gpu"),
    ],
)
async def test_history_rejects_bad_input_with_a_message(jp_fetch, panel, params, needle):
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("api", "gpu-panel", "history", params=params)
    assert err.value.code == 400
    body = json.loads(err.value.response.body)
    assert needle in body["message"]
    assert "Traceback" not in err.value.response.body.decode()


async def test_openapi_describes_every_route(jp_fetch, panel, jp_serverapp):
    doc = await get_json(jp_fetch, "openapi.json")
    assert doc["openapi"].startswith("3.")
    for route in ("status", "devices", "snapshot", "history", "stream", "openapi.json"):
        assert f"/api/gpu-panel/{route}" in doc["paths"], route
    # ... and every documented GET route exists on the server
    for path, ops in doc["paths"].items():
        if "get" in ops and "{" not in path and not path.endswith("stream"):
            resp = await jp_fetch(*path.strip("/").split("/"))
            assert resp.code == 200, path


async def test_unknown_route_is_404_not_500(jp_fetch, panel):
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("api", "gpu-panel", "nope")
    assert err.value.code == 404


async def _read_until(ws, kind, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {kind} message"
        msg = validate_ws_message(await asyncio.wait_for(ws.read_message(), left))
        if msg["type"] == kind:
            return msg


async def test_stream_hello_then_snapshots(jp_ws_fetch, panel):
    ws = await jp_ws_fetch("api", "gpu-panel", "stream")
    hello = validate_ws_message(await ws.read_message())
    assert hello["type"] == "hello"
    assert hello["status"]["source"] == "replay"
    first = await _read_until(ws, "snapshot")
    second = await _read_until(ws, "snapshot")
    assert second["snapshot"]["t"] > first["snapshot"]["t"]
    gpu = second["snapshot"]["gpus"][0]
    assert gpu["mem_used"] == panel.sampler.source.sample_at(0, gpu["t"])["mem_used"]
    ws.close()


async def test_stream_never_faster_than_the_server_floor(jp_ws_fetch, panel):
    ws = await jp_ws_fetch("api", "gpu-panel", "stream")
    ws.write_message(json.dumps({"interval": 0.001, "fields": ["util_gpu"]}))
    config = await _read_until(ws, "config")
    assert config["interval"] >= 0.1
    assert config["fields"] == ["util_gpu"]
    times = []
    start = time.monotonic()
    while time.monotonic() - start < 1.0:
        msg = await _read_until(ws, "snapshot")
        times.append(msg["snapshot"]["t"])
        assert set(msg["snapshot"]["gpus"][0]) == {"index", "t", "state", "error", "util_gpu"}
    # at a 0.1 s floor, one second holds at most ~11 messages, never hundreds
    assert len(times) <= 12
    gaps = [b - a for a, b in zip(times[1:], times[2:])]
    assert min(gaps) >= 0.05
    ws.close()


async def test_stream_slower_rate_on_request(jp_ws_fetch, panel):
    ws = await jp_ws_fetch("api", "gpu-panel", "stream")
    ws.write_message(json.dumps({"interval": 0.5}))
    config = await _read_until(ws, "config")
    assert config["interval"] == pytest.approx(0.5)
    await _read_until(ws, "snapshot")  # the first may follow the old rate
    b = await _read_until(ws, "snapshot")
    c = await _read_until(ws, "snapshot")
    assert c["snapshot"]["t"] - b["snapshot"]["t"] >= 0.4
    ws.close()


@pytest.mark.parametrize(
    "message",
    ["not json", "[1, 2]", '{"interval": "fast"}', '{"interval": -1}', '{"fields": ["x"]}', '{"fields": "util_gpu"}'],
)
async def test_stream_bad_messages_get_an_error_and_the_stream_goes_on(jp_ws_fetch, panel, message):
    ws = await jp_ws_fetch("api", "gpu-panel", "stream")
    ws.write_message(message)
    err = await _read_until(ws, "error")
    assert err["message"]
    await _read_until(ws, "snapshot")  # still streaming
    ws.close()


async def test_unauthenticated_requests_are_refused(jp_fetch, jp_ws_fetch, panel):
    for route in ("status", "devices", "snapshot", "history", "openapi.json"):
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch("api", "gpu-panel", route, headers={"Authorization": ""})
        assert err.value.code == 403, route
    with pytest.raises(HTTPClientError) as err:
        await jp_ws_fetch("api", "gpu-panel", "stream", headers={"Authorization": ""})
    assert err.value.code == 403
