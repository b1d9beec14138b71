"""One verdict on the issue-12 recordings too (``tests/data/leaks/h200-round2``): records the
probe itself wrote (iterations of several optimizers, loops without an optimizer, the cap
re-read, the device's free memory). The CLI, the kernel tracker and ``GET kernels`` agree, on
the contract's fields and on the new ones (``steps_per_iteration``, ``step_source``,
``headroom_bound``), as ``tests/test_verdicts_agree.py`` checks on the earlier recordings.
"""

import asyncio
import json
import shutil
import subprocess
import sys
import time

import pytest
from test_verdicts_agree import cli_verdict

from jupyter_gpu_panel.cli.leaks import STEP_FIELDS
from jupyter_gpu_panel.memory.follower import Probes
from jupyter_gpu_panel.memory.traces import sibling_mem_total
from jupyter_gpu_panel.memory.verdict import verdict_from_records

from conftest import ROOT

ROUND2 = sorted((ROOT / "tests" / "data" / "leaks" / "h200-round2").glob("*.iters.jsonl"))
NEW_FIELDS = ("steps_per_iteration", "step_source", "headroom_bound", "level", "capacity", "current_step")


@pytest.fixture
def gpu_panel_config():
    return {"source": "replay", "interval": 0.1, "kernel_refresh": 60, "triage_on_alarm": False}


def test_round2_recordings_are_found():
    assert len(ROUND2) >= 15, ROUND2


async def test_cli_tracker_and_api_agree_on_the_round2_recordings(jp_fetch, panel):
    d = panel.probes.dir
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"]) for _ in ROUND2]
    try:
        by_pid = {}
        for proc, path in zip(procs, ROUND2):
            limit = sibling_mem_total(path)
            (d / f"probe-{proc.pid}.json").write_text(
                json.dumps({"pid": proc.pid, "limit": limit, "started": time.time()})
            )
            shutil.copy(path, d / f"probe-{proc.pid}.iters.jsonl")
            by_pid[proc.pid] = path
        resp = await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})
        api = {s["pid"]: s["leak"] for s in json.loads(resp.body)["scripts"]}
        followers = Probes(d)
        followers.poll()
        assert set(api) == set(by_pid)
        clis = await asyncio.gather(*(asyncio.to_thread(cli_verdict, p) for p in by_pid.values()))
        for (pid, path), cli in zip(by_pid.items(), clis):
            f = followers.followers[pid]
            tracker = verdict_from_records(f.steps, default_capacity=f.meta["limit"])
            for key in STEP_FIELDS:
                assert api[pid][key] == tracker[key] == cli[key], f"{path.name}: {key}"
            for key in NEW_FIELDS:
                assert api[pid][key] == tracker[key], f"{path.name}: {key}"
            assert tracker["steps_per_iteration"] is not None, path.name  # the probe's records say
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
