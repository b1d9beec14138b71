"""The in-kernel probe's mechanics on this CPU machine, and the follower that reads its files.

The allocator readings need CUDA, which CI lacks: a subclass reads a deterministic
stand-in there, while the hook, file format, privacy, rotation and following are the real ones.
The GPU run (tests/gpu/) exercises the whole probe on an H100.
"""

import json
import os
import stat

import pytest

torch = pytest.importorskip("torch")  # in the test extra (pyproject [test]); CI turns a skip into a failure

import jupyter_gpu_panel.probe as probe_mod  # noqa: E402
from jupyter_gpu_panel.memory.follower import Probes  # noqa: E402
from jupyter_gpu_panel.probe import core as probe_core  # noqa: E402
from jupyter_gpu_panel.probe import triage as probe_triage  # noqa: E402


class CPUProbe(probe_mod.Probe):
    """Reads bytes kept alive by the test loop instead of the CUDA allocator."""

    kept: list = []

    def __init__(self, directory, max_bytes=probe_mod.DEFAULT_MAX_BYTES):
        super().__init__(directory=directory, device=0, max_bytes=max_bytes)

    def _limit(self):
        return 1 << 30

    def reading(self):
        held = sum(t.numel() * t.element_size() for t in self.kept)
        return {
            "allocated": held,
            "reserved": held,
            "active": held,
            "inactive_split": 0,
            "peak_allocated": held,
            "alloc_retries": 0,
            "num_ooms": 0,
        }


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
    lines = [json.loads(line) for line in p.path.read_text().splitlines()]
    assert [r["i"] for r in lines] == [0, 1, 2, 3, 4]
    assert [r["allocated"] for r in lines] == [1024 * k for k in range(5)]
    assert lines[0]["dt"] is None and all(r["dt"] > 0 for r in lines[1:])
    assert all(r["limit"] == 1 << 30 and r["device"] == 0 for r in lines)
    assert set(lines[0]) >= {
        "i",
        "t",
        "dt",
        "allocated",
        "reserved",
        "active",
        "inactive_split",
        "peak_allocated",
        "alloc_retries",
        "num_ooms",
    }  # the *.iters.jsonl fields
    assert stat.S_IMODE(os.stat(p.dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(p.path).st_mode) == 0o600
    meta = json.loads(p.meta_path.read_text())
    assert meta["pid"] == os.getpid() and meta["limit"] == 1 << 30


def test_files_rotate_so_size_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(probe_core, "FLUSH_SECONDS", 0.0)  # read by Probe in core
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
        (d / f"probe-{pid}.json").write_text(
            json.dumps({"pid": pid, "kernel_id": "abc", "limit": 100, "started": time.time()})
        )
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
        # where it goes is kernels.probe_owner's decision (tests/test_probe_owner.py), not its meta's
        assert probes.for_kernel("abc") == [] and probes.scripts() == []
        probes.owners = {pid: "abc"}
        assert probes.for_kernel("abc") == [f] and probes.for_kernel("other") == []
        assert f.alive
    finally:
        proc.kill()
        proc.wait()
    # the process ended: its probe is no longer followed (a restarted kernel keeps its id),
    # and its files, which stay, are not read again
    probes.poll()
    assert pid not in probes.followers and probes.for_kernel("abc") == []
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
    monkeypatch.setattr(probe_triage, "TRIAGE_POLL_SECONDS", 0.0)
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
    monkeypatch.setattr(probe_triage, "TRIAGE_POLL_SECONDS", 0.0)
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
    (d / f"probe-{pid}.json").write_text(
        json.dumps({"pid": pid, "kernel_id": "k", "limit": 100, "started": time.time()})
    )
    (d / f"probe-{pid}.iters.jsonl").write_text(
        "".join(json.dumps({"i": i, "allocated": 10 * i, "reserved": 20 * i}) + "\n" for i in range(1501))
    )
    probes = Probes(d)
    probes.poll()
    s = probes.followers[pid].series(max_points=600)
    assert len(s["step"]) <= 601 and s["step"][0] == 0 and s["step"][-1] == 1500
    assert s["allocated"][-1] == 15000 and s["reserved"][-1] == 30000


# -- round 2: iterations, not optimizer calls; headroom now; loops without an optimizer -------


def records(p):
    return [json.loads(line) for line in p.path.read_text().splitlines()]


def gan(steps, probe=None, head_every=None, leak=False):
    """Two models, two optimizers: D then G step in every iteration (a GAN's loop)."""
    G, D = torch.nn.Linear(4, 8), torch.nn.Linear(8, 1)
    opt_g = torch.optim.SGD(G.parameters(), lr=0.01)
    opt_d = torch.optim.SGD(D.parameters(), lr=0.01)
    head = torch.nn.Linear(8, 2)
    opt_h = torch.optim.SGD(head.parameters(), lr=0.01)
    for k in range(steps):
        fake = G(torch.randn(4, 4))
        d_loss = D(fake.detach()).mean()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        if leak:
            CPUProbe.kept.append(torch.zeros(256))
        g_loss = -D(fake).mean()
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        if head_every and k % head_every == 0:
            h_loss = head(fake.detach()).pow(2).mean()
            opt_h.zero_grad()
            h_loss.backward()
            opt_h.step()


def test_two_optimizers_make_one_iteration(tmp_path):
    CPUProbe.kept = []
    p = CPUProbe(tmp_path)
    p.open()
    try:
        gan(6, leak=True)
    finally:
        p.close()
    recs = records(p)
    assert [r["i"] for r in recs] == list(range(12))  # one record per optimizer step, as before
    assert [r["iter"] for r in recs] == [k // 2 for k in range(12)]
    assert [r["opt"] for r in recs] == [0, 1] * 6  # D first seen, then G: stable small ids
    assert all(r["kind"] == "step" for r in recs)
    assert "steps_per_iteration" not in recs[0] and all(r["steps_per_iteration"] == 2 for r in recs[2:])
    from jupyter_gpu_panel.memory.verdict import verdict_from_records

    v = verdict_from_records(recs)
    assert v["current_step"] == 5 and v["steps_per_iteration"] == 2 and v["step_source"] == "optimizer"


def test_a_head_optimizer_every_other_iteration_joins_its_iteration(tmp_path):
    CPUProbe.kept = []
    p = CPUProbe(tmp_path)
    p.open()
    try:
        gan(6, head_every=2)
    finally:
        p.close()
    recs = records(p)
    iters = [r["iter"] for r in recs]
    assert max(iters) == 5  # six iterations of the loop, whatever steps in each
    assert [r["opt"] for r in recs if r["iter"] == 0] == [0, 1, 2]
    assert [r["opt"] for r in recs if r["iter"] == 1] == [0, 1]


def test_iterations_of_a_loop_that_builds_its_optimizer_every_time():
    its = probe_mod.Iterations()
    starts = []
    for _ in range(5):
        opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
        starts.append(its.fire(opt)[1])
        del opt  # the previous one is gone before the next is built
    assert starts == [True] * 5 and its.index == 4


def test_limit_is_reread_at_every_record_and_free_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(probe_mod.P, "FREE_SECONDS", 0.0)
    CPUProbe.kept = []
    caps = iter([1 << 30] + [1 << 30] * 3 + [1 << 28] * 3)  # a fraction set after the start

    class Capped(CPUProbe):
        def _limit(self):
            return next(caps)

        def _free(self):
            return 5 << 30

    p = Capped(tmp_path)
    p.open()
    try:
        train(6)
    finally:
        p.close()
    recs = records(p)
    assert [r["limit"] for r in recs] == [1 << 30] * 3 + [1 << 28] * 3
    assert all(r["free"] == 5 << 30 for r in recs)


def test_free_unreadable_is_left_out_not_fatal(tmp_path):
    CPUProbe.kept = []
    p = CPUProbe(tmp_path)  # torch.cuda.mem_get_info raises on a CPU build
    p.open()
    try:
        train(3)
    finally:
        p.close()
    assert all("free" not in r for r in records(p)) and len(records(p)) == 3


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))

    def forward(self, x):
        return self.body(x)


