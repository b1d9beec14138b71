"""One verdict: the CLI (``leaks --json``), the kernel tracker and the API (``GET kernels``) give the
same leak verdict on every recorded trace — the CLI calls ``memory.verdict.verdict_from_records``,
the tracker ``verdict_from_trace`` on its followers' step windows, which give the same trace.

Each trace is served to a real server as a live probe's file (a script's probe: a sleeping
process stands for the training run), with the card size the CLI finds beside the trace as the
probe's limit, so all three see the same records and the same capacity.

NVML traces likewise (issue 18): the CLI judges each pid with ``memory.verdict.nvml_verdicts``
(the samples replayed through a fresh per-tick judge), the tracker each kernel with
``nvml_final_verdict`` (the per-tick judge the sampler feeds), and the exporter serves the
tracker's verdict. Each trace is played through the fake NVML (the NVML boundary) into a real
server's sampler, one tick per recorded sample at the recorded time, with each recorded pid
standing for a real kernel; the API's kernel rows and ``/metrics`` must say what the CLI says of
that pid, whether the final verdict is the whole series' or the per-tick judge's.
"""

import asyncio
import json
import shutil
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jupyter_gpu_panel.cli.leaks import PROC_FIELDS, STEP_FIELDS
from jupyter_gpu_panel.memory.follower import Probes
from jupyter_gpu_panel.memory.tick_growth import FORGET_SECONDS
from jupyter_gpu_panel.memory.traces import read_records, sibling_mem_total
from jupyter_gpu_panel.memory.verdict import MIN_NVML_SAMPLES, nvml_verdicts, verdict_from_records
from jupyter_gpu_panel.metrics import sampler as sampler_module
from jupyter_gpu_panel.metrics.history import History
from jupyter_gpu_panel.metrics.sources import nvml as nvml_module

from conftest import ROOT, TRACES

LEAKS = ROOT / "tests" / "data" / "leaks"
#: the shared H100 recordings, ours of other patterns, and the probe-written H200 recordings of
#: issue 12 (several optimizers an iteration, loops without one, the cap re-read, device free)
STEP_TRACES = (
    sorted(TRACES.glob("*/*.iters.jsonl"))
    + sorted((LEAKS / "h100-extra").glob("*.iters.jsonl"))
    + sorted((LEAKS / "h200-round2").glob("*.iters.jsonl"))
)
#: every NVML recording of the repository, the same folders as the steps traces
NVML_TRACES = (
    sorted(TRACES.glob("*/*.nvml.jsonl"))
    + sorted((LEAKS / "h100-extra").glob("*.nvml.jsonl"))
    + sorted((LEAKS / "h200-round2").glob("*.nvml.jsonl"))
)
#: fields beyond the CLI's contract that the panel shows: the tracker and the API must agree on them
PANEL_FIELDS = ("steps_per_iteration", "step_source", "headroom_bound", "level", "capacity", "current_step")
NVML_PANEL_FIELDS = ("level", "capacity", "headroom", "headroom_bound", "forecast", "message", "reason")
#: the sampler's own loop sleeps this long between ticks: the NVML test ticks it itself
HOUR = 3600.0


@pytest.fixture
def gpu_panel_config(request):
    if "fake" in request.fixturenames:  # the NVML test: the fake NVML, ticked by the test
        request.getfixturevalue("fake")
        return {
            "source": "nvml",
            "interval": HOUR,
            "history_seconds": HOUR * 1000,  # a ring of 1,000 ticks: the longest trace holds 380
            "kernel_refresh": HOUR,
            "triage_on_alarm": False,
        }
    return {"source": "replay", "interval": 0.1, "kernel_refresh": 60, "triage_on_alarm": False}


def cli_verdict(path, *args):
    out = subprocess.run(
        [sys.executable, "-m", "jupyter_gpu_panel", "leaks", str(path), *args, "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout)


def test_every_trace_is_found():
    assert len(STEP_TRACES) >= 35, STEP_TRACES


async def test_cli_tracker_and_api_agree_on_every_recorded_trace(jp_fetch, panel):
    d = panel.probes.dir
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"]) for _ in STEP_TRACES]
    try:
        by_pid = {}
        for proc, path in zip(procs, STEP_TRACES):
            limit = sibling_mem_total(path)
            (d / f"probe-{proc.pid}.json").write_text(
                json.dumps({"pid": proc.pid, "limit": limit, "started": time.time()})
            )
            shutil.copy(path, d / f"probe-{proc.pid}.iters.jsonl")
            by_pid[proc.pid] = path
        resp = await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})
        api = {s["pid"]: s["leak"] for s in json.loads(resp.body)["scripts"]}
        # the tracker's own followers, read as the tracker reads them
        followers = Probes(d)
        followers.poll()
        assert set(api) == set(by_pid)
        clis = await asyncio.gather(*(asyncio.to_thread(cli_verdict, p) for p in by_pid.values()))
        for (pid, path), cli in zip(by_pid.items(), clis):
            f = followers.followers[pid]
            tracker = f.judge()  # the follower's verdict, from its step window's columns
            assert tracker == verdict_from_records(read_records(path), default_capacity=f.meta["limit"])
            for key in STEP_FIELDS:
                assert api[pid][key] == tracker[key] == cli[key], f"{path.name}: {key}"
            for key in PANEL_FIELDS:
                assert api[pid][key] == tracker[key], f"{path.name}: {key}"
            if path.parent.name == "h200-round2":  # the probe's own records say how many
                assert tracker["steps_per_iteration"] is not None, path.name
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_every_nvml_trace_is_found():
    assert len(NVML_TRACES) >= 40, NVML_TRACES


