"""The probe's clock: code that neither steps an optimizer nor calls a module is read once a second.

The same CPU stand-in for the allocator as tests/test_probe.py (CI has no CUDA); the clock, the
records, the thread and the verdict on them are the real ones.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

torch = pytest.importorskip("torch")

from test_probe import CPUProbe, ReplayHistoryProbe, request, train  # noqa: E402 - after the torch check
from test_probe import records as file_records  # noqa: E402

from jupyter_gpu_panel.cli import main as cli_main  # noqa: E402
from jupyter_gpu_panel.memory.verdict import verdict_from_records  # noqa: E402
from jupyter_gpu_panel.probe import clock  # noqa: E402
from jupyter_gpu_panel.probe import protocol as P  # noqa: E402
from jupyter_gpu_panel.probe import triage as probe_triage  # noqa: E402

MiB = 1024**2
T0 = 1.79e9


@pytest.fixture
def probe(tmp_path):
    CPUProbe.kept = []
    p = CPUProbe(tmp_path)
    p.open()
    yield p
    p.close()
    CPUProbe.kept = []


def records(p: CPUProbe) -> list:
    """What the probe has written so far (its buffer flushed, as the server would see it soon)."""
    with p._lock:
        if p._fh is not None:
            p._fh.flush()
    return file_records(p)


def keep(mib: int) -> None:
    CPUProbe.kept.append(torch.zeros(mib * MiB // 4))  # float32


def test_a_tensor_loop_is_read_on_the_clock_and_judged_per_second(probe):
    """A cell that keeps 2 MiB a second with no optimizer and no module: after the grace, one
    ``time`` record a second, and a verdict in bytes a second with a forecast in seconds."""
    probe.run_starts(now=T0)
    assert not probe.clock_tick(T0 + 1.0)  # within the grace: a training loop's first step comes here
    wrote = []
    for k in range(2, 62):
        wrote.append(probe.clock_tick(T0 + k))
        keep(2)
    assert wrote[0] is False and all(wrote[1:])  # its first look only sets the baseline
    recs = records(probe)
    assert {r["kind"] for r in recs} == {"time"} and [r["iter"] for r in recs] == list(range(len(recs)))
    assert [r["t"] for r in recs] == [T0 + k for k in range(3, 62)]
    v = verdict_from_records(recs)
    assert v["step_source"] == "timer" and v["leak"] and v["actionable"]
    assert v["bytes_per_step"] == pytest.approx(2 * MiB, rel=0.01)  # a second on this axis
    headroom = (1 << 30) - v["level"]  # CPUProbe's limit is 1 GiB
    assert v["seconds_to_oom"] == pytest.approx(headroom / (2 * MiB), rel=0.1)
    assert v["message"].startswith("Leaking 2 MiB a second, full in ~") and "around" not in v["message"]


def test_code_that_never_moves_the_allocator_writes_nothing(probe):
    """A plotting cell or a pandas job after training: no record, so the training's verdict stays."""
    train(5)
    probe.run_starts(now=T0)
    assert not any(probe.clock_tick(T0 + k) for k in range(2, 30))
    assert [r["kind"] for r in records(probe)] == ["step"] * 5


def test_a_step_or_the_cell_ending_silences_the_clock(probe):
    probe.run_starts(now=time.time() - 10)
    keep(1)
    assert not probe.clock_tick(time.time())  # baseline
    keep(1)
    assert probe.clock_tick(time.time())
    train(1)  # the loop steps an optimizer: its steps are the readings from now on
    keep(1)
    assert not probe.clock_tick(time.time())
    probe.run_starts(now=time.time() - 10)  # the next cell: the clock looks again ...
    probe.run_ends()  # ... until it ends: an idle kernel is never read
    keep(1)
    assert not probe.clock_tick(time.time()) and not probe.clock_due(time.time())


def test_steps_after_clock_readings_take_the_verdict_back(probe):
    """A cell that loads data onto the GPU for a while, then trains: judged on its steps."""
    probe.run_starts(now=T0)
    for k in range(2, 8):
        keep(1)
        probe.clock_tick(T0 + k)
    assert verdict_from_records(records(probe))["step_source"] == "timer"
    train(5)
    assert verdict_from_records(records(probe))["step_source"] == "optimizer"


def test_a_triage_on_the_clock_is_cut_at_its_readings_and_speaks_in_seconds(tmp_path, monkeypatch):
    """The server asks for a triage on the alarm: the clock's readings cut the history (a step is
    a second) and the verdict names the line "a second"."""
    import os

    monkeypatch.setattr(probe_triage, "TRIAGE_POLL_SECONDS", 0.0)
    CPUProbe.kept = []
    monkeypatch.setattr(ReplayHistoryProbe, "markers", 0)  # class counters: restored afterwards
    monkeypatch.setattr(ReplayHistoryProbe, "recording", None)
    p = ReplayHistoryProbe(tmp_path)
    p.open()
    try:
        p.run_starts(now=T0)
        for k in range(2, 6):
            keep(1)
            p.clock_tick(T0 + k)
        probes, f, req = request(tmp_path, os.getpid())
        assert req["state"] == "requested" and req["steps"] == 4
        k = 6
        while ReplayHistoryProbe.recording is not False and k < 20:  # one reading starts it, 4 record
            keep(1)
            p.clock_tick(T0 + k)
            k += 1
        assert ReplayHistoryProbe.recording is False and ReplayHistoryProbe.markers == 5 and k == 11
    finally:
        p.close()
        CPUProbe.kept = []
    assert json.loads(p.triage_path.read_text())["unit"] == "second"
    probes.poll()
    t = f.triage
    assert t["state"] == "done" and t["steps"] == 4
    assert t["message"] == "`record_snapshot.py:27 h = model[1](model[0](x))` keeps 32 MiB a second"


def test_the_clock_thread_records_and_stops_with_the_probe(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "IDLE_OPTIMIZER_SECONDS", 0.05)
    CPUProbe.kept = []
    p = CPUProbe(tmp_path)
    p.open()
    p.run_starts()
    p.start_clock(period=0.02)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(r["kind"] == "time" for r in records(p)) < 5:
            keep(1)
            time.sleep(0.02)
    finally:
        p.close()
    assert not any(t.name == "gpu-panel-probe-clock" for t in threading.enumerate())
    recs = records(p)
    assert sum(r["kind"] == "time" for r in recs) >= 5
    assert all(P.OPT not in r and P.MOD not in r for r in recs)
    CPUProbe.kept = []


def test_the_cli_speaks_in_seconds_for_clock_records(tmp_path, capsys):
    recs = [
        {
            "i": k,
            "kind": "time",
            "iter": k,
            "t": T0 + k,
            "allocated": 4 * 1024**3 + 8 * MiB * k,
            "reserved": 4 * 1024**3 + 8 * MiB * k,
            "limit": 80 * 1024**3,
        }
        for k in range(120)
    ]
    path = tmp_path / "loop.iters.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert cli_main(["leaks", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Leaking 8 MiB a second, full in ~2") and "growing for the last" in out, out
    assert "read by the probe's clock" in out, out


def test_the_clock_module_reads_no_gpu_itself():
    """Only through the probe's ``reading`` (host-side allocator counters): no CUDA call here."""
    import inspect

    src = inspect.getsource(clock)
    assert "torch" not in src.split('"""', 2)[2]
