"""What the kernel view keeps between refreshes, and when it must not (issue 17, part 1).

- A probe's ownership is decided once per process: a refresh re-decides it only when the pid
  names another process (a reused pid), its meta changed or the kernels did. The reuse is made
  for real: the pid of an ended process is handed to a new one through ``ns_last_pid``.
- ``GET kernels?refresh=1`` while a view is being made waits for that view, and requests that
  waited together share the next one (when that one read the files before they asked); the
  running view stops re-judging meanwhile, so they do not wait on it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_gpu_panel.kernels.attribution import KernelRef, attribute
from jupyter_gpu_panel.kernels.probe_owner import ProbeOwners
from jupyter_gpu_panel.kernels.tracker import KernelTracker
from jupyter_gpu_panel.memory.follower import ProbeFollower, Probes

from conftest import TRACES
from needs import root

TRACE = TRACES / "h100" / "leak_hidden.iters.jsonl"
SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]
NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")


def write_probe(probe_dir: Path, pid: int, started: float, lines: int = 300) -> None:
    probe_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (probe_dir / f"probe-{pid}.json").write_text(json.dumps({"pid": pid, "started": started}))
    (probe_dir / f"probe-{pid}.iters.jsonl").write_bytes(b"".join(TRACE.read_bytes().splitlines(True)[:lines]))


def spawn_at(pid: int, tries: int = 50) -> subprocess.Popen[bytes]:
    """A new process of ours at ``pid`` (free now): the kernel hands out ``ns_last_pid + 1``
    next; another process forking in between takes it, so try again."""
    for _ in range(tries):
        NS_LAST_PID.write_text(str(pid - 1))
        proc = subprocess.Popen(SLEEP)
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    pytest.skip(f"pid {pid} kept being taken by other processes forking on this machine")


def test_a_pid_reused_by_a_new_process_is_decided_again(tmp_path):
    """A kernel's child probe is the kernel's; the decision is kept while that process runs (no
    psutil read, no walk), and made again when its pid names a process the test started."""
    root("hands a chosen pid to a new process (writes /proc/sys/kernel/ns_last_pid)")
    if not os.access(NS_LAST_PID, os.W_OK):
        pytest.skip("/proc/sys/kernel/ns_last_pid is not writable here")
    # the "kernel": a process whose child runs the probe, and which reaps it when it ends
    kernel = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time\n"
         f"p = subprocess.Popen({SLEEP!r}); print(p.pid, flush=True); p.wait(); time.sleep(120)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    reused = None
    try:
        child = int(kernel.stdout.readline())
        probes = Probes(tmp_path / "gpu-panel")
        # a meta whose start time is later than any process here: the new process at the pid
        # passes the liveness check, so only the ownership decision can tell it apart
        write_probe(probes.dir, child, started=time.time() + 3600)
        by_pid = {kernel.pid: KernelRef("K")}

        def kernels_of(pids: list[int], parent_of: Any) -> dict[int, Any]:
            return {pid: owner.get("kernel_id") for pid, owner in attribute(pids, by_pid, parent_of).items()}

        owners = ProbeOwners(kernels_of, lambda: frozenset(by_pid))
        probes.poll()
        owners.assign(probes)
        assert probes.owners == {child: "K"} and owners.decided_now == [child]
        reads = probes.processes.facts_read
        for _ in range(3):
            probes.poll()
            owners.assign(probes)
            assert probes.owners == {child: "K"}
        assert owners.decided_now == [] and probes.processes.facts_read == reads, "a known process read again"

        os.kill(child, 9)
        for _ in range(100):  # the kernel reaps it: the pid is free
            if not os.path.exists(f"/proc/{child}"):
                break
            time.sleep(0.05)
        reused = spawn_at(child)
        probes.poll()
        assert child in probes.followers, "the new process passes the liveness check (meta started later)"
        owners.assign(probes)
        assert owners.decided_now == [child]
        assert probes.owners == {child: None}, "the new process is the test's, not the kernel's: a script"
    finally:
        for proc in (kernel, reused):
            if proc is not None:
                proc.kill()
                proc.wait()


def test_a_new_kernel_set_decides_every_probe_again(tmp_path):
    """The decisions hold for one set of kernels: a kernel starting or ending re-decides all."""
    proc = subprocess.Popen(SLEEP)
    try:
        probes = Probes(tmp_path / "gpu-panel")
        write_probe(probes.dir, proc.pid, started=time.time() + 60)
        kernels = {"set": frozenset()}
        owners = ProbeOwners(lambda pids, parent_of: dict.fromkeys(pids), lambda: kernels["set"])
        probes.poll()
        owners.assign(probes)
        probes.poll()
        owners.assign(probes)
        assert owners.decided_now == []
        kernels["set"] = frozenset({("K", 1234)})
        probes.poll()
        owners.assign(probes)
        assert owners.decided_now == [proc.pid]
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def gpu_panel_config():
    return {"source": "replay", "interval": 0.1, "kernel_refresh": 60, "triage_on_alarm": False}


async def test_requests_during_a_refresh_share_one_view_and_it_stops_rejudging(jp_fetch, panel, monkeypatch):
    """Three probes with new steps and a refresh with seconds of re-judging budget running, a
    new probe written after it read the files: two requests arriving meanwhile make one view
    between them, which lists the new probe ("refresh now" holds), and the running refresh
    stops re-judging while they wait (one stale probe judged by each view, not three by the first)."""
    d = panel.probes.dir
    procs = [subprocess.Popen(SLEEP) for _ in range(4)]
    try:
        for proc in procs[:3]:
            write_probe(d, proc.pid, started=time.time())
        first = json.loads((await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})).body)
        assert len(first["scripts"]) == 3
        lines = TRACE.read_bytes().splitlines(True)
        for proc in procs[:3]:
            with (d / f"probe-{proc.pid}.iters.jsonl").open("ab") as fh:
                fh.writelines(lines[300:])

        judged: list[int] = []
        builds: list[float] = []
        real_judge, real_build = ProbeFollower.judge, KernelTracker._build_encoded

        def slow_judge(self: ProbeFollower) -> Any:
            judged.append(self.pid)
            if len(judged) == 1:
                time.sleep(0.5)  # a judgement of a long run, on the probe thread
            return real_judge(self)

        def counting_build(self: KernelTracker, *args: Any) -> Any:
            builds.append(time.monotonic())
            return real_build(self, *args)

        monkeypatch.setattr(ProbeFollower, "judge", slow_judge)
        monkeypatch.setattr(KernelTracker, "_build_encoded", counting_build)
        periodic = asyncio.ensure_future(panel.tracker.refresh(10.0))  # budget enough for all three
        for _ in range(100):  # until it has read the files and is judging
            if judged:
                break
            await asyncio.sleep(0.01)
        write_probe(d, procs[3].pid, started=time.time())  # after that read
        answers = await asyncio.gather(
            *(jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"}) for _ in range(2))
        )
        await periodic
        assert len(builds) == 2, "the requests shared one view after the running one"
        # the running view: one stale probe, then no more while requests wait; theirs: the new
        # probe (never judged: always) and one stale probe. Not re-judging stops nothing: 1 + 3.
        assert len(judged) == 3 and procs[3].pid in judged[1:], f"judged {judged} while requests waited"
        docs = [json.loads(a.body) for a in answers]
        assert docs[0] == docs[1]
        steps = {s["pid"]: s["probe"]["steps"] for s in docs[0]["scripts"]}
        assert set(steps) == {p.pid for p in procs}, "the probe written before the requests is listed"
        assert all(steps[p.pid] == len(lines) for p in procs[:3]), "the new steps are shown at once"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