def test_a_loop_without_an_optimizer_is_recorded_once_an_iteration(tmp_path, monkeypatch):
    monkeypatch.setattr(probe_mod.P, "MIN_FORWARD_RECORD_SECONDS", 0.0)
    CPUProbe.kept = []
    p = CPUProbe(tmp_path)
    p.open()
    p.arm_forward_discovery()
    enc, head = Encoder(), torch.nn.Linear(8, 2)
    try:
        with torch.no_grad():
            for _ in range(6):
                out = head(enc(torch.randn(4, 8)))
                CPUProbe.kept.append(out.clone())
        assert p._discovery is None  # it removed itself after one iteration of the loop
        assert not torch.nn.modules.module._global_forward_pre_hooks
        hooked = {id(m) for m in (enc, head)}
        assert set(p._forward_hooks) == hooked  # the top-level modules only, not enc.body or its layers
    finally:
        p.close()
    assert not enc._forward_hooks and not head._forward_hooks  # close() removes them
    recs = records(p)
    assert [r["kind"] for r in recs] == ["forward"] * 6
    assert [r["iter"] for r in recs] == list(range(6)) and all(r["mod"] == 0 for r in recs)
    assert all(r["steps_per_iteration"] == 2 for r in recs[1:])
    from jupyter_gpu_panel.memory.verdict import verdict_from_records

    v = verdict_from_records(recs)
    assert v["step_source"] == "forward" and v["steps_per_iteration"] == 2 and v["current_step"] == 5


def test_training_is_read_at_its_steps_not_its_forwards(tmp_path):
    CPUProbe.kept = []
    p = CPUProbe(tmp_path)
    p.open()
    p.arm_forward_discovery()
    model = Encoder()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    try:
        for _ in range(5):
            loss = model(torch.randn(4, 8)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        p.close()
    kinds = [r["kind"] for r in records(p)]
    assert kinds == ["forward"] + ["step"] * 5  # only the forward before the first step ever


def test_discovery_costs_nothing_once_done():
    """After one iteration no global hook is left: torch's fast path for every module call."""
    from torch.nn.modules import module as mm

    assert not mm._global_forward_pre_hooks and not mm._global_forward_hooks
