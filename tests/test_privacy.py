"""Privacy on a shared machine: another user's GPU process shows pid, user and memory, never its
command line (unless the server allows it), and ``show_all_users=False`` hides it from snapshot,
stream and history alike.

The other user is real: the test creates a system user (CI runs as root; elsewhere the module
skips with that reason), runs a process as that user and removes the user at the end; the fake NVML (the hardware
boundary) lists its real pid as a GPU process.
"""

import asyncio
import json
import subprocess
import sys

import pytest

import needs
from fake_nvml import FakeNVML

OTHER = "gpupanel-bob"
GiB = 2**30
SECRET = "--db-password=hunter2"
OWN_FLAG = "--api-key=mine-to-see"


@pytest.fixture(scope="module")
def other_user():
    needs.root("this test runs a process as another, real user it creates")
    users = needs.SystemUsers()
    try:
        users.ensure(OTHER)
        yield OTHER
    finally:
        left = users.remove_all()
        assert not left, f"test user left behind: {left}"


@pytest.fixture
def processes(other_user):
    # a shell that outlives its sleep keeps the secret in its own command line (the venv's python
    # may sit under /root, which the other user cannot execute)
    def job(flag, **kw):
        return subprocess.Popen(["/bin/sh", "-c", "sleep 120; :", "train-job", flag], cwd="/", **kw)

    theirs = job(SECRET, user=other_user)
    mine = job(OWN_FLAG)
    yield mine.pid, theirs.pid
    for p in (mine, theirs):
        p.kill()
        p.wait()


@pytest.fixture
def fake(monkeypatch, processes):
    fake = FakeNVML()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    mine, theirs = processes
    fake.processes[0] = [(mine, 2 * GiB), (theirs, 5 * GiB)]
    return fake


@pytest.fixture
def privacy():
    return {}


@pytest.fixture
def gpu_panel_config(fake, privacy):
    return {"source": "nvml", "interval": 0.1, **privacy}


async def settle(panel, processes):
    """Until the sampler has seen (and described) both processes."""
    for _ in range(100):
        snap = panel.sampler.snapshot()
        seen = {p.pid: p for g in (snap.gpus if snap else []) for p in g.processes}
        if all(pid in seen and seen[pid].user for pid in processes):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the sampler never saw both processes")


async def views(jp_fetch, jp_ws_fetch):
    """What a client gets of the GPU processes from snapshot, stream and history."""
    snap = json.loads((await jp_fetch("api", "gpu-panel", "snapshot")).body)
    ws = await jp_ws_fetch("api", "gpu-panel", "stream")
    try:
        while True:
            msg = json.loads(await asyncio.wait_for(ws.read_message(), 5))
            if msg["type"] == "snapshot":
                break
    finally:
        ws.close()
    hist = json.loads((await jp_fetch("api", "gpu-panel", "history")).body)
    procs = {p["pid"]: p for p in snap["gpus"][0]["processes"]}
    streamed = {p["pid"]: p for p in msg["snapshot"]["gpus"][0]["processes"]}
    return procs, streamed, {p["pid"] for p in hist["processes"]}


async def test_by_default_others_show_pid_user_memory_but_no_command(jp_fetch, jp_ws_fetch, panel, processes):
    mine, theirs = processes
    await settle(panel, processes)
    procs, streamed, history_pids = await views(jp_fetch, jp_ws_fetch)
    for view in (procs, streamed):
        assert view[theirs]["user"] == OTHER and view[theirs]["used"] == 5 * GiB
        assert view[theirs]["command"] is None and view[theirs]["name"] is None
        assert OWN_FLAG in view[mine]["command"]  # one's own processes keep theirs
    assert SECRET not in json.dumps(procs) + json.dumps(streamed)
    assert {mine, theirs} <= history_pids


@pytest.mark.parametrize("privacy", [{"show_all_users": False}])
async def test_show_all_users_false_hides_others_everywhere(jp_fetch, jp_ws_fetch, panel, processes, privacy):
    mine, theirs = processes
    await settle(panel, processes)
    procs, streamed, history_pids = await views(jp_fetch, jp_ws_fetch)
    assert mine in procs and theirs not in procs
    assert mine in streamed and theirs not in streamed
    assert mine in history_pids and theirs not in history_pids


@pytest.mark.parametrize("privacy", [{"show_other_users_commands": True}])
async def test_an_admin_may_show_other_users_commands(jp_fetch, jp_ws_fetch, panel, processes, privacy):
    mine, theirs = processes
    await settle(panel, processes)
    procs, streamed, _ = await views(jp_fetch, jp_ws_fetch)
    assert SECRET in procs[theirs]["command"] and SECRET in streamed[theirs]["command"]
