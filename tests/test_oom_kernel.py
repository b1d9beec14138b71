"""The OOM explained and an idle holder's cache, through a real server and a real kernel.

The kernel runs the probe's own code, loaded as the panel loads it (``protocol.LOAD_CODE``). torch
here is a CPU build, so the kernel first stands in for CUDA at torch's boundary only: a device
index, a card's size and memory fraction, and CPU tensors counted as the device's (``Probe.holds``); the allocator's
counters are CPU torch's own (zeros). The fake NVML lists the kernel's pid as a GPU process.
"""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("torch")

from test_oom import OOM_TEXT

from jupyter_gpu_panel.probe import protocol as P

GiB = 2**30

CPU_STAND_IN = """
import types, torch
torch.cuda.current_device = lambda: 0
torch.cuda.get_device_properties = lambda device: types.SimpleNamespace(total_memory=1 << 30)
torch.cuda.get_per_process_memory_fraction = lambda device: 1.0
import jupyter_gpu_panel.probe as _p, jupyter_gpu_panel.probe.core as _core
_p.unavailable_reason = lambda: None
_core.Probe.holds = lambda self, tensor: True
"""

TRAIN = """
model = torch.nn.Linear(64, 64)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for _ in range(6):
    loss = model(torch.randn(32, 64)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""

EVAL = """val_loss = 0
for step in range(40):
    xv = torch.randn(128, 64)
    val_loss += model(xv).pow(2).mean()
raise torch.OutOfMemoryError({text!r})
"""


@pytest.fixture
def gpu_panel_config(fake):
    return {"source": "nvml", "interval": 0.1, "kernel_refresh": 0.2, "idle_after": 0.5}


async def start_kernel(jp_fetch, jp_serverapp, path):
    body = {"path": path, "type": "notebook", "name": path, "kernel": {"name": "python3"}}
    resp = await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))
    kid = json.loads(resp.body)["kernel"]["id"]
    kernel = jp_serverapp.kernel_manager.get_kernel(kid)
    client = kernel.client()
    client.start_channels()
    await client.wait_for_ready(timeout=60)
    return kid, kernel.provisioner.pid, client


async def run(client, code):
    """Run a cell as the notebook does; its output and error."""
    out = []
    reply = await client.execute_interactive(code, timeout=60, output_hook=out.append)
    text = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
    return text, reply["content"]


async def row_when(jp_fetch, kid, ready, timeout=20.0):
    """The kernel's row once ``ready(row)`` (the probe's files are read on the tracker's thread)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        doc = json.loads((await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})).body)
        row = next(k for k in doc["kernels"] if k["kernel_id"] == kid)
        if ready(row) or loop.time() > deadline:
            return row
        await asyncio.sleep(0.3)


async def loaded_kernel(jp_fetch, jp_serverapp, fake, path):
    kid, pid, client = await start_kernel(jp_fetch, jp_serverapp, path)
    fake.processes[0] = [(pid, 3 * GiB)]
    await run(client, CPU_STAND_IN)
    text, _ = await run(client, P.LOAD_CODE)
    assert P.load_succeeded(text), (text, _)
    return kid, client


async def test_an_oom_in_a_cell_is_explained_by_the_line_that_holds_the_memory(jp_fetch, jp_serverapp, panel, fake):
    kid, client = await loaded_kernel(jp_fetch, jp_serverapp, fake, "val.ipynb")
    try:
        await run(client, TRAIN)
        _, reply = await run(client, EVAL.format(text=OOM_TEXT))
        assert reply["status"] == "error" and reply["ename"] == "OutOfMemoryError"
        count = reply["execution_count"]
        row = await row_when(jp_fetch, kid, lambda r: (r["leak"] or {}).get("state") == "oom")
    finally:
        client.stop_channels()
    leak = row["leak"]
    assert leak["source"] == "steps" and leak["state"] == "oom", leak
    oom = leak["oom"]
    assert oom["step"] == 6 and oom["execution_count"] == count and oom["source"] == "exception"
    assert oom["requested"] == 64 * 2**20
    top = next(h for h in oom["holders"] if not h["model"])
    assert top["name"] == "val_loss" and top["where"] == "cell line 4" and top["graph"] is True
    assert top["code"] == "val_loss += model(xv).pow(2).mean()"
    assert leak["message"].startswith(
        f"Ran out of memory at step 6 in cell [{count}]; `val_loss += model(xv).pow(2).mean()` (cell line 4) holds "
    )
    assert "full in" not in leak["message"] and leak["forecast"] is None
    assert any("Release cached memory" in a for a in oom["advice"])
    assert any("torch.no_grad()" in a for a in oom["advice"])


async def test_an_idle_kernel_with_the_probe_and_no_step_has_a_cached_reading(jp_fetch, jp_serverapp, panel, fake):
    """Issue 19 item 5: the probe reads the allocator when loaded and at each cell's end; the
    server's ``cached`` is that reading (CPU torch's counters are zeros: a number, not null)."""
    kid, client = await loaded_kernel(jp_fetch, jp_serverapp, fake, "idle.ipynb")
    try:
        row = await row_when(jp_fetch, kid, lambda r: r["idle"]["cached"] is not None and r["idle"]["holder"])
        assert row["probe"] is not None and row["probe"]["steps"] == 0  # no optimizer step, no loop
        assert isinstance(row["idle"]["cached"], int) and row["idle"]["cached"] >= 0
        assert row["idle"]["holder"] is True
        await run(client, "x = torch.ones(4)")  # a cell's end reads it again
        row = await row_when(jp_fetch, kid, lambda r: r["idle"]["holder"])
        assert isinstance(row["idle"]["cached"], int)
    finally:
        client.stop_channels()
