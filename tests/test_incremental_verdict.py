"""The incremental kernel view (issue 17): a probe's files are read from where the last read
stopped, each record validated once, and its verdict made from its step window's columns —
the same verdict as ``verdict_from_records`` on all the records, however they arrived.

Every recorded trace is appended to a live probe file in random chunks (cut mid-line too) and
followed as the server follows it; the follower's verdict is compared with the full one at
chunk boundaries and at the end.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest

from jupyter_gpu_panel.memory import follower as follower_module
from jupyter_gpu_panel.memory.follower import ProbeFollower
from jupyter_gpu_panel.memory.probe_state import StepWindow
from jupyter_gpu_panel.memory.records import valid_step
from jupyter_gpu_panel.memory.traces import read_records, sibling_mem_total
from jupyter_gpu_panel.memory.verdict import verdict_from_records, verdict_from_trace

from conftest import ROOT, TRACES

LEAKS = ROOT / "tests" / "data" / "leaks"
#: the same recordings tests/test_verdicts_agree.py and tests/test_leaks_traces.py judge
STEP_TRACES = (
    sorted(TRACES.glob("*/*.iters.jsonl"))
    + sorted((LEAKS / "h100-extra").glob("*.iters.jsonl"))
    + sorted((LEAKS / "h200-round2").glob("*.iters.jsonl"))
)


def same(a: Optional[dict[str, Any]], b: Optional[dict[str, Any]]) -> bool:
    """Equal verdicts, NaN included (``==`` on dicts says NaN != NaN)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def new_probe(d: Path, limit: Optional[float]) -> ProbeFollower:
    pid = os.getpid()  # the follower reads files; whose process it is is the tracker's concern
    (d / f"probe-{pid}.json").write_text(json.dumps({"pid": pid, "limit": limit, "started": time.time()}))
    (d / f"probe-{pid}.iters.jsonl").write_bytes(b"")
    return ProbeFollower(d / f"probe-{pid}.json", pid)


def test_every_trace_is_found():
    assert len(STEP_TRACES) >= 35, STEP_TRACES


