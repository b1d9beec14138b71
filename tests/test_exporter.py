"""``/metrics``: the GPU and per-kernel series on Jupyter Server's own Prometheus endpoint.

A real server with the fake NVML (the hardware boundary) listing a real kernel's pid as a GPU
process; the exposition is parsed with prometheus_client's own parser.
"""

import asyncio
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import HTTPClientError

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


async def _kernel_on_gpu(jp_fetch, jp_serverapp, fake, path):
    resp = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps({"path": path, "type": "notebook", "name": "t", "kernel": {"name": "python3"}}),
    )
    kid = json.loads(resp.body)["kernel"]["id"]
    fake.processes[0] = [(jp_serverapp.kernel_manager.get_kernel(kid).provisioner.pid, 3 * GiB)]
    await asyncio.sleep(0.4)
    await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})
    return kid


@pytest.mark.parametrize("show", [False, True], ids=["default", "metrics_show_notebooks"])
async def test_an_unauthenticated_scrape_names_no_notebook_or_user(jp_fetch, jp_serverapp, panel, fake, show):
    """``authenticate_prometheus = False`` (the README's suggestion for private networks) lets anyone
    who reaches the port read /metrics: notebook paths and user names stay out of the labels unless
    ``metrics_show_notebooks``."""
    from jupyter_gpu_panel.app import server_user

    jp_serverapp.web_app.settings["authenticate_prometheus"] = False  # what jupyter_server's handler reads
    panel.metrics_show_notebooks = show
    kid = await _kernel_on_gpu(jp_fetch, jp_serverapp, fake, "secret-project/alice-thesis.ipynb")
    resp = await jp_fetch("metrics", headers={"Authorization": ""})  # no token: anyone
    text = resp.body.decode()
    memory = [
        s for fam in text_string_to_metric_families(text) for s in fam.samples if s.name.endswith("kernel_memory_bytes")
    ]
    [sample] = memory
    assert sample.labels["kernel_id"] == kid and sample.labels["gpu"] == "0" and sample.value == 3 * GiB
    if show:
        assert sample.labels["notebook"] == "secret-project/alice-thesis.ipynb"
        assert sample.labels["user"] == server_user()
    else:
        assert "notebook" not in sample.labels and "user" not in sample.labels
        assert "alice-thesis" not in text and f'user="{server_user()}"' not in text


async def test_an_authenticated_scrape_keeps_notebook_and_user(jp_fetch, jp_serverapp, panel, fake):
    from jupyter_gpu_panel.app import server_user

    assert jp_serverapp.web_app.settings["authenticate_prometheus"] is True and panel.metrics_show_notebooks is False
    await _kernel_on_gpu(jp_fetch, jp_serverapp, fake, "team/eval.ipynb")
    [(labels, _)] = (await scrape(jp_fetch))["jupyter_gpu_panel_kernel_memory_bytes"]
    assert labels["notebook"] == "team/eval.ipynb" and labels["user"] == server_user()
    with pytest.raises(HTTPClientError) as err:  # and nobody reads it without the token
        await jp_fetch("metrics", headers={"Authorization": ""})
    assert err.value.code == 403
