"""Beyond one machine, with real components: Debian's Prometheus scrapes three Jupyter servers
(two replaying different recorded H100 traces, one on the fake NVML with a real kernel holding
memory) and a DCGM-style exporter serving recorded H100 readings for four nodes; a fourth
Jupyter server (the test's own, pytest-jupyter) asks Prometheus through ``GET cluster``.
"""

import asyncio
import gc
import gzip
import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

import needs
from conftest import ROOT, TRACES
from dcgm import exposition, gpus_from_trace
from servers import Exposition, free_port, start_jupyter_server, start_prometheus, wait_until

GiB = 2**30
TOKEN = "cluster-scrape-token"
REPLAYS = {
    "node-a": TRACES / "h100" / "leak_hidden.nvml.jsonl",
    "node-b": TRACES / "h100-mlp" / "healthy_mlp.nvml.jsonl",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    needs.prometheus()
    work = tmp_path_factory.mktemp("cluster")
    servers, prom, dcgm = {}, None, None
    try:
        for node, trace in REPLAYS.items():
            servers[node] = start_jupyter_server(
                work / node, "--GPUPanel.source=replay", f"--GPUPanel.replay_file={trace}",
                "--GPUPanel.interval=0.2", f"--GPUPanel.node_name={node}", token=TOKEN,
            )  # fmt: skip
        servers["node-c"] = start_jupyter_server(
            work / "node-c", "--GPUPanel.source=nvml", "--GPUPanel.interval=0.2", "--GPUPanel.kernel_refresh=0.5",
            "--GPUPanel.node_name=node-c", fake_gpus=1, token=TOKEN,
        )  # fmt: skip
        # node-d runs no Jupyter: DCGM alone knows it
        recorded = [
            *gpus_from_trace("node-a", REPLAYS["node-a"]),
            *gpus_from_trace("node-b", REPLAYS["node-b"]),
            *gpus_from_trace("node-c", TRACES / "h100" / "healthy_plateau.nvml.jsonl"),
            *gpus_from_trace("node-d", TRACES / "h100" / "leak_onset_200.nvml.jsonl", gpus=2),
        ]
        dcgm = Exposition(lambda: exposition(recorded)).start()
        prom = start_prometheus(
            work / "prometheus",
            [
                {"job_name": "jupyter", "authorization": {"credentials": TOKEN},
                 "static_configs": [{"targets": [f"127.0.0.1:{s.port}" for s in servers.values()]}]},
                {"job_name": "dcgm", "static_configs": [{"targets": [f"127.0.0.1:{dcgm.port}"]}]},
            ],
        )  # fmt: skip
        # a real kernel on node-c, holding 3 GiB as NVML (the fake) reports it
        session = servers["node-c"].api(
            "api/sessions", "POST",
            {"path": "course/train.ipynb", "type": "notebook", "name": "train", "kernel": {"name": "python3"}},
        )  # fmt: skip
        kid = session["kernel"]["id"]
        pid = next(
            k["pid"]
            for k in servers["node-c"].api("api/gpu-panel/kernels?refresh=1")["kernels"]
            if k["kernel_id"] == kid
        )
        servers["node-c"].set_gpu_processes({0: [(pid, 3 * GiB)]})
        wait_until(lambda: bool(prom.query("jupyter_gpu_panel_kernel_memory_bytes")), 60, "the kernel's series")
        wait_until(lambda: len(prom.query("DCGM_FI_DEV_FB_USED")) == 5, 30, "DCGM series")
        # every server scraped at least once (a target's first scrape may lag its start)
        wait_until(lambda: len(prom.query("jupyter_gpu_panel_memory_total_bytes")) == 3, 30, "every server's series")
        yield {"prom": prom, "servers": servers, "kernel_id": kid, "recorded": recorded}
    finally:
        for s in servers.values():
            s.stop()
        if prom is not None:
            prom.stop()
        if dcgm is not None:
            dcgm.stop()


@pytest.fixture
def gpu_panel_config(request):
    cluster = request.getfixturevalue("cluster")
    return {
        "source": "replay",
        "interval": 0.2,
        "prometheus_url": cluster["prom"].url,
        "cluster_refresh": 0.5,
        "history_seconds": 10,
    }


def test_every_server_is_scraped_with_dcgm_join_labels(cluster):
    prom = cluster["prom"]
    totals = {r["metric"]["Hostname"]: r for r in prom.query("jupyter_gpu_panel_memory_total_bytes")}
    assert set(totals) == {"node-a", "node-b", "node-c"}
    for node, trace in REPLAYS.items():
        first = json.loads(trace.read_text().splitlines()[0])
        assert float(totals[node]["value"][1]) == first["mem_total"]
        assert totals[node]["metric"]["gpu"] == "0"
    # the join: our series and DCGM's meet on Hostname and gpu, in PromQL
    joined = prom.query(
        "jupyter_gpu_panel_memory_total_bytes * on(Hostname, gpu) group_left() (DCGM_FI_DEV_FB_USED * 0 + 1)"
    )
    assert {r["metric"]["Hostname"] for r in joined} == {"node-a", "node-b", "node-c"}
    [kernel] = prom.query("jupyter_gpu_panel_kernel_memory_bytes")
    labels = kernel["metric"]
    assert float(kernel["value"][1]) == 3 * GiB
    assert labels["kernel_id"] == cluster["kernel_id"] and labels["notebook"] == "course/train.ipynb"
    assert labels["Hostname"] == "node-c" and labels["gpu"] == "0" and "pid" not in labels


async def test_cluster_lists_every_node_gpu_and_holder(cluster, jp_fetch):
    doc = json.loads((await jp_fetch("api", "gpu-panel", "cluster")).body)
    assert doc["state"] == "ok", doc["message"]
    nodes = {n["node"]: n["gpus"] for n in doc["nodes"]}
    assert set(nodes) == {"node-a", "node-b", "node-c", "node-d"}
    assert [g["gpu"] for g in nodes["node-d"]] == ["0", "1"]
    assert doc["summary"]["gpus"] == 5 and doc["summary"]["nodes"] == 4
    [c0] = nodes["node-c"]
    [holder] = c0["holders"]
    assert holder["kernel_id"] == cluster["kernel_id"] and holder["notebook"] == "course/train.ipynb"
    assert holder["memory"] == 3 * GiB and holder["mine"] is True  # same user as this server
    assert c0["sources"] == ["dcgm", "jupyter"] or sorted(c0["sources"]) == ["dcgm", "jupyter"]
    # DCGM is the reference where both report: its memory (MiB) in bytes, total = used + free
    [d] = nodes["node-d"][:1]
    assert d["sources"] == ["dcgm"] and d["holders"] == [] and d["others"]["count"] == 0
    assert d["mem_total"] == pytest.approx(85520809984, rel=0.001)
    assert 0 <= d["util"] <= 1 and d["sm_clock_hz"] >= 1e8 and d["age_s"] is not None and not d["stale"]


async def test_prometheus_down_is_a_clear_state_and_the_server_goes_on(jp_fetch, panel):
    from jupyter_gpu_panel.cluster.service import ClusterService

    panel.cluster = ClusterService(f"http://127.0.0.1:{free_port()}", me="root", show_users=False, timeout=2)
    doc = json.loads((await jp_fetch("api", "gpu-panel", "cluster")).body)
    assert doc["state"] == "unreachable" and "cannot reach Prometheus" in doc["message"] and doc["nodes"] == []
    status = await jp_fetch("api", "gpu-panel", "status")
    assert status.code == 200 and json.loads(status.body)["cluster_configured"] is True


async def test_stale_scrapes_are_marked(cluster, jp_fetch, panel):
    from jupyter_gpu_panel.cluster.service import ClusterService

    time.sleep(0.05)
    panel.cluster = ClusterService(cluster["prom"].url, me="root", show_users=False, stale_after=0.001)
    doc = json.loads((await jp_fetch("api", "gpu-panel", "cluster")).body)
    assert doc["state"] == "stale" and doc["summary"]["stale"] == doc["summary"]["gpus"] == 5


async def test_not_configured_says_how(jp_fetch, panel):
    from jupyter_gpu_panel.cluster.service import ClusterService

    panel.cluster = ClusterService("", me="root", show_users=False)
    doc = json.loads((await jp_fetch("api", "gpu-panel", "cluster")).body)
    assert doc["state"] == "not-configured" and "prometheus_url" in doc["message"]
    assert json.loads((await jp_fetch("api", "gpu-panel", "status")).body)["cluster_configured"] is False


async def test_history_older_than_the_buffer_comes_from_prometheus(cluster, jp_fetch, panel):
    """This server says it is node-a (which Prometheus has scraped since the fixture started) and
    keeps only 10 s itself: asked for the last minute, the rest comes from Prometheus."""
    panel.node_name = "node-a"
    panel.prometheus_url = cluster["prom"].url
    first = json.loads(REPLAYS["node-a"].read_text().splitlines()[0])
    since = time.time() - 60
    for _ in range(40):  # Prometheus must hold a few scrapes from before this server's 10 s buffer
        doc = json.loads((await jp_fetch("api", "gpu-panel", "history", params={"since": str(since)})).body)
        if doc["older"]["points"] >= 3:
            break
        await asyncio.sleep(0.5)
    older = doc["older"]
    assert older["source"] == "prometheus" and older["error"] is None and older["points"] >= 3
    [gpu] = doc["gpus"]
    t = gpu["t"]
    assert t == sorted(t) and t[0] < older["until"] and since < t[0]
    before = [i for i, x in enumerate(t) if x < older["until"]]
    # the recorded card's total memory, in the history's own unit, from Prometheus
    assert {gpu["values"]["mem_total"][i] for i in before} == {first["mem_total"]}
    assert all(v is None or 0 <= v <= 100 for v in (gpu["values"]["util_gpu"][i] for i in before))
    # without a Prometheus, the same question is answered from the buffer alone
    panel.prometheus_url = ""
    doc = json.loads((await jp_fetch("api", "gpu-panel", "history", params={"since": str(since)})).body)
    assert doc["older"] is None


SCALE = ROOT / "tests" / "data" / "cluster" / "dcgm-100x8.prom.gz"


@pytest.fixture(scope="module")
def big_cluster(tmp_path_factory):
    needs.prometheus()
    """A real Prometheus scraping a recorded exposition of 100 nodes x 8 GPUs."""
    text = gzip.decompress(SCALE.read_bytes()).decode()
    exporter = Exposition(lambda: text).start()
    prom = start_prometheus(
        tmp_path_factory.mktemp("big"),
        [{"job_name": "dcgm", "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}],
    )
    try:
        wait_until(lambda: len(prom.query("DCGM_FI_DEV_FB_USED")) == 800, 30, "800 GPUs in Prometheus")
        yield prom, text
    finally:
        prom.stop()
        exporter.stop()


@pytest.mark.parametrize("show_users", [False, True])
async def test_a_cluster_of_100_nodes_by_8_gpus(big_cluster, jp_fetch, panel, show_users):
    from jupyter_gpu_panel.cluster.service import ClusterService

    prom, text = big_cluster
    panel.cluster = ClusterService(prom.url, me="root", show_users=show_users)
    doc = json.loads((await jp_fetch("api", "gpu-panel", "cluster")).body)
    assert doc["state"] == "ok" and doc["summary"]["nodes"] == 100 and doc["summary"]["gpus"] == 800
    assert all(len(n["gpus"]) == 8 for n in doc["nodes"])
    held = text.count("\njupyter_gpu_panel_kernel_memory_bytes{")
    leaking = sum(
        1
        for line in text.splitlines()
        if line.startswith("jupyter_gpu_panel_kernel_leak_actionable{") and line.endswith(" 1")
    )
    gpus = [g for n in doc["nodes"] for g in n["gpus"]]
    assert doc["summary"]["held"] == held and doc["summary"]["leak_alarms"] == leaking > 0
    named = sum(len(g["holders"]) for g in gpus)
    counted = sum(g["others"]["count"] for g in gpus)
    if show_users:  # a teacher's deployment: every holder named
        assert named == held and counted == 0
        assert all(h["user"].startswith("user") and h["notebook"] for g in gpus for h in g["holders"])
    else:  # other users are counted, never named
        assert named == 0 and counted == held
        assert all(1 <= g["others"]["users"] <= g["others"]["count"] for g in gpus if g["others"]["count"])
        assert "user0" not in json.dumps(doc)


def test_the_grafana_dashboard_queries_run_on_prometheus(cluster):
    """Every panel's PromQL (variables filled with 'all') is accepted by the real Prometheus, and the
    memory-per-notebook panel shows the notebook that holds a GPU."""
    dash = json.loads((ROOT / "dashboards" / "jupyter-gpu-panel.json").read_text())
    prom = cluster["prom"]
    results = {}
    for panel in dash["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$node", ".*").replace("$user", ".*")
            results[panel["title"]] = prom.query(expr)  # raises on a PromQL error
    assert {r["metric"]["notebook"] for r in results["GPU memory per notebook"]} == {"course/train.ipynb"}
    assert {r["metric"]["Hostname"] for r in results["GPU memory used per node (DCGM exporter)"]} == {
        "node-a",
        "node-b",
        "node-c",
        "node-d",
    }


# -- a Prometheus answer larger than the server reads -------------------------------------------


@pytest.mark.parametrize(
    "caps, reason, limit",
    [({"max_series": 1000}, "series", 1000), ({"max_bytes": 100_000}, "bytes", 100_000)],
    ids=["series", "bytes"],
)
async def test_a_large_answer_is_read_up_to_the_cap_and_says_so(big_cluster, jp_fetch, panel, caps, reason, limit):
    """The real Prometheus holds 800 GPUs; capped below them, the view shows the GPUs in what was
    read, with state "truncated" and how much was read (the contract checks the document)."""
    from jupyter_gpu_panel.cluster.service import ClusterService

    prom, _ = big_cluster
    panel.cluster = ClusterService(prom.url, me="root", show_users=False, **caps)
    doc = json.loads((await jp_fetch("api", "gpu-panel", "cluster")).body)
    assert doc["state"] == "truncated", doc["message"]
    truncated = doc["truncated"]
    assert truncated["reason"] == reason and truncated["limit"] == limit
    setting = "cluster_max_series" if reason == "series" else "cluster_max_bytes"
    assert setting in doc["message"] and "lower bounds" in doc["message"]
    if reason == "series":
        assert truncated["series_read"] == 1000
    else:  # each series is a few hundred bytes
        assert 100 < truncated["series_read"] < 100_000 / 100
    assert 0 < doc["summary"]["gpus"] < 800
    assert sum(len(n["gpus"]) for n in doc["nodes"]) == doc["summary"]["gpus"]


async def test_the_whole_answer_is_not_truncated(big_cluster, jp_fetch, panel):
    from jupyter_gpu_panel.cluster.service import ClusterService

    prom, _ = big_cluster
    panel.cluster = ClusterService(prom.url, me="root", show_users=False)
    doc = json.loads((await jp_fetch("api", "gpu-panel", "cluster")).body)
    assert doc["state"] == "ok" and doc["truncated"] is None and doc["summary"]["gpus"] == 800
    assert panel.cluster_max_series == 50_000 and panel.cluster_max_bytes == 32 * 2**20  # the documented defaults


SERIES_200K = 200_000


@pytest.fixture(scope="module")
def answer_200k(big_cluster, tmp_path_factory):
    """Prometheus' own answer to the cluster query (the 800 recorded GPUs), its series repeated
    under new node names up to 200,000 (63 MB made GET cluster take 8.9 s and stall the loop
    1.24 s), served as a file by a separate process, so serving it costs the test's loop nothing."""
    from jupyter_gpu_panel.cluster import promql

    prom, _ = big_cluster
    url = f"{prom.url}api/v1/query?" + urllib.parse.urlencode({"query": promql.VALUES})
    with urllib.request.urlopen(url, timeout=30) as r:
        recorded = json.loads(r.read())
    series = recorded["data"]["result"]
    result = []
    for copy in range(-(-SERIES_200K // len(series))):
        for item in series:
            metric = dict(item["metric"], Hostname=f"{item['metric'].get('Hostname', 'n')}-{copy}")
            result.append({"metric": metric, "value": item["value"]})
    recorded["data"]["result"] = result[:SERIES_200K]
    root = tmp_path_factory.mktemp("answer")
    (root / "api" / "v1").mkdir(parents=True)
    (root / "api" / "v1" / "query").write_text(json.dumps(recorded, separators=(",", ":")))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    del recorded, result, series
    # building the answer made a million objects live long enough to reach the oldest generation:
    # collected now, or the next full collection (whoever triggers it) would be theirs to pay
    gc.collect()
    try:
        wait_until(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200, 30, "server")
        yield f"http://127.0.0.1:{port}", (root / "api" / "v1" / "query").stat().st_size
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def _get_cluster_watching_the_loop(url, headers):
    """GET cluster over a plain client (the contract check of a megabytes document would itself
    stall the loop) while a heartbeat measures the loop's longest stall."""
    from tornado.httpclient import AsyncHTTPClient

    loop = asyncio.get_running_loop()
    stop, worst = asyncio.Event(), [0.0]

    async def heartbeat():
        last = loop.time()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = loop.time()
            worst[0] = max(worst[0], now - last - 0.005)
            last = now

    beat = asyncio.ensure_future(heartbeat())
    start = time.monotonic()
    resp = await AsyncHTTPClient().fetch(url + "api/gpu-panel/cluster", headers=headers, request_timeout=120)
    took = time.monotonic() - start
    stop.set()
    await beat
    return resp, took, worst[0]


async def test_a_200k_series_answer_is_capped_without_stalling_the_loop(
    answer_200k, http_server_client, jp_auth_header, jp_base_url, jp_http_port, panel
):
    from jupyter_gpu_panel.cluster.service import ClusterService

    from contract import validate_schema

    url, size = answer_200k
    # the full collection the test server's start-up owes would fall on whatever runs first (0.2 s
    # over its 470,000 objects): paid here, so that what is measured is GET cluster's own
    gc.collect()
    stalls = []
    for _ in range(3):  # a 2-core machine shared with other work may preempt the loop once
        panel.cluster = ClusterService(url, me="root", show_users=False, timeout=60)
        server = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"  # http_server_client: it listens
        resp, took, stall = await _get_cluster_watching_the_loop(server, jp_auth_header)
        stalls.append(stall)
        if stall < 0.05:
            break
    doc = json.loads(resp.body)
    print(f"answer {size / 1e6:.0f} MB, {SERIES_200K} series: GET cluster {took:.2f} s, loop stalls {stalls} s")
    assert min(stalls) < 0.05, stalls
    assert doc["state"] == "truncated" and doc["truncated"] == {
        "reason": "series",
        "limit": 50_000,
        "series_read": 50_000,
    }
    assert 0 < doc["summary"]["gpus"] < SERIES_200K / 6
    validate_schema("Cluster", {**doc, "nodes": doc["nodes"][:3]})  # the contract, on a few nodes
