"""The in-kernel probe's mechanics on this CPU machine, and the follower that reads its files.

The allocator readings need CUDA, which CI lacks: a subclass reads a deterministic
stand-in there, while the hook, file format, privacy, rotation and following are the real ones.
The GPU run (tests/gpu/) exercises the whole probe on an H100.
"""

import json
import os
import stat

import pytest

torch = pytest.importorskip("torch")  # torch is a test dependency: see pyproject [test]

from jupyter_gpu_panel.memory import probe as probe_mod  # noqa: E402
from jupyter_gpu_panel.memory.follower import Probes  # noqa: E402


class CPUProbe(probe_mod.Probe):
    """Reads bytes kept alive by the test loop instead of the CUDA allocator."""

    kept: list = []

    def __init__(self, directory, max_bytes=probe_mod.DEFAULT_MAX_BYTES):
        super().__init__(directory=directory, device=0, max_bytes=max_bytes)

    def _limit(self):
        return 1 << 30

    def reading(self):
        held = sum(t.numel() * t.element_size() for t in self.kept)
        return {"allocated": held, "reserved": held, "active": held, "inactive_split": 0,
                "peak_allocated": held, "alloc_retries": 0, "num_ooms": 0}


def train(steps, keep=False):
    model = torch.nn.Linear(8, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        loss = model(torch.randn(4, 8)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if keep:
            CPUProbe.kept.append(torch.zeros(256))  # 1 KiB a step


def test_without_cuda_the_probe_says_so_and_does_nothing(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the GPU run covers it")  # never true in CI
    assert "no CUDA GPU" in probe_mod.unavailable_reason()
    assert probe_mod.start() is None
    assert "does nothing" in capsys.readouterr().err


def test_ipython_load_ext_reports_the_reason(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_gpu_panel")
    out = capsys.readouterr()
    assert "jupyter-gpu-panel" in out.err + out.out


def test_hook_writes_one_private_record_per_optimizer_step(tmp_path):
    CPUProbe.kept = []
    p = CPUProbe(tmp_path / "gpu-panel")
    p.open()
    try:
        train(5, keep=True)
    finally:
        p.close()
    train(3)  # after close: no more records
    lines = [json.loads(l) for l in p.path.read_text().splitlines()]
    assert [r["i"] for r in lines] == [0, 1, 2, 3, 4]
    assert [r["allocated"] for r in lines] == [1024 * k for k in range(5)]
    assert lines[0]["dt"] is None and all(r["dt"] > 0 for r in lines[1:])
    assert all(r["limit"] == 1 << 30 and r["device"] == 0 for r in lines)
    assert set(lines[0]) >= {"i", "t", "dt", "allocated", "reserved", "active", "inactive_split",
                             "peak_allocated", "alloc_retries", "num_ooms"}  # the *.iters.jsonl fields
    assert stat.S_IMODE(os.stat(p.dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(p.path).st_mode) == 0o600
    meta = json.loads(p.meta_path.read_text())
    assert meta["pid"] == os.getpid() and meta["limit"] == 1 << 30


def test_files_rotate_so_size_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(probe_mod, "FLUSH_SECONDS", 0.0)
    CPUProbe.kept = []
    p = CPUProbe(tmp_path, max_bytes=2000)
    p.open()
    try:
        train(60)
    finally:
        p.close()
    assert p.path.stat().st_size <= 2000 + 400
    assert p.path.with_suffix(".jsonl.1").exists()


def test_follower_reads_only_new_complete_lines_survives_rotation_and_ends_with_its_process(tmp_path):
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the probed process
    pid = proc.pid
    try:
        d = tmp_path / "gpu-panel"
        d.mkdir(mode=0o700)
        (d / f"probe-{pid}.json").write_text(json.dumps({"pid": pid, "kernel_id": "abc", "limit": 100, "started": time.time()}))
        iters = d / f"probe-{pid}.iters.jsonl"
        iters.write_text('{"i": 0, "allocated": 1}\n{"i": 1, "allo')
        probes = Probes(d)
        probes.poll()
        f = probes.followers[pid]
        assert [s["i"] for s in f.steps] == [0]
        with iters.open("a") as fh:
            fh.write('cated": 2}\n{"i": 2, "allocated": 3}\n')
        assert f.poll() == 2
        assert [s["allocated"] for s in f.steps] == [1, 2, 3]
        iters.write_text('{"i": 3, "allocated": 4}\n')  # rotated: a new, shorter file
        f.poll()
        assert [s["i"] for s in f.steps][-1] == 3
        assert probes.for_kernel("abc", []) == [f]
        assert probes.for_kernel("other", [pid]) == [f]
        assert f.alive
    finally:
        proc.kill()
        proc.wait()
    # the process ended: its probe is no longer followed (a restarted kernel keeps its id),
    # and its files, which stay, are not read again
    probes.poll()
    assert pid not in probes.followers and probes.for_kernel("abc", []) == []
    probes.poll()
    assert pid not in probes.followers


# -- triage: the server asks, the hook records a few steps, the server names the line -------

SNAPSHOT = os.path.join(os.path.dirname(__file__), "data", "leaks", "snapshot_leak.json")
RECORDER = os.path.join(os.path.dirname(__file__), "data", "leaks", "record_snapshot.py")


class ReplayHistoryProbe(CPUProbe):
    """The allocator's history is CUDA-only: replay a real one, recorded on an H100 by
    tests/data/leaks/record_snapshot.py (4 steps that keep ``h``), at torch's boundary."""

    recording = None
    markers = 0

    def _record_history(self, on):
        type(self).recording = on

    def _triage_step_marker(self):
        type(self).markers += 1

    def _snapshot(self):
        snap = json.loads(open(SNAPSHOT).read())
        for events in snap["device_traces"]:
            for ev in events:
                for fr in ev.get("frames") or []:
                    if fr["filename"].endswith("record_snapshot.py"):
                        fr["filename"] = RECORDER  # where this checkout keeps the script
        return snap


def request(follower_dir, pid, steps=None):
    probes = Probes(follower_dir)
    probes.poll()
    f = probes.followers[pid]
    return probes, f, (f.request_triage() if steps is None else f.request_triage(steps))


def test_triage_request_is_recorded_for_the_asked_steps_and_names_the_line(tmp_path, monkeypatch):
    monkeypatch.setattr(probe_mod, "TRIAGE_POLL_SECONDS", 0.0)
    CPUProbe.kept = []
    p = ReplayHistoryProbe(tmp_path)
    p.open()
    try:
        train(2)
        probes, f, req = request(tmp_path, os.getpid())
        assert req["state"] == "requested" and req["steps"] == 4
        assert stat.S_IMODE(os.stat(f.triage_request_path).st_mode) == 0o600
        train(1)  # the hook sees the request: recording starts, the request is consumed
        assert ReplayHistoryProbe.recording is True and not f.triage_request_path.exists()
        train(3)
        assert not p.triage_path.exists()  # 3 of 4 steps recorded
        train(1)
        assert ReplayHistoryProbe.recording is False
        assert ReplayHistoryProbe.markers == 5  # at the start and after each recorded step
    finally:
        p.close()
    assert stat.S_IMODE(os.stat(p.triage_path).st_mode) == 0o600
    probes.poll()
    t = f.triage
    assert t["state"] == "done" and t["steps"] == 4 and t["error"] is None
    assert t["message"] == "`record_snapshot.py:27 h = model[1](model[0](x))` keeps 32 MiB a step"
    assert t["stacks"][0]["every_step"] and t["stacks"][0]["count"] == 4
    assert f.summary()["triage"] is t


def test_triage_without_cuda_reports_why_and_training_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(probe_mod, "TRIAGE_POLL_SECONDS", 0.0)
    CPUProbe.kept = []
    p = CPUProbe(tmp_path)  # the real torch calls: on a CPU build they raise
    p.open()
    try:
        probes, f, _ = request(tmp_path, os.getpid(), steps=2)
        train(3)
    finally:
        p.close()
    assert len(p.path.read_text().splitlines()) == 3  # every step still recorded
    probes.poll()
    assert f.triage["state"] == "error" and "allocation history" in f.triage["error"]


def test_probe_summary_has_a_thinned_series_ending_at_the_last_step(tmp_path):
    import time

    d, pid = tmp_path, os.getpid()
    (d / f"probe-{pid}.json").write_text(json.dumps({"pid": pid, "kernel_id": "k", "limit": 100, "started": time.time()}))
    (d / f"probe-{pid}.iters.jsonl").write_text("".join(json.dumps({"i": i, "allocated": 10 * i, "reserved": 20 * i}) + "\n" for i in range(1501)))
    probes = Probes(d)
    probes.poll()
    s = probes.followers[pid].series(max_points=600)
    assert len(s["step"]) <= 601 and s["step"][0] == 0 and s["step"][-1] == 1500
    assert s["allocated"][-1] == 15000 and s["reserved"][-1] == 30000
