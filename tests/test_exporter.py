"""``/metrics``: the GPU and per-kernel series on Jupyter Server's own Prometheus endpoint.

A real server with the fake NVML (the hardware boundary) listing a real kernel's pid as a GPU
process; the exposition is parsed with prometheus_client's own parser.
"""

import asyncio
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fake_nvml import h100_facts

GiB = 2**30


@pytest.fixture
def gpu_panel_config(fake):
    return {"source": "nvml", "interval": 0.1, "kernel_refresh": 0.2, "node_name": "gpu-node-7"}


async def scrape(jp_fetch):
    resp = await jp_fetch("metrics")
    assert resp.headers["Content-Type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(resp.body.decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


async def test_gpu_series_in_base_units_with_dcgm_labels(jp_fetch, panel):
    await asyncio.sleep(0.4)
    series = await scrape(jp_fetch)
    facts = h100_facts()
    [(labels, total)] = series["jupyter_gpu_panel_memory_total_bytes"]
    assert labels == {"gpu": "0", "UUID": facts["uuid"], "modelName": facts["name"], "Hostname": "gpu-node-7"}
    assert total == facts["mem_total"]
    [(_, watts)] = series["jupyter_gpu_panel_power_watts"]
    assert watts == pytest.approx(facts["power_mw"] / 1000)
    [(_, ratio)] = series["jupyter_gpu_panel_utilization_ratio"]
    assert 0.0 <= ratio <= 1.0
    [(_, hz)] = series["jupyter_gpu_panel_sm_clock_hertz"]
    assert hz > 1e8  # MHz in NVML, hertz here
    assert series["jupyter_gpu_panel_gpu_up"] == [(labels, 1.0)]


async def test_kernel_memory_appears_with_its_notebook_and_goes_with_the_kernel(jp_fetch, jp_serverapp, panel, fake):
    resp = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps({"path": "team/train.ipynb", "type": "notebook", "name": "t", "kernel": {"name": "python3"}}),
    )
    kid = json.loads(resp.body)["kernel"]["id"]
    pid = jp_serverapp.kernel_manager.get_kernel(kid).provisioner.pid
    fake.processes[0] = [(pid, 3 * GiB)]
    await asyncio.sleep(0.4)
    await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})
    series = await scrape(jp_fetch)
    [(labels, used)] = series["jupyter_gpu_panel_kernel_memory_bytes"]
    assert used == 3 * GiB
    assert labels["kernel_id"] == kid and labels["notebook"] == "team/train.ipynb" and labels["gpu"] == "0"
    assert labels["Hostname"] == "gpu-node-7" and "pid" not in labels  # no ever-changing labels
    await jp_fetch("api", "sessions", json.loads(resp.body)["id"], method="DELETE")
    fake.processes[0] = []
    await asyncio.sleep(0.3)
    await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})
    assert "jupyter_gpu_panel_kernel_memory_bytes" not in await scrape(jp_fetch)
