"""Idle notebooks that sit on GPU memory: flagged, their torch cache released, optionally culled.

Real kernels on a real server; the fake NVML (the hardware boundary) lists their real pids as
GPU processes holding memory. ``idle_after`` is shortened to a second.
"""

import asyncio
import json

import pytest

GiB = 2**30


@pytest.fixture
def cull():
    return 0.0


@pytest.fixture
def gpu_panel_config(fake, cull):
    return {
        "source": "nvml", "interval": 0.1, "kernel_refresh": 0.2,
        "idle_after": 1.0, "cull_idle_gpu_kernels_after": cull,
    }  # fmt: skip


async def start_kernel(jp_fetch, jp_serverapp, path):
    body = {"path": path, "type": "notebook", "name": path, "kernel": {"name": "python3"}}
    resp = await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))
    kid = json.loads(resp.body)["kernel"]["id"]
    km = jp_serverapp.kernel_manager
    client = km.get_kernel(kid).client()
    client.start_channels()
    await client.wait_for_ready(timeout=60)
    return kid, km.get_kernel(kid).provisioner.pid, client


async def kernels(jp_fetch):
    doc = json.loads((await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})).body)
    return {k["kernel_id"]: k for k in doc["kernels"]}, doc


async def two_kernels(jp_fetch, jp_serverapp, fake):
    """An idle one that ran a cell (and imported torch), and a busy one; both hold GPU memory."""
    idle_kid, idle_pid, idle_client = await start_kernel(jp_fetch, jp_serverapp, "done.ipynb")
    busy_kid, busy_pid, busy_client = await start_kernel(jp_fetch, jp_serverapp, "training.ipynb")
    await idle_client.execute_interactive("import torch\nx = torch.ones(3)", timeout=60)
    busy_client.execute("import time\ntime.sleep(60)")  # still running while the test looks
    fake.processes[0] = [(idle_pid, 18 * GiB), (busy_pid, 20 * GiB)]
    await asyncio.sleep(1.5)  # past idle_after
    return (idle_kid, idle_client), (busy_kid, busy_client)


async def test_an_idle_kernel_on_gpu_memory_is_flagged_and_its_cache_released(jp_fetch, jp_serverapp, panel, fake):
    (idle_kid, idle_client), (busy_kid, busy_client) = await two_kernels(jp_fetch, jp_serverapp, fake)
    try:
        rows, _ = await kernels(jp_fetch)
        idle = rows[idle_kid]["idle"]
        assert idle["holder"] is True and idle["seconds"] >= 1.0
        assert idle["message"].startswith("Idle ") and "holding 18 GiB" in idle["message"]
        assert rows[busy_kid]["idle"]["holder"] is False and rows[busy_kid]["execution_state"] == "busy"
        # exported with the kernel's series, for the cluster's dashboards
        metrics = (await jp_fetch("metrics")).body.decode()
        idle_lines = [
            line for line in metrics.splitlines() if line.startswith("jupyter_gpu_panel_kernel_idle_seconds{")
        ]
        assert len(idle_lines) == 1 and f'kernel_id="{idle_kid}"' in idle_lines[0]  # the busy one is not idle
        # Release cached memory runs in the kernel: on this CPU-only torch it is the no-op it should be
        resp = await jp_fetch("api", "gpu-panel", "kernels", idle_kid, "release", method="POST", body="{}")
        out = json.loads(resp.body)
        assert out["ok"] is True and out["torch"] is True and out["cuda"] is False and out["freed"] == 0
        assert "has not used a GPU" in out["message"]
        # the panel's own execution is no user activity: the kernel stays idle, its time goes on
        rows, _ = await kernels(jp_fetch)
        assert rows[idle_kid]["idle"]["holder"] is True and rows[idle_kid]["idle"]["seconds"] >= idle["seconds"]
        check = jp_serverapp.kernel_manager.get_kernel(idle_kid).client()
        check.start_channels()
        try:
            reply = await check.execute_interactive("assert x.sum().item() == 3", timeout=60)
        finally:
            check.stop_channels()
        assert reply["content"]["status"] == "ok"  # the variables are still there
        # a busy kernel is not touched
        with pytest.raises(Exception) as err:
            await jp_fetch("api", "gpu-panel", "kernels", busy_kid, "release", method="POST", body="{}")
        assert err.value.code == 409
    finally:
        idle_client.stop_channels()
        busy_client.stop_channels()


@pytest.mark.parametrize("cull", [1.2])
async def test_enforcement_shuts_down_only_the_idle_holder(jp_fetch, jp_serverapp, panel, fake, cull):
    (idle_kid, idle_client), (busy_kid, busy_client) = await two_kernels(jp_fetch, jp_serverapp, fake)
    try:
        rows, doc = await kernels(jp_fetch)
        for _ in range(20):
            if idle_kid not in rows:
                break
            await asyncio.sleep(0.2)
            rows, doc = await kernels(jp_fetch)
        assert idle_kid not in jp_serverapp.kernel_manager and idle_kid not in rows
        assert busy_kid in jp_serverapp.kernel_manager and rows[busy_kid]["execution_state"] == "busy"
        [culled] = doc["culled"]
        assert culled["kernel_id"] == idle_kid and culled["notebook"] == "done.ipynb" and culled["memory"] == 18 * GiB
    finally:
        idle_client.stop_channels()
        busy_client.stop_channels()
