"""On a real GPU: Prometheus scrapes a real server (NVML source), and an idle notebook on GPU
memory is flagged and its torch cache released (issues 10 and 11).

    python tests/gpu/cluster_idle_e2e.py OUTDIR PROMETHEUS_BINARY

A kernel allocates 8 GiB, frees the tensor (torch keeps it cached) and goes idle; past
``idle_after`` the server flags it; *Release cached memory* (``POST kernels/{id}/release``) empties
torch's cache and nvidia-smi shows the difference. Meanwhile Prometheus scrapes the server's
/metrics: its per-kernel series must match ``GET kernels``. Writes OUTDIR/cluster_idle_e2e.json.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_e2e import TOKEN, api, execute, free_port, nvidia_smi, start_server, wait_ready

IDLE_AFTER = 15
CELL = """
import torch
m = torch.nn.Linear(256, 256).cuda(); o = torch.optim.SGD(m.parameters(), lr=0.1)
def step():
    m(torch.randn(64, 256, device="cuda")).sum().backward(); o.step(); o.zero_grad()
step()                                  # cuBLAS workspaces etc. allocated first, in their own segments
x = torch.empty(8 * 2**30, dtype=torch.uint8, device="cuda"); x.fill_(1)
del x                                   # gone from Python, kept by torch's caching allocator
for _ in range(3):                      # a few steps, so the probe has a reading with the cache in it
    step()
torch.cuda.synchronize()
"""


def prom_query(url: str, q: str) -> list:
    with urllib.request.urlopen(url + "api/v1/query?" + urllib.parse.urlencode({"query": q}), timeout=10) as r:
        return json.loads(r.read())["data"]["result"]


def smi_apps() -> dict[int, int]:
    return {int(r[0]): int(r[1]) for r in nvidia_smi("--query-compute-apps=pid,used_memory") if r[1].isdigit()}


async def main(out: Path, prometheus: str) -> int:
    pport = free_port()
    purl = f"http://127.0.0.1:{pport}/"
    server, port, root, _ = start_server(
        out,
        f"--GPUPanel.idle_after={IDLE_AFTER}",
        f"--GPUPanel.prometheus_url={purl}",
        "--GPUPanel.node_name=h200-node",
    )
    (root / "prom").mkdir()
    (root / "prom" / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n- job_name: jupyter\n  authorization: {{credentials: {TOKEN}}}\n"
        f"  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    prom = subprocess.Popen(
        [prometheus, f"--config.file={root / 'prom' / 'prometheus.yml'}",
         f"--storage.tsdb.path={root / 'prom' / 'data'}", f"--web.listen-address=127.0.0.1:{pport}",
         "--log.level=warn"],
        stdout=open(out / "prometheus.log", "w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/gpu-panel"
    http = AsyncHTTPClient()
    result: dict = {"idle_after_s": IDLE_AFTER}
    try:
        await wait_ready(http, port)
        session = await api(
            http, f"http://127.0.0.1:{port}", "api/sessions", "POST",
            {"path": "finished.ipynb", "type": "notebook", "name": "finished", "kernel": {"name": "python3"}},
        )  # fmt: skip
        kid = session["kernel"]["id"]
        await asyncio.sleep(3)
        result["probe_load"] = await api(http, base, f"kernels/{kid}/probe", "POST", {})
        await execute(port, kid, CELL)
        await asyncio.sleep(5)
        result["after_cell_snapshot"] = await api(http, base, "snapshot")
        t_run = time.time()
        flagged = None
        while time.time() - t_run < IDLE_AFTER + 60:
            doc = await api(http, base, "kernels?refresh=1")
            row = next((k for k in doc["kernels"] if k["kernel_id"] == kid), None)
            if row and row["idle"]["holder"]:
                flagged = row
                break
            await asyncio.sleep(1)
        result["flagged"] = flagged and {k: flagged[k] for k in ("idle", "memory", "pids", "execution_state")}
        result["flagged_after_s"] = round(time.time() - t_run, 1)
        result["nvidia_smi_before_mib"] = smi_apps()
        # Prometheus: the per-kernel series against GET kernels
        await asyncio.sleep(3)
        series = prom_query(purl, f'jupyter_gpu_panel_kernel_memory_bytes{{kernel_id="{kid}"}}')
        idle_series = prom_query(purl, f'jupyter_gpu_panel_kernel_idle_seconds{{kernel_id="{kid}"}}')
        doc = await api(http, base, "kernels")
        row = next(k for k in doc["kernels"] if k["kernel_id"] == kid)
        result["prometheus_vs_kernels"] = {
            "kernels_memory": row["memory"],
            "prometheus": {s["metric"]["gpu"]: float(s["value"][1]) for s in series},
            "labels": series[0]["metric"] if series else None,
            "idle_seconds_series": [float(s["value"][1]) for s in idle_series],
        }
        result["prometheus_matches"] = bool(series) and all(
            abs(float(s["value"][1]) - row["memory"][s["metric"]["gpu"]]) <= 64 * 2**20 for s in series
        )
        result["gpu_series"] = [
            s["metric"] | {"value": s["value"][1]} for s in prom_query(purl, "jupyter_gpu_panel_memory_used_bytes")
        ]
        result["cluster"] = await api(http, base, "cluster")
        # Release cached memory
        result["release"] = await api(http, base, f"kernels/{kid}/release", "POST", {})
        await asyncio.sleep(2)
        result["nvidia_smi_after_mib"] = smi_apps()
        doc = await api(http, base, "kernels?refresh=1")
        row = next(k for k in doc["kernels"] if k["kernel_id"] == kid)
        result["after"] = {"memory": row["memory"], "idle": row["idle"]}
        pid = (flagged or {}).get("pids", [None])[0] if flagged else None
        before, after = result["nvidia_smi_before_mib"].get(pid), result["nvidia_smi_after_mib"].get(pid)
        result["nvidia_smi_freed_mib"] = None if before is None or after is None else before - after
        ok = bool(flagged) and result["prometheus_matches"] and (result["nvidia_smi_freed_mib"] or 0) >= 7 * 1024
        result["ok"] = ok
    finally:
        (out / "cluster_idle_e2e.json").write_text(json.dumps(result, indent=1, default=str))
        server.terminate()
        prom.terminate()
        server.wait(timeout=20)
        prom.wait(timeout=20)
    print(
        json.dumps({k: result.get(k) for k in ("ok", "flagged_after_s", "prometheus_matches", "nvidia_smi_freed_mib")})
    )
    print("release:", json.dumps(result.get("release")))
    print("flagged:", json.dumps(result.get("flagged"))[:600])
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]), sys.argv[2])))
