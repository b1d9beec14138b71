"""Triage that covers a leak's period (issue 19, item 2): a leak every 5th or 25th step.

In the live cases a 4-step window saw one increment of such a leak, or none, and named "inside
torch" (the last step's gradients) over the user's line. Here: the period from the verdict, the
recording window that waits for two increments (bounded by steps, time and the history's size),
and the attribution of the surviving bytes to the user's line, on synthetic histories; then the
whole path (probe, request file, recording, ``triage.json``, the server's follower) with leaks
every 5th and every 25th step in a script and in a real kernel.

torch here is the CPU build and its allocator history is CUDA-only: the script and the kernel
run ``tests/cpu_history.py``'s stand-in at that boundary only (a ``TorchDispatchMode`` that
records the storages operators create, with their Python stacks). The H200 run,
``tests/gpu/triage_period_proof.py``, records torch's own history.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_gpu_panel.memory.triage import leak_period, triage_plan, triage_result, triage_snapshot
from jupyter_gpu_panel.memory.verdict import verdict_from_records
from jupyter_gpu_panel.probe import protocol as P
from jupyter_gpu_panel.probe.triage import TriageWindow

MiB = 2**20
HERE = Path(__file__).resolve().parent
LEAK_SCRIPT = HERE / "data" / "leaks" / "every_nth_leak.py"
LEAK_CODE = "val_loss += model(xv).pow(2).mean()"
TORCH = "/opt/venv/lib/python3.12/site-packages/torch"
CELL = "/tmp/ipykernel_4242/1234567.py"


def readings(period: int, steps: int, increment: int = 38 * MiB, base: int = 2 << 30, wobble: int = 0) -> list[int]:
    """Allocated at each step boundary of a loop leaking ``increment`` every ``period``th step,
    plus ``wobble`` bytes up and down (what a step's boundary reading may vary by)."""
    out, held = [], base
    for k in range(steps):
        if k % period == period - 1:
            held += increment
        out.append(held + (k * 7919 % 5) * wobble)
    return out


def records(values: list[int]) -> list[dict]:
    return [{"i": k, "t": 1000.0 + 0.1 * k, "allocated": v, "reserved": v + MiB} for k, v in enumerate(values)]


# -- the period, from the verdict ------------------------------------------------------------


@pytest.mark.parametrize("period", [1, 5, 25])
def test_the_period_and_the_increment_come_from_the_verdict_and_the_readings(period):
    x = readings(period, 10 * period + 20)
    leak = verdict_from_records(records(x), capacity=80 << 30)
    assert leak["leak"]
    got, increment = leak_period(range(len(x)), x, leak["bytes_per_step"])
    assert got == period and increment == pytest.approx(38 * MiB, rel=0.01)
    wobbly = readings(period, 10 * period + 20, wobble=MiB)
    assert leak_period(range(len(x)), wobbly, leak["bytes_per_step"]) == (got, pytest.approx(increment, rel=0.1))
    plan = triage_plan(leak, range(len(x)), x)
    assert plan[P.REQUEST_PERIOD] == period and plan[P.REQUEST_INCREMENT] == pytest.approx(38 * MiB, rel=0.01)
    assert plan[P.REQUEST_MAX_STEPS] == max(4, 2 * period + 2) and plan[P.REQUEST_STEPS] == 4


def test_a_warm_up_jump_is_no_increment():
    """As on the H200: AdamW's state and the first gradients (760 MiB) arrive in the first step,
    then 20 MiB every 25th step; the verdict flags it at step 110 (there: with its onset at 0)."""
    x = [0] + [760 * MiB + v - (2 << 30) for v in readings(25, 110, increment=20 * MiB)]
    leak = verdict_from_records(records(x), capacity=140 << 30)
    assert leak["leak"]
    assert leak_period(range(len(x)), x, leak["bytes_per_step"]) == (25, 20 * MiB)  # the jump in the window
    plan = triage_plan(leak, range(len(x)), x)
    assert plan[P.REQUEST_PERIOD] == 25 and plan[P.REQUEST_INCREMENT] == 20 * MiB
    assert plan[P.REQUEST_MAX_STEPS] == 52


def test_one_increment_seen_gives_the_period_from_bytes_a_step():
    x = [0] * 10 + [25 * MiB] * 20  # the window holds one increment of a leak judged longer
    assert leak_period(range(30), x, 1 * MiB) == (25, 25 * MiB)


def test_without_a_leak_the_plan_is_the_usual_four_steps():
    assert triage_plan(None, [], []) == {P.REQUEST_STEPS: 4}
    assert triage_plan({"leak": False, "bytes_per_step": 0.0}, [0, 1], [5, 5]) == {P.REQUEST_STEPS: 4}


# -- the recording window ----------------------------------------------------------------------


def run_window(window: TriageWindow, values: list[int], dt: float = 0.1, events_per_step: int = 100) -> str:
    for k, v in enumerate(values, 1):
        stopped = window.step(window.start + k * dt, v, (window.events0 or 0) + k * events_per_step)
        if stopped:
            return stopped
    raise AssertionError("never stopped")


@pytest.mark.parametrize("period, phase", [(5, 0), (5, 4), (25, 0), (25, 24)])
def test_the_window_waits_for_two_increments_and_one_step_more(period, phase):
    x = readings(period, 200, wobble=64 * 1024)[phase:]
    w = TriageWindow(start=0.0, allocated=x[0], events=0, increment=38 * MiB, max_steps=2 * period + 2)
    assert run_window(w, x[1:]) == P.STOP_INCREMENTS
    assert w.increments == 2 and w.recorded <= 2 * period + 2
    rises = [k for k in range(1, w.recorded + 1) if w.allocated[k] - max(w.allocated[:k]) > 19 * MiB]
    assert len(rises) == 2 and w.recorded == rises[1] + 1  # one step past the second increment


def test_a_leak_every_step_still_records_the_usual_four():
    w = TriageWindow(start=0.0, allocated=0, events=0, increment=MiB, max_steps=4)
    assert run_window(w, [k * MiB for k in range(1, 50)]) == P.STOP_INCREMENTS and w.recorded == 4


def test_a_spike_counts_once_and_the_bounds_say_which_ended_it():
    spike = [0, 0, 50 * MiB, 0, 0, 0, 0, 0, 0, 0]
    w = TriageWindow(start=0.0, allocated=0, events=0, increment=38 * MiB, max_steps=8)
    assert run_window(w, spike) == P.STOP_MAX_STEPS and w.increments == 1 and w.recorded == 8
    w = TriageWindow(start=0.0, allocated=0, events=0, increment=38 * MiB, max_steps=100, max_seconds=2.0)
    assert run_window(w, [0] * 100, dt=0.5) == P.STOP_SECONDS and w.recorded == 4
    w = TriageWindow(start=0.0, allocated=0, events=0, increment=38 * MiB, max_steps=100, max_entries=1000)
    assert run_window(w, [0] * 100, events_per_step=300) == P.STOP_ENTRIES and w.recorded == 3
    w = TriageWindow(start=0.0, allocated=0, events=0)  # no increment to wait for: the steps asked
    assert run_window(w, [0] * 10) == P.STOP_STEPS and w.recorded == 4 and w.result()[P.RESULT_INCREMENTS] is None


def test_a_request_cannot_ask_past_the_bounds():
    req = {"steps": 10**9, "max_steps": 10**9, "max_seconds": 1e9, "increment": True, "period": "x"}
    w = TriageWindow.from_request(req, start=0.0, allocated=0, events=0)
    assert w.steps == w.max_steps == P.TRIAGE_MAX_STEPS and w.max_seconds == P.TRIAGE_MAX_SECONDS
    assert w.increment is None


# -- attribution on synthetic histories -----------------------------------------------------------


def history(period: int, steps: int, phase: int = 0, where: str = CELL) -> dict:
    """What the probe sends for a loop that, every ``period``th step, keeps a validation's graph
    (call site ``where``:8 through a module call), while each step's gradients (autograd: no
    Python frame, 192 MiB, more than one increment) are freed by the next step's zero_grad."""
    module = [
        {"filename": f"{TORCH}/nn/modules/linear.py", "line": 125, "name": "forward"},
        {"filename": f"{TORCH}/nn/modules/module.py", "line": 1790, "name": "_call_impl"},
    ]
    user = [*module, {"filename": where, "line": 8, "name": "<module>"}]
    marker = [{"filename": "/x/jupyter_gpu_panel/probe/triage.py", "line": 1, "name": P.STEP_MARKER}]
    events, addr, grads = [], 0x1000, []

    def ev(action, size, frames=()):
        nonlocal addr
        events.append({"action": action, "addr": addr, "size": size, "frames": list(frames)})
        addr += 0x10
        return addr - 0x10

    for k in range(steps):
        a = ev("alloc", 512, marker)
        events.append({"action": "free_completed", "addr": a, "size": 512})
        for g in grads:
            events.append({"action": "free_completed", "addr": g, "size": 48 * MiB})
        act = ev("alloc", 64 * MiB, user)  # the training step's activations: freed in the step
        events.append({"action": "free_completed", "addr": act, "size": 64 * MiB})
        grads = [ev("alloc", 48 * MiB) for _ in range(4)]
        if (k + phase) % period == period - 1:
            ev("alloc", 30 * MiB, user)  # the graph the validation keeps
            ev("alloc", 8 * MiB, user)
    a = ev("alloc", 512, marker)
    events.append({"action": "free_completed", "addr": a, "size": 512})
    code = {P.code_key(where, 8): LEAK_CODE}
    return {"device_traces": [events], "code": code, "steps": steps, "unit": "step"}


@pytest.mark.parametrize("period, steps", [(5, 11), (25, 51)])
def test_the_users_line_holds_the_bytes_of_a_leak_every_nth_step(period, steps):
    doc = {**history(period, steps), "increments": 2, "stopped": "increments", "period": period, "seconds": 3.5}
    out = triage_result(doc)
    top = out["stacks"][0]
    assert top["where"] == f"{CELL}:8 <module>" and top["code"] == LEAK_CODE
    assert top["bytes"] == 2 * 38 * MiB and top["bytes_per_step"] == pytest.approx(76 * MiB / (steps - 1))
    assert out["message"] == f"`cell line 8 {LEAK_CODE}` keeps 38 MiB every {period} steps (76 MiB over {steps} steps)"
    assert out["recording"] == {
        "steps": steps,
        "seconds": 3.5,
        "increments": 2,
        "period": float(period),
        "stopped": "increments",
        "bounded": False,
    }
    assert [s["where"] for s in out["stacks"]] == [f"{CELL}:8 <module>", "<inside torch>"]


def test_the_old_four_step_window_now_names_the_line_not_torch():
    """The live case: 4 steps held one increment; the last step's gradients (192 MiB, no Python
    frame) were named. The user's line holds bytes from before the last step: it is named."""
    snap = history(5, 4, phase=2)
    out = triage_snapshot(snap, 4, source_line=lambda f, n: LEAK_CODE)
    assert out["message"] == f"`cell line 8 {LEAK_CODE}` kept 38 MiB over 4 steps"
    assert out["stacks"][1]["where"] == "<inside torch>" and out["stacks"][1]["bytes"] == 192 * MiB


def test_inside_torch_only_when_no_user_frame_holds_surviving_bytes():
    snap = history(5, 4, phase=3)  # the leak came at the last step only: nothing earlier survives
    out = triage_snapshot(snap, 4, source_line=lambda f, n: LEAK_CODE)
    assert out["stacks"][0]["where"] == f"{CELL}:8 <module>"  # a user frame still holds bytes
    events = [e for e in snap["device_traces"][0] if e.get("frames") or e["action"] != "alloc"]
    events += [{"action": "alloc", "addr": 1 << 40, "size": 512 * MiB, "frames": []}]  # torch's own, step 0
    out = triage_snapshot({"device_traces": [events]}, 4)
    assert out["stacks"][0]["where"] == f"{CELL}:8 <module>"  # torch's early bytes rank below a user line's


def test_a_bounded_recording_says_so():
    doc = {**history(25, 20), "increments": 0, "stopped": "seconds", "period": 25, "seconds": 60.2}
    out = triage_result(doc)
    assert out["recording"]["bounded"] and out["recording"]["stopped"] == "seconds"
    assert out["message"].endswith("Recording stopped at its time bound (60 s) after 0 of 2 growth increments.")
    doc = {**history(25, 30), "increments": 1, "stopped": "max_steps"}
    assert triage_result(doc)["message"].endswith(
        "Recording stopped at its bound of 30 steps after 1 of 2 growth increments."
    )
    doc = {**history(5, 11), "stopped": "bogus", "increments": -1, "seconds": float("nan")}
    assert triage_result(doc)["recording"] == {
        "steps": 11,
        "seconds": None,
        "increments": None,
        "period": None,
        "stopped": None,
        "bounded": False,
    }


# -- the whole path: a script and a kernel, with the stand-in at torch's history ----------------


def follow_until_triaged(directory: Path, pid: int, done, timeout: float = 150.0):
    """What the server's tracker does for a probe: poll, judge, ask the triage on the first
    actionable alarm (``request_triage(auto=True)``), read the result."""
    from jupyter_gpu_panel.memory.follower import Probes

    probes, deadline, f = Probes(directory), time.monotonic() + timeout, None
    while time.monotonic() < deadline and not done():
        time.sleep(0.3)
        probes.poll()
        f = probes.followers.get(pid)
        if f is None:
            continue
        if f.stale:
            f.judge()
        if f.leak is not None and f.leak["actionable"] and f.triage is None:
            f.request_triage(auto=True)
        if f.triage is not None and f.triage["state"] != "requested":
            return f
    raise AssertionError(f"no triage: {None if f is None else (f.leak, f.triage)}")


@pytest.mark.parametrize("period", [5, 25])
def test_a_script_leaking_every_nth_step_is_triaged_to_its_line(tmp_path, period):
    pytest.importorskip("torch")  # in the test extra (pyproject [test]); CI turns a skip into a failure
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    proc = subprocess.Popen([sys.executable, str(LEAK_SCRIPT), str(period), str(tmp_path)], env=env)
    try:
        f = follow_until_triaged(tmp_path, proc.pid, lambda: proc.poll() is not None)
    finally:
        proc.kill()
        proc.wait()
    t = f.triage
    assert t["state"] == "done" and t["auto"]
    line = next(k for k, text in enumerate(LEAK_SCRIPT.read_text().splitlines(), 1) if LEAK_CODE in text)
    assert t["message"].startswith(f"`every_nth_leak.py:{line} {LEAK_CODE}")
    assert f"every {period} steps" in t["message"]
    top = t["stacks"][0]
    assert top["code"].startswith(LEAK_CODE) and top["bytes"] > 0
    assert t["recording"]["stopped"] == "increments" and t["recording"]["increments"] == 2
    assert t["recording"]["period"] == period and t["recording"]["steps"] <= 2 * period + 2


KERNEL_SETUP = """
import sys, torch
from torch import nn
sys.path.insert(0, {tests!r})
import cpu_history
torch.manual_seed(0); torch.set_num_threads(1)
probe = cpu_history.start({directory!r})
model = nn.Sequential(nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 256))
opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
"""
KERNEL_LOOP = """import time
val_loss = 0.0
for step in range(3000):
    x = torch.randn(64, 256)
    loss = model(x).pow(2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    if step % {period} == {period} - 1:
        xv = torch.randn(64, 256)
        val_loss += model(xv).pow(2).mean()
    if probe.triage_path.exists():
        break
    time.sleep(0.002)
"""


@pytest.mark.parametrize("period", [5, 25])
def test_a_kernel_leaking_every_nth_step_is_triaged_to_its_cell_line(tmp_path, period):
    pytest.importorskip("torch")
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    try:
        reply = kc.execute_interactive(KERNEL_SETUP.format(tests=str(HERE), directory=str(tmp_path)), timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
        msg_id = kc.execute(KERNEL_LOOP.format(period=period))
        pid = km.provisioner.process.pid

        def finished() -> bool:
            try:
                while True:
                    m = kc.get_shell_msg(timeout=0)
                    if m["parent_header"].get("msg_id") == msg_id:
                        return True
            except Exception:  # noqa: BLE001 - queue.Empty: still running
                return False

        f = follow_until_triaged(tmp_path, pid, finished)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    t = f.triage
    # the kernel compiles a cell to /tmp/ipykernel_<pid>/<hash>.py: the line is the cell's
    assert t["state"] == "done" and t["message"].startswith(f"`cell line 9 {LEAK_CODE}`"), t["message"]
    assert f"every {period} steps" in t["message"]
    assert t["stacks"][0]["where"].endswith(".py:9 <module>") and "ipykernel_" in t["stacks"][0]["where"]
    assert t["recording"]["stopped"] == "increments" and t["recording"]["increments"] == 2
    assert json.loads(json.dumps(t)) == t


# -- recorded on an H200 ----------------------------------------------------------------------

H200 = HERE / "data" / "leaks" / "h200-triage-period"


@pytest.mark.parametrize("period, steps", [(5, 11), (25, 31)])
def test_recorded_h200_triage_names_the_validation_line(period, steps):
    """torch's own history (tests/gpu/triage_period_proof.py on an H200): the user's line holds
    the surviving graph, 20 MiB an increment; the last step's gradients (256 MiB, no Python
    frame) rank below it."""
    out = triage_result(json.loads((H200 / f"every_{period}th.triage.json").read_text()))
    assert out["state"] == "done" and out["steps"] == steps
    assert out["message"].startswith(f"`triage_period_proof.py:67 {LEAK_CODE}")
    assert f"keeps 20 MiB every {period} steps (40 MiB over {steps} steps)" in out["message"]
    assert out["recording"]["stopped"] == "increments" and out["recording"]["increments"] == 2
    torch_own = next(s for s in out["stacks"] if s["where"] == "<inside torch>")
    assert torch_own["bytes"] >= 256 * MiB and out["stacks"][0]["bytes"] == 40 * MiB
