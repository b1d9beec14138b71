"""A probe attaches only where it belongs (issue 17, part 3).

A probe file in the runtime directory is a claim written by code the user runs: it cannot make
another kernel's row say "leaking", speak for another user's process, pid 1, or a pid that
now names a newer process. A real server with real kernels; the fake NVML is the only fake.
Each refusal is said in ``probe_warnings``, and only listed scripts can be triaged by pid.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_gpu_panel.api.kernels import run_in_kernel
from jupyter_gpu_panel.kernels.probe_owner import ProcessFacts, decide

from conftest import TRACES
from needs import root

UID = os.getuid()
NOW = time.time()
KERNEL = "0c1d2e3f-0000-4000-8000-000000000002"


@pytest.fixture
def gpu_panel_config(fake):
    return {"source": "nvml", "interval": 0.1, "kernel_refresh": 0.2}


@pytest.fixture
def own_process():
    """A live process of ours that is no kernel's (a terminal's training script, say)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


async def start_session(jp_fetch, path):
    body = {"path": path, "type": "notebook", "name": path, "kernel": {"name": "python3"}}
    resp = await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))
    return json.loads(resp.body)["kernel"]["id"]


async def kernels(jp_fetch):
    return json.loads((await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})).body)


def write_probe(probe_dir, pid, kid, scenario="leak_hidden", started=None):
    """A probe's files as a probe writes them: a run that leaks 32 MiB a step."""
    probe_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    meta = {"pid": pid, "kernel_id": kid, "device": 0, "limit": 85520809984, "started": started or time.time()}
    (probe_dir / f"probe-{pid}.json").write_text(json.dumps(meta))
    shutil.copy(TRACES / "h100" / f"{scenario}.iters.jsonl", probe_dir / f"probe-{pid}.iters.jsonl")


async def triage_error(jp_fetch, pid):
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("api", "gpu-panel", "probes", str(pid), "triage", method="POST", body="{}")
    return err.value.code, json.loads(err.value.response.body)["message"]


def row(doc, kid):
    [k] = [k for k in doc["kernels"] if k["kernel_id"] == kid]
    return k


def refusal(doc, pid):
    said = [w for w in doc["probe_warnings"] if w.startswith(f"probe-{pid}.json refused: ")]
    assert said, doc["probe_warnings"]
    return said[0]


# -- the rule itself -------------------------------------------------------------------------


def meta(kernel_id=None, started=NOW):
    return {"pid": 4321, "kernel_id": kernel_id, "started": started}


MINE = ProcessFacts(uid=UID, create_time=NOW - 10)


@pytest.mark.parametrize(
    "pid, meta_doc, kernel_of_pid, facts, expected",
    [
        (4321, meta(), "K1", MINE, ("K1", None)),  # the kernel's process or a child: its kernel's
        (4321, meta("K1"), "K1", MINE, ("K1", None)),
        (4321, meta(), None, MINE, (None, None)),  # in no kernel: a script
        (4321, meta("K2"), None, MINE, (None, "it names kernel K2, but pid 4321 is not")),
        (4321, meta("K2"), "K1", MINE, (None, "it names kernel K2, but pid 4321 is not")),
        (1, meta(), None, MINE, (None, "pid 1 is the system's init process")),
        (4321, meta(), "K1", ProcessFacts(UID + 1, NOW - 10), (None, f"another user's process (uid {UID + 1})")),
        (4321, meta(), "K1", ProcessFacts(UID, NOW + 5), (None, "started after the probe's meta")),
        (4321, meta(), "K1", None, (None, "no process 4321 is running")),
    ],
)
def test_decide(pid, meta_doc, kernel_of_pid, facts, expected):
    answer = decide(pid, meta_doc, kernel_of_pid, facts, UID)
    kernel_id, reason = expected
    assert answer.kernel_id == kernel_id
    if reason is None:
        assert answer.refused is None
    else:
        assert answer.refused is not None and reason in answer.refused


# -- on a real server ------------------------------------------------------------------------


