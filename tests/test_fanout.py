"""One sampler per server: N websocket clients cost one NVML read per GPU per tick."""

import asyncio
import json
import sys

import pytest

from contract import validate_ws_message
from fake_nvml import FakeNVML


@pytest.fixture
def fake_gpus():
    return 2


@pytest.fixture
def gpu_panel_config(fake):
    return {"source": "auto", "interval": 0.1, "slow_interval": 1.0}


async def test_n_clients_one_read_per_tick(jp_ws_fetch, jp_fetch, panel, fake):
    clients = [await jp_ws_fetch("api", "gpu-panel", "stream") for _ in range(8)]
    received = [0] * len(clients)

    async def drain(i, ws):
        while True:
            msg = await ws.read_message()
            if msg is None:
                return
            if validate_ws_message(msg)["type"] == "snapshot":
                received[i] += 1

    tasks = [asyncio.create_task(drain(i, ws)) for i, ws in enumerate(clients)]
    reads0 = fake.count("nvmlDeviceGetUtilizationRates")
    ticks0 = panel.sampler.health.ticks
    await asyncio.sleep(1.5)
    reads = fake.count("nvmlDeviceGetUtilizationRates") - reads0
    ticks = panel.sampler.health.ticks - ticks0
    for t in tasks:
        t.cancel()
    for ws in clients:
        ws.close()
    assert ticks >= 5
    assert all(r >= 5 for r in received), received
    # exactly one read per GPU per tick (+-1 tick at the window edges), not one per client
    assert abs(reads - 2 * ticks) <= 2, (reads, ticks)


async def test_status_and_snapshot_from_fake_nvml(jp_fetch, panel, fake):
    for _ in range(50):
        if panel.sampler.health.ticks >= 2:
            break
        await asyncio.sleep(0.05)
    status = json.loads((await jp_fetch("api", "gpu-panel", "status")).body)
    assert status["source"] == "nvml" and status["state"] == "ok"
    snap = json.loads((await jp_fetch("api", "gpu-panel", "snapshot")).body)
    assert [g["index"] for g in snap["gpus"]] == [0, 1]
    assert snap["gpus"][0]["mem_total"] == 81559 * 2**20
    fake.lost.add(1)
    await asyncio.sleep(0.4)
    snap = json.loads((await jp_fetch("api", "gpu-panel", "snapshot")).body)
    assert [g["state"] for g in snap["gpus"]] == ["ok", "lost"]
    # the server keeps serving
    assert (await jp_fetch("api", "gpu-panel", "history")).code == 200


class TestNoGPU:
    @pytest.fixture
    def fake(self, monkeypatch):
        import pynvml

        fake = FakeNVML(init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
        monkeypatch.setitem(sys.modules, "pynvml", fake)
        return fake

    async def test_driver_not_loaded_is_a_state_and_every_route_still_answers(self, jp_fetch, panel, fake):
        for _ in range(50):
            if panel.sampler.health.ticks >= 1:
                break
            await asyncio.sleep(0.05)
        status = json.loads((await jp_fetch("api", "gpu-panel", "status")).body)
        assert status["state"] == "driver-not-loaded"
        assert "not loaded" in status["message"]
        snap = json.loads((await jp_fetch("api", "gpu-panel", "snapshot")).body)
        assert snap["state"] == "driver-not-loaded" and snap["gpus"] == []
        assert json.loads((await jp_fetch("api", "gpu-panel", "devices")).body) == {"devices": []}
        hist = json.loads((await jp_fetch("api", "gpu-panel", "history")).body)
        assert hist["gpus"] == []