@pytest.mark.parametrize("path", STEP_TRACES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_appended_in_random_chunks_the_verdict_is_the_full_one(tmp_path, path):
    rng = random.Random(path.name)  # a different, reproducible cut for every trace
    data = path.read_bytes()
    limit = sibling_mem_total(path)
    probe = new_probe(tmp_path, limit)
    iters = tmp_path / f"probe-{probe.pid}.iters.jsonl"
    at, checks = 0, 0
    with iters.open("ab") as fh:
        while at < len(data):
            size = rng.choice([1, 37, 200, 1500, 20_000, 200_000])  # a torn line, a line, many lines
            fh.write(data[at : at + size])
            fh.flush()
            at += size
            probe.poll()
            if at >= len(data) or rng.random() < 0.15:
                done = data[: min(at, len(data))]
                complete = done[: done.rfind(b"\n") + 1]  # the follower holds a torn last line back
                full = verdict_from_records(
                    [json.loads(line) for line in complete.splitlines() if line.strip()], default_capacity=limit
                )
                assert same(probe.judge(), full), f"{path.name} after {len(complete)} bytes"
                checks += 1
    probe.poll()
    assert not probe.stale
    assert same(probe.leak, verdict_from_records(read_records(path), default_capacity=limit))
    assert checks >= 1


def test_the_window_slides_as_the_full_verdict_on_its_records():
    """Past ``window`` steps the verdict is the full one on the newest ``window`` records."""
    rng = random.Random(17)
    for path in STEP_TRACES[::3]:
        recs = [r for r in map(valid_step, read_records(path)) if r is not None and not r.get("oom")]
        window = rng.choice([5, 64, 333, 1000])
        steps = StepWindow(window)
        at = 0
        while at < len(recs):
            chunk = recs[at : at + rng.choice([1, 3, 50, 700])]
            steps.extend(chunk)
            at += len(chunk)
            kept = recs[max(0, at - window) : at]
            assert [r["i"] for r in steps] == [r["i"] for r in kept]
            if rng.random() < 0.2 or at == len(recs):
                assert same(verdict_from_trace(steps.trace()), verdict_from_records(kept)), (path.name, at)


def test_the_chart_is_the_window_thinned():
    recs = [r for r in map(valid_step, read_records(TRACES / "h100" / "leak_hidden.iters.jsonl")) if r]
    for k, rec in enumerate(recs):
        if k % 7 == 0:
            rec.pop("reserved", None)  # a record without it: null in the chart
    steps = StepWindow(250)
    steps.extend(recs)
    kept = recs[-250:]
    picked = kept[::5] + [kept[-1]]  # stride ceil(250 / 60) = 5, and the newest always
    assert steps.series(60) == {
        "step": [r["i"] for r in picked],
        "allocated": [r["allocated"] for r in picked],
        "reserved": [r.get("reserved") for r in picked],
    }
    assert steps.last == recs[-1]


def test_each_record_is_validated_once(tmp_path, monkeypatch):
    calls = []

    def counting(rec: Any) -> Any:
        calls.append(1)
        return valid_step(rec)

    monkeypatch.setattr(follower_module, "valid_step", counting)
    path = TRACES / "h100" / "leak_hidden.iters.jsonl"
    probe = new_probe(tmp_path, sibling_mem_total(path))
    lines = path.read_bytes().splitlines(keepends=True)
    iters = tmp_path / f"probe-{probe.pid}.iters.jsonl"
    with iters.open("ab") as fh:
        for start in range(0, len(lines), 100):
            fh.writelines(lines[start : start + 100])
            fh.flush()
            probe.poll()
            probe.judge()
            probe.summary()
    assert len(calls) == len(lines)


def test_an_unchanged_probe_reads_and_judges_nothing(tmp_path):
    path = TRACES / "h100" / "leak_hidden.iters.jsonl"
    probe = new_probe(tmp_path, sibling_mem_total(path))
    (tmp_path / f"probe-{probe.pid}.iters.jsonl").write_bytes(path.read_bytes())
    assert probe.poll() == len(read_records(path))
    assert probe.stale
    probe.judge()
    for _ in range(3):
        assert probe.poll() == 0
        assert not probe.stale


@pytest.fixture
def gpu_panel_config():
    return {"source": "replay", "interval": 0.1, "kernel_refresh": 60, "triage_on_alarm": False}


async def test_a_refresh_costs_what_changed(jp_fetch, panel, monkeypatch):
    """Through the server: a probe whose files did not change keeps its verdict and its part of
    the document (not re-judged, not rebuilt); one that grew is re-judged; and with no time
    left for re-judging, never-judged probes still get their verdict."""
    d = panel.probes.dir
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]) for _ in range(3)]
    judged: list[int] = []
    real_judge = ProbeFollower.judge

    def counting_judge(self: ProbeFollower) -> Any:
        judged.append(self.pid)
        return real_judge(self)

    monkeypatch.setattr(ProbeFollower, "judge", counting_judge)
    trace = (TRACES / "h100" / "leak_hidden.iters.jsonl").read_bytes().splitlines(keepends=True)
    try:
        for proc in procs:
            (d / f"probe-{proc.pid}.json").write_text(json.dumps({"pid": proc.pid, "started": time.time()}))
            (d / f"probe-{proc.pid}.iters.jsonl").write_bytes(b"".join(trace[:300]))

        async def scripts() -> dict[int, Any]:
            resp = await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})
            return {s["pid"]: s for s in json.loads(resp.body)["scripts"]}

        first = await scripts()
        assert set(first) == {p.pid for p in procs}
        assert sorted(judged) == sorted(p.pid for p in procs)
        views = {f.pid: f.view for f in panel.probes.followers.values()}
        judged.clear()
        again = await scripts()
        assert judged == [] and again == first
        assert all(panel.probes.followers[pid].view is views[pid] for pid in views), "rebuilt an unchanged probe"

        grower = procs[0].pid
        with (d / f"probe-{grower}.iters.jsonl").open("ab") as fh:
            fh.writelines(trace[300:])
        after = await scripts()
        assert judged == [grower]
        assert after[grower]["probe"]["steps"] == len(trace)
        assert after[grower]["leak"]["current_step"] > first[grower]["leak"]["current_step"]
        assert all(after[p.pid] == first[p.pid] for p in procs[1:])

        # no time to re-judge: a grown probe keeps its last verdict, a new one is judged anyway
        monkeypatch.setattr(panel.tracker, "judge_budget", 0.0)
        judged.clear()
        with (d / f"probe-{procs[1].pid}.iters.jsonl").open("ab") as fh:
            fh.writelines(trace[300:])
        with (d / f"probe-{procs[2].pid}.iters.jsonl").open("ab") as fh:
            fh.writelines(trace[300:])
        newcomer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        procs.append(newcomer)
        (d / f"probe-{newcomer.pid}.json").write_text(json.dumps({"pid": newcomer.pid, "started": time.time()}))
        (d / f"probe-{newcomer.pid}.iters.jsonl").write_bytes(b"".join(trace))
        late = await scripts()
        assert newcomer.pid in judged and late[newcomer.pid]["leak"] is not None
        assert len(judged) == 2, "the newcomer always, and one stale probe (the stalest)"
        stalest = judged[0] if judged[0] != newcomer.pid else judged[1]
        assert stalest in (procs[1].pid, procs[2].pid)
        assert late[stalest]["probe"]["steps"] == len(trace)
        waiting = procs[2].pid if stalest == procs[1].pid else procs[1].pid
        assert late[waiting]["probe"]["steps"] == len(trace), "its readings are shown at once ..."
        assert late[waiting]["leak"] == first[waiting]["leak"], "... its verdict on a later refresh"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