async def test_a_meta_naming_a_kernel_its_process_is_not_part_of_is_refused(jp_fetch, panel, fake, own_process):
    k1 = await start_session(jp_fetch, "one.ipynb")
    k2 = await start_session(jp_fetch, "two.ipynb")
    write_probe(panel.probes.dir, own_process.pid, k2)
    doc = await kernels(jp_fetch)
    assert row(doc, k2)["probe"] is None and row(doc, k2)["leak"] is None  # not "Leaking 32 MiB a step"
    assert row(doc, k1)["probe"] is None
    assert doc["scripts"] == []  # refused: not a script either
    assert f"it names kernel {k2}, but pid {own_process.pid} is not" in refusal(doc, own_process.pid)
    code, message = await triage_error(jp_fetch, own_process.pid)
    assert code == 404 and "refused" in message
    assert not (panel.probes.dir / f"probe-{own_process.pid}.triage-request").exists()


async def test_pid_1_is_never_a_probe(jp_fetch, panel, fake):
    await start_session(jp_fetch, "k.ipynb")
    write_probe(panel.probes.dir, 1, None)
    doc = await kernels(jp_fetch)
    assert doc["scripts"] == [] and all(k["probe"] is None for k in doc["kernels"])
    assert "pid 1 is the system's init process" in refusal(doc, 1)
    code, message = await triage_error(jp_fetch, 1)
    assert code == 404 and "init process" in message
    assert not (panel.probes.dir / "probe-1.triage-request").exists()


@pytest.fixture
def other_users_process():
    """A live process of another user (``nobody``, which every Linux has: no user is created)."""
    root("runs a process as the user nobody")
    proc = subprocess.Popen(["/bin/sleep", "120"], user="nobody", cwd="/")
    yield proc
    proc.kill()
    proc.wait()


async def test_another_users_process_is_never_a_probe(jp_fetch, panel, fake, other_users_process):
    pid = other_users_process.pid
    k2 = await start_session(jp_fetch, "two.ipynb")
    write_probe(panel.probes.dir, pid, k2)
    doc = await kernels(jp_fetch)
    assert row(doc, k2)["probe"] is None and row(doc, k2)["leak"] is None
    assert doc["scripts"] == []
    assert f"pid {pid} is another user's process" in refusal(doc, pid)
    code, _ = await triage_error(jp_fetch, pid)
    assert code == 404


async def test_a_pid_whose_process_started_after_the_meta_is_refused(jp_fetch, panel, fake, own_process):
    """The meta was written an hour ago by a process that has ended; its pid now names another."""
    k2 = await start_session(jp_fetch, "two.ipynb")
    write_probe(panel.probes.dir, own_process.pid, None, started=time.time() - 3600)
    doc = await kernels(jp_fetch)
    assert doc["scripts"] == [] and row(doc, k2)["probe"] is None
    assert "started after the probe's meta was written (a reused pid)" in refusal(doc, own_process.pid)
    code, _ = await triage_error(jp_fetch, own_process.pid)
    assert code == 404


async def test_a_process_the_kernel_started_attaches_to_that_kernel(jp_fetch, jp_serverapp, panel, fake):
    """A subprocess of the notebook (a ``!python train.py``, a torchrun rank) is the kernel's,
    whether or not its meta knows the kernel's id; not a script, and triaged through the kernel."""
    kid = await start_session(jp_fetch, "parent.ipynb")
    other = await start_session(jp_fetch, "other.ipynb")
    code = (
        "import subprocess, sys\n"
        "children = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']) for _ in range(2)]\n"
        "print(*[c.pid for c in children])"
    )
    done, output = await run_in_kernel(jp_serverapp.kernel_manager, kid, code, timeout=30)
    assert done, output
    plain, named = (int(p) for p in output.split())
    try:
        write_probe(panel.probes.dir, plain, None)  # its meta names no kernel
        write_probe(panel.probes.dir, named, kid, scenario="healthy_plateau")
        doc = await kernels(jp_fetch)
        k = row(doc, kid)
        assert k["probe"] is not None and k["probe"]["pid"] in (plain, named)
        assert k["leak"]["source"] == "steps"
        assert row(doc, other)["probe"] is None
        assert doc["scripts"] == []
        assert not [w for w in doc["probe_warnings"] if "refused" in w]
        status, message = await triage_error(jp_fetch, plain)  # a kernel's probe, not a script's
        assert status == 409 and kid in message
        resp = await jp_fetch("api", "gpu-panel", "kernels", kid, "triage", method="POST", body="{}")
        assert resp.code == 202
    finally:
        for pid in (plain, named):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        await asyncio.sleep(0)