def trace_pids(rows):
    return sorted({p["pid"] for r in rows for p in r.get("procs") or []})


def play(panel, fake, clock, rows, kernel_of):
    """One sampler tick per recorded sample, at its recorded time, into a fresh history: the fake
    NVML lists each recorded pid as its stand-in kernel's pid, and the card's use as recorded."""
    # the last trace's processes end: a tick without them, FORGET_SECONDS on, and the per-tick
    # judge forgets them (as a fresh server would start on this trace)
    fake.processes[0] = []
    clock.now += FORGET_SECONDS + 1
    panel.sampler.tick()
    panel.sampler.history = History(panel.sampler.history.history_seconds, panel.sampler.interval)
    for row in rows:
        procs = [(kernel_of[p["pid"]], p["used"]) for p in row["procs"] if p.get("used") is not None]
        fake.facts["mem_total"] = row["mem_total"]
        fake.facts["mem_used"] = row["mem_used"] - sum(used for _, used in procs)  # the card's own use
        fake.processes[0] = procs
        clock.now = row["t"]
        panel.sampler.tick()


async def start_kernel(jp_fetch, jp_serverapp, path):
    body = {"path": path, "type": "notebook", "name": path, "kernel": {"name": "python3"}}
    resp = await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))
    kid = json.loads(resp.body)["kernel"]["id"]
    return kid, jp_serverapp.kernel_manager.get_kernel(kid).provisioner.pid


async def scrape_leaks(jp_fetch):
    """``/metrics``' per-kernel leak series, by kernel id."""
    text = (await jp_fetch("metrics")).body.decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.startswith("jupyter_gpu_panel_kernel_") and "kernel_id" in s.labels:
                out.setdefault(s.labels["kernel_id"], {})[s.name.removeprefix("jupyter_gpu_panel_kernel_")] = s.value
    return out


def assert_same(cli, api, what):
    """Same state, same rate and forecast (to float rounding: the CLI's JSON round-trips them)."""
    for key in PROC_FIELDS[1:]:
        if isinstance(cli[key], float):
            assert api[key] == pytest.approx(cli[key], rel=1e-9), f"{what}: {key}"
        else:
            assert api[key] == cli[key], f"{what}: {key}"


async def test_cli_tracker_api_and_exporter_agree_on_every_nvml_trace(jp_fetch, jp_serverapp, panel, fake, monkeypatch):
    # the sampler and the NVML source read the recorded times (rates are per second of the trace)
    clock = SimpleNamespace(now=time.time(), monotonic=time.monotonic)
    clock.time = lambda: clock.now
    monkeypatch.setattr(sampler_module, "time", clock)
    monkeypatch.setattr(nvml_module, "time", clock)
    kernels = [await start_kernel(jp_fetch, jp_serverapp, f"k{n}.ipynb") for n in range(2)]
    clis = await asyncio.gather(*(asyncio.to_thread(cli_verdict, p) for p in NVML_TRACES))
    with_card = await asyncio.gather(  # --capacity: the card itself, an upper bound like the others
        *(asyncio.to_thread(cli_verdict, p, "--capacity", str(read_records(p)[0]["mem_total"])) for p in NVML_TRACES)
    )
    compared = per_tick = 0
    for path, cli, carded in zip(NVML_TRACES, clis, with_card):
        rows = read_records(path)
        pids = trace_pids(rows)
        assert len(pids) <= len(kernels), path.name
        kernel_of = {pid: kpid for pid, (_kid, kpid) in zip(pids, kernels)}
        play(panel, fake, clock, rows, kernel_of)
        doc = json.loads((await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})).body)
        api = {k["kernel_id"]: k["leak"] for k in doc["kernels"]}
        metrics = await scrape_leaks(jp_fetch)
        full = {p["pid"]: p for p in nvml_verdicts(rows)}
        by_pid = {p["pid"]: p for p in cli["processes"]}
        assert by_pid == {p["pid"]: p for p in carded["processes"]}, path.name
        for pid, (kid, _kpid) in zip(pids, kernels):
            what = f"{path.name} pid {pid}"
            samples = sum(1 for r in rows for q in r["procs"] if q["pid"] == pid)
            if pid not in {q["pid"] for q in rows[-1]["procs"]}:
                continue  # gone before the trace's end: the server judges live processes only
            if api[kid] is None:  # no verdict yet: too few samples, and no fast growth either
                assert samples < MIN_NVML_SAMPLES and not by_pid[pid]["leak"], what
                continue
            assert_same(by_pid[pid], api[kid], what)
            per_tick += api[kid]["reason"].startswith("per tick")
            for key in NVML_PANEL_FIELDS:
                assert api[kid][key] == full[pid][key], f"{what}: {key}"
            m = metrics[kid]
            assert m["leak_actionable"] == float(by_pid[pid]["actionable"]), what
            rate = by_pid[pid]["bytes_per_second"] if by_pid[pid]["leak"] else 0.0
            assert m["leak_bytes_per_second"] == pytest.approx(rate, rel=1e-9), what
            if by_pid[pid]["actionable"] and by_pid[pid]["seconds_to_oom"] is not None:
                assert m["seconds_to_oom"] == pytest.approx(by_pid[pid]["seconds_to_oom"], rel=1e-9), what
            compared += 1
    assert compared >= 40
    assert per_tick >= 5  # the per-tick judge's verdict was the final one on several traces
