"""One verdict: the CLI (``leaks --json``), the kernel tracker and the API (``GET kernels``) give the
same leak verdict on every recorded trace — the CLI calls ``memory.verdict.verdict_from_records``,
the tracker ``verdict_from_trace`` on its followers' step windows, which give the same trace.

Each trace is served to a real server as a live probe's file (a script's probe: a sleeping
process stands for the training run), with the card size the CLI finds beside the trace as the
probe's limit, so all three see the same records and the same capacity.
"""

import asyncio
import json
import shutil
import subprocess
import sys
import time

import pytest

from jupyter_gpu_panel.cli.leaks import STEP_FIELDS
from jupyter_gpu_panel.memory.follower import Probes
from jupyter_gpu_panel.memory.traces import read_records, sibling_mem_total
from jupyter_gpu_panel.memory.verdict import verdict_from_records

from conftest import ROOT, TRACES

LEAKS = ROOT / "tests" / "data" / "leaks"
#: the shared H100 recordings, ours of other patterns, and the probe-written H200 recordings of
#: issue 12 (several optimizers an iteration, loops without one, the cap re-read, device free)
STEP_TRACES = (
    sorted(TRACES.glob("*/*.iters.jsonl"))
    + sorted((LEAKS / "h100-extra").glob("*.iters.jsonl"))
    + sorted((LEAKS / "h200-round2").glob("*.iters.jsonl"))
)
#: fields beyond the CLI's contract that the panel shows: the tracker and the API must agree on them
PANEL_FIELDS = ("steps_per_iteration", "step_source", "headroom_bound", "level", "capacity", "current_step")


@pytest.fixture
def gpu_panel_config():
    return {"source": "replay", "interval": 0.1, "kernel_refresh": 60, "triage_on_alarm": False}


def cli_verdict(path):
    out = subprocess.run(
        [sys.executable, "-m", "jupyter_gpu_panel", "leaks", str(path), "--json"],
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
