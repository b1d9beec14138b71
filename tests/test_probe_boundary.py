"""The probe boundary: nothing a user (or code they run) leaves in the runtime directory may hang,
blank or poison the kernel view. A real server on the replay source; the probes are scripts
(live processes that are no kernel), so every case reaches ``GET kernels`` -> ``scripts``.
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

from jupyter_gpu_panel.memory.follower import LineFollower, Probes
from jupyter_gpu_panel.probe.protocol import MAX_LINE_BYTES

import needs
from conftest import TRACES

REFRESH_LIMIT = 8.0  # seconds a refresh may take here; a hang fails the test instead of CI


@pytest.fixture
def gpu_panel_config():
    return {"source": "replay", "interval": 0.1, "kernel_refresh": 0.3}


@pytest.fixture
def live_pids():
    """Live processes that stand for probed training scripts."""
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]) for _ in range(3)]
    yield [p.pid for p in procs]
    for p in procs:
        p.kill()
        p.wait()


def _no_constant(name):
    raise AssertionError(f"{name} literal in a response: browsers reject it")


async def kernels(jp_fetch):
    resp = await asyncio.wait_for(
        jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"}), timeout=REFRESH_LIMIT
    )
    return json.loads(resp.body, parse_constant=_no_constant)  # strict JSON: no NaN / Infinity


def probe_dir(panel):
    d = panel.probes.dir
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    return d


def write_meta(d, pid, **extra):
    doc = {"pid": pid, "kernel_id": None, "device": 0, "limit": 85520809984, "started": time.time(), **extra}
    (d / f"probe-{pid}.json").write_text(json.dumps(doc))


def write_good_probe(d, pid, scenario="leak_hidden"):
    write_meta(d, pid)
    shutil.copy(TRACES / "h100" / f"{scenario}.iters.jsonl", d / f"probe-{pid}.iters.jsonl")


def scripts_by_pid(doc):
    return {s["pid"]: s for s in doc["scripts"]}


async def test_a_fifo_named_like_a_probe_file_hangs_nothing(jp_fetch, panel, live_pids):
    d = probe_dir(panel)
    fifo_meta, fifo_iters, good = live_pids
    os.mkfifo(d / f"probe-{fifo_meta}.json")
    write_meta(d, fifo_iters)
    os.mkfifo(d / f"probe-{fifo_iters}.iters.jsonl")
    write_good_probe(d, good)
    for _ in range(2):  # and every later refresh
        doc = await kernels(jp_fetch)
        assert scripts_by_pid(doc)[good]["leak"]["actionable"]
        assert fifo_meta not in scripts_by_pid(doc)
        assert any(f"probe-{fifo_meta}.json" in w and "not a regular file" in w for w in doc["probe_warnings"])
    # the actions that read probe files answer too
    resp = await asyncio.wait_for(
        jp_fetch("api", "gpu-panel", "probes", str(good), "triage", method="POST", body="{}"), timeout=REFRESH_LIMIT
    )
    assert resp.code == 202
    with pytest.raises(HTTPClientError) as err:
        await asyncio.wait_for(
            jp_fetch("api", "gpu-panel", "probes", str(fifo_meta), "triage", method="POST", body="{}"),
            timeout=REFRESH_LIMIT,
        )
    assert err.value.code == 404


@pytest.mark.parametrize(
    "meta",
    [
        {"pid": -5},
        [],
        {"started": "abc"},
        {"argv": 5},
        {"kernel_id": "../../etc"},
        "not json at all",
        {"started": 1e400},
    ],
    ids=["negative-pid", "list", "started-string", "argv-int", "kernel-id-path", "not-json", "started-inf"],
)
async def test_a_malformed_meta_file_is_refused_and_the_others_still_served(jp_fetch, panel, live_pids, meta):
    d = probe_dir(panel)
    bad, good = live_pids[:2]
    if isinstance(meta, dict):
        doc = {"pid": bad, "started": time.time(), **meta}
        if meta.get("pid") == -5:
            doc["pid"] = -5
        text = json.dumps(doc)
    else:
        text = meta if isinstance(meta, str) else json.dumps(meta)
    (d / f"probe-{bad}.json").write_text(text)
    write_good_probe(d, good)
    doc = await kernels(jp_fetch)
    scripts = scripts_by_pid(doc)
    assert bad not in scripts
    assert scripts[good]["leak"]["actionable"], "one bad file must not affect another probe"
    assert any(f"probe-{bad}.json refused" in w for w in doc["probe_warnings"])


BAD_LINES = [
    '{"allocated": 5}',  # no step index
    '{"i": "x", "allocated": 1}',
    '{"i": 3, "allocated": 1e400}',  # parses to infinity
    '{"i": 4, "allocated": NaN}',
    '{"i": 5, "allocated": "12"}',
    "[]",
    '{"i": -1, "allocated": 3}',
    '{"i": 6, "allocated": 5, "reserved": Infinity}',
    '{"i": 7, "allocated": 5, "t": "yesterday"}',
]


async def test_invalid_records_are_skipped_and_counted_and_no_nan_reaches_json(jp_fetch, panel, live_pids):
    d = probe_dir(panel)
    mixed, clean = live_pids[:2]
    write_good_probe(d, clean)
    lines = (TRACES / "h100" / "leak_hidden.iters.jsonl").read_text().splitlines()
    with open(d / f"probe-{mixed}.iters.jsonl", "w") as fh:
        for k, line in enumerate(lines):
            fh.write(line + "\n")
            if k % 40 == 0:
                fh.write(BAD_LINES[(k // 40) % len(BAD_LINES)] + "\n")
    write_meta(d, mixed)
    scripts = scripts_by_pid(await kernels(jp_fetch))
    bad_written = len(range(0, len(lines), 40))
    assert scripts[mixed]["probe"]["skipped"] == bad_written
    assert scripts[mixed]["probe"]["steps"] == scripts[clean]["probe"]["steps"] == len(lines)
    # the same verdict as on the clean file: bad records change nothing
    for key in ("leak", "actionable", "onset_step", "bytes_per_step", "steps_to_oom"):
        assert scripts[mixed]["leak"][key] == scripts[clean]["leak"][key], key


def test_an_unterminated_line_is_not_held_in_memory(tmp_path):
    path = tmp_path / "probe-1.iters.jsonl"
    follower = LineFollower(path)
    chunk = b'{"i": 0, "allocated": ' + b"1" * (1 << 20)
    with open(path, "wb") as fh:
        for _ in range(24):  # 24 MiB written, never a newline
            fh.write(chunk)
            fh.flush()
            assert follower.read() == []
            assert len(follower.partial) <= MAX_LINE_BYTES
        fh.write(b"\n" + b'{"i": 1, "allocated": 7}\n')
    lines = []
    while True:  # reads are bounded per poll: drain
        got = follower.read()
        if not got and follower.offset == path.stat().st_size:
            break
        lines += got
    assert lines == [b'{"i": 1, "allocated": 7}'], "the over-long line is dropped, the next one read"


async def test_the_triage_request_never_follows_a_symlink(jp_fetch, panel, live_pids, tmp_path):
    d = probe_dir(panel)
    pid = live_pids[0]
    write_good_probe(d, pid, "healthy_plateau")
    victim = tmp_path / "precious.txt"
    victim.write_text("precious")
    request = d / f"probe-{pid}.triage-request"
    request.symlink_to(victim)
    await kernels(jp_fetch)
    resp = await jp_fetch("api", "gpu-panel", "probes", str(pid), "triage", method="POST", body="{}")
    assert resp.code == 202
    assert victim.read_text() == "precious"
    assert not request.is_symlink() and request.is_file()
    assert oct(request.stat().st_mode & 0o777) == oct(0o600)
    assert json.loads(request.read_text())["steps"] == 4


async def test_a_probe_file_of_another_user_is_refused(jp_fetch, panel, live_pids):
    needs.root("gives a probe file to another user (chown)")
    d = probe_dir(panel)
    mine, foreign = live_pids[:2]
    write_good_probe(d, mine)
    write_good_probe(d, foreign)
    os.chown(d / f"probe-{foreign}.json", 65534, 65534)  # nobody's file
    doc = await kernels(jp_fetch)
    assert set(scripts_by_pid(doc)) == {mine}
    assert any("belongs to another user" in w for w in doc["probe_warnings"])


async def test_probe_files_are_read_only_from_a_private_directory(jp_fetch, panel, live_pids):
    d = probe_dir(panel)
    mine = live_pids[0]
    write_good_probe(d, mine)
    assert set(scripts_by_pid(await kernels(jp_fetch))) == {mine}
    os.chmod(d, 0o755)  # readable and writable by others: ignored as a whole
    try:
        doc = await kernels(jp_fetch)
        assert doc["scripts"] == []
        assert any("expected 700" in w for w in doc["probe_warnings"])
    finally:
        os.chmod(d, 0o700)
    assert set(scripts_by_pid(await kernels(jp_fetch))) == {mine}


def test_a_garbled_triage_result_is_an_error_state_not_a_crash(tmp_path, live_pids):
    d = tmp_path / "gpu-panel"
    d.mkdir(mode=0o700)
    pid = live_pids[0]
    write_good_probe(d, pid)
    (d / f"probe-{pid}.triage.json").write_text(
        json.dumps({"steps": "many", "device_traces": [[{"addr": "x", "action": "alloc"}]]})
    )
    probes = Probes(d)
    probes.poll()
    follower = probes.followers[pid]
    assert follower.triage["state"] == "error" and "unreadable triage result" in follower.triage["error"]
    assert len(follower.steps) == 400
