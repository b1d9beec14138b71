"""The leak detector on synthetic series: one per pattern the issue lists, healthy and leaking.

Every healthy pattern is checked at *every* prefix (a live run seen half-way), not only at
its end; every leak must be found, actionable ones in time, tiny ones reported but not
alarmed. The numbers mimic the recorded H100 runs: ~1.1 GiB retained, 80 GiB card,
~22 ms a step, 32 MiB/step leaks.
"""

from __future__ import annotations

import numpy as np
import pytest

from jupyter_gpu_panel.memory import cells as cell_leaks
from jupyter_gpu_panel.memory import detector, fragmentation, growth, triage
from jupyter_gpu_panel.memory.verdict import nvml_verdicts, verdict_from_records
from jupyter_gpu_panel.probe import protocol

MiB = 2**20
GiB = 2**30
CARD = 85_520_809_984  # an H100's mem_total
BASE = 1122 * MiB
STEP_S = 0.022


def run(alloc, *, peak=None, capacity=CARD, step_s=STEP_S, reserved=None, retries=None):
    alloc = np.asarray(alloc, dtype=float)
    n = len(alloc)
    steps = np.arange(n, dtype=float)
    t = 1.79e9 + step_s * steps
    return detector.analyze_steps(
        steps, alloc, capacity=capacity, t=t, peak=peak, reserved=reserved, alloc_retries=retries
    )


def first_actionable(alloc, start=3, **kw):
    for n in range(start, len(alloc) + 1):
        if run(alloc[:n], **{k: (v[:n] if isinstance(v, np.ndarray) else v) for k, v in kw.items()}).actionable:
            return n - 1  # index of the last reading seen
    return None


def assert_never_alarms(alloc, every=1, **kw):
    for n in range(3, len(alloc) + 1, every):
        rep = run(alloc[:n], **{k: (v[:n] if isinstance(v, np.ndarray) else v) for k, v in kw.items()})
        assert not rep.actionable, f"false alarm at step {n - 1}: {rep.reason}"
        assert not rep.leak, f"leak reported at step {n - 1}"


# --------------------------------------------------------------------------- healthy


def warmup_plateau(n=400):
    a = np.full(n, BASE + 2 * 280 * MiB)  # AdamW's two states appear at step 1
    a[0] = BASE
    return a


def test_warmup_then_plateau_never_alarms():
    assert_never_alarms(warmup_plateau())


def test_eval_spikes_never_alarm():
    a = warmup_plateau()
    a[49::50] += 2 * GiB  # a no_grad eval of a 2x batch read at the step boundary
    assert_never_alarms(a)


def test_grad_accumulation_sawtooth_never_alarms():
    a = warmup_plateau(400)
    grads = 352 * MiB
    a[np.arange(400) % 8 != 7] += grads  # grads live between the micro-steps
    assert_never_alarms(a)


def test_reference_cycle_sawtooth_never_alarms():
    # a 12 MiB activation a step held by reference cycles, freed when gc runs every 12 steps
    i = np.arange(400)
    a = BASE + 12 * MiB * (i % 12 + 1)
    assert_never_alarms(a)


def test_one_time_step_up_never_alarms():
    a = warmup_plateau()
    a[150:] += 160 * MiB  # an EMA copy of the weights switched on mid-run
    assert_never_alarms(a)
    b = warmup_plateau()
    b[150:] += 32 * 1024  # batch size doubled: a few more buffers kept
    b[151:] += 2 * MiB
    assert_never_alarms(b)


def test_bounded_cache_that_fills_then_stops_never_alarms():
    # a deque of the last 16 feature batches, 32 MiB each: grows 16 steps like a leak, then stops
    a = warmup_plateau()
    a[100:] += 32 * MiB * np.minimum(np.arange(300) + 1, 16)
    assert_never_alarms(a)


def test_varying_shapes_noise_never_alarms():
    rng = np.random.default_rng(1)
    a = warmup_plateau() + rng.integers(-30 * 1024, 30 * 1024, 400)
    assert_never_alarms(a)


def nvml_settling(seed=0, n=300, dt=0.1):
    """Reserve + context seen by NVML: warm-up, then growth in bursts that get rarer."""
    rng = np.random.default_rng(seed)
    t = 1.79e9 + dt * np.arange(n)
    used = np.full(n, 700.0 * MiB)
    used[2:] += 3.9 * GiB  # CUDA context, weights, first steps' blocks
    for k in (4, 5, 7, 9, 13, 19, 29, 47, 80, 140):  # new largest shapes: ever rarer
        used[k:] += float(rng.choice([2, 20, 64, 128, 256])) * MiB
    return t, used


def test_reserve_growing_in_steps_then_settling_never_alarms():
    for seed in range(5):
        t, used = nvml_settling(seed)
        for n in range(5, len(t) + 1):
            rep = detector.analyze_time(t[:n], used[:n], capacity=CARD)
            assert not rep.actionable, f"seed {seed}: alarm at sample {n - 1}: {rep.reason}"


def test_empty_cache_drops_never_alarm():
    # the reserve regrows within a few samples after every empty_cache()
    n = 400
    t = 1.79e9 + 0.1 * np.arange(n)
    phase = np.arange(n) % 40
    used = 4.5 * GiB + np.minimum(phase, 4) * 256 * MiB
    for n_ in range(5, n + 1):
        assert not detector.analyze_time(t[:n_], used[:n_], capacity=CARD).actionable
    a = warmup_plateau()  # allocated is untouched by empty_cache: the steps view is flat
    assert not run(a).leak


def test_nvml_creep_of_small_segments_is_not_a_leak():
    # lazily loaded kernels and 2 MiB small-pool segments: a steady creep of a few MiB/s
    n = 600
    t = 1.79e9 + 0.1 * np.arange(n)
    used = 2670.0 * MiB + 2 * MiB * (np.arange(n) // 15)
    rep = detector.analyze_time(t, used, capacity=CARD)
    assert not rep.actionable and not rep.leak
    assert "MiB" in rep.reason


# --------------------------------------------------------------------------- leaking


def steady(n=400, rate=32 * MiB, onset=0, base=BASE + 560 * MiB):
    i = np.arange(n)
    return base + rate * np.clip(i - onset + 1, 0, None)


def test_steady_leak_found_within_30_steps_with_rate_and_forecast():
    a = steady()
    first = first_actionable(a)
    assert first is not None and first <= 30
    rep = run(a)
    assert rep.leak and rep.actionable
    assert rep.rate == pytest.approx(32 * MiB)
    assert rep.bytes_per_second == pytest.approx(32 * MiB / STEP_S, rel=1e-4)  # clock rounding
    headroom = CARD - a[-1]
    assert rep.to_oom == pytest.approx(headroom / (32 * MiB), rel=1e-6)
    assert rep.seconds_to_oom == pytest.approx(rep.to_oom * STEP_S, rel=1e-4)
    assert rep.onset_step == 0


def test_leak_starting_mid_run():
    a = steady(onset=200)
    first = first_actionable(a)
    assert first is not None and 200 <= first <= 230
    rep = run(a)
    assert rep.onset_step == 200
    assert rep.rate == pytest.approx(32 * MiB)
    assert not run(a[:200]).leak


def test_staircase_leak_every_8th_step():
    i = np.arange(400)
    a = BASE + 256 * MiB * ((i + 1) // 8)  # every 8th step keeps 256 MiB: 32 MiB a step
    first = first_actionable(a)
    assert first is not None and first <= 30
    rep = run(a)
    assert rep.rate == pytest.approx(32 * MiB, rel=0.1)


def test_very_fast_leak_warns_while_there_is_time():
    # capped process: 12 GiB, working set 3 GiB on top of what a step keeps, 512 MiB/step
    cap = 12 * GiB
    onset = 100
    a = steady(n=200, rate=512 * MiB, onset=onset, base=1.2 * GiB)
    peak = a + 3 * GiB
    oom_at = onset + int(np.ceil((cap - 3 * GiB - 1.2 * GiB) / (512 * MiB)))  # ~ onset + 16
    a, peak = a[:oom_at], peak[:oom_at]
    first = first_actionable(a, peak=peak, capacity=cap)
    assert first is not None
    assert oom_at - first >= 5, f"alarm at {first}, OOM at {oom_at}"
    rep = run(a[: first + 1], peak=peak[: first + 1], capacity=cap)
    assert rep.to_oom == pytest.approx(oom_at - first, rel=0.35)


def test_view_pinning_a_large_storage():
    # a 1-element view of the 64 MiB logits kept each step: allocated grows by the storage
    a = steady(rate=64 * MiB)
    first = first_actionable(a)
    assert first is not None and first <= 30


def test_leak_hidden_under_healthy_patterns():
    a = steady(rate=8 * MiB)
    a[np.arange(400) % 8 != 7] += 352 * MiB  # gradient accumulation
    a[49::50] += 2 * GiB  # eval spikes
    rep = run(a)
    assert rep.leak and rep.actionable
    assert rep.rate == pytest.approx(8 * MiB, rel=0.1)


def test_noisy_leak():
    rng = np.random.default_rng(3)
    a = steady(n=600, rate=MiB) + rng.integers(-30 * 1024, 30 * 1024, 600)
    rep = run(a)
    assert rep.leak and rep.actionable
    assert rep.rate == pytest.approx(MiB, rel=0.1)


def test_tiny_leak_reported_not_alarmed():
    a = steady(n=600, rate=512)
    rep = run(a)
    assert rep.leak and not rep.actionable
    assert rep.rate == 512
    assert rep.seconds_to_oom > growth.ACTIONABLE_SECONDS
    # the same slope on a nearly full card is actionable: the verdict is about headroom
    assert run(a, capacity=a[-1] + 512 * 1000).actionable


def test_capacity_decides_actionable_for_a_slow_leak():
    a = steady(n=400, rate=10240, base=450 * MiB)  # 10 KiB a step at 2.75 ms: fills 80 GB in ~6 h
    assert run(a, step_s=0.00275).actionable
    assert not run(a, step_s=2.0).actionable  # same bytes a step, 730x slower steps: weeks


def test_two_processes_blame_the_leaking_one():
    n = 170
    t = 1.79e9 + 0.1 * np.arange(n)
    leaky = 1.2 * GiB + 3.9 * GiB * (np.arange(n) >= 1) + 256 * MiB * (np.arange(n) // 3)
    healthy = 0.9 * GiB + 4.2 * GiB * (np.arange(n) >= 14)
    rows = [
        {
            "t": float(t[k]),
            "mem_used": int(leaky[k] + healthy[k] + 500 * MiB),
            "mem_total": CARD,
            "procs": [{"pid": 400, "used": int(leaky[k])}, {"pid": 512, "used": int(healthy[k])}],
        }
        for k in range(n)
    ]
    out = {p["pid"]: p for p in nvml_verdicts(rows)}
    assert out[400]["leak"] and out[400]["actionable"]
    assert not out[512]["leak"] and not out[512]["actionable"]
    assert out[400]["bytes_per_second"] == pytest.approx(256 * MiB / 0.3, rel=0.15)
    only = nvml_verdicts(rows, pid=512)
    assert [p["pid"] for p in only] == [512]


# --------------------------------------------------------------------------- pieces


def test_required_evidence_grows_with_headroom():
    assert growth.required_evidence(5) == growth.EVIDENCE_MIN
    assert growth.required_evidence(25) < growth.required_evidence(2200) < growth.required_evidence(1e7)
    assert growth.required_evidence(2200) <= 25  # a 32 MiB/step leak on an 80 GB card: < 30 steps
    assert growth.required_evidence(1e12) == growth.EVIDENCE_MAX


def test_step_transient_uses_new_peaks_only():
    alloc = np.array([1.0, 2.0, 3.0, 3.0, 3.0]) * GiB
    peak = np.array([4.0, 5.0, 6.0, 6.0, 6.0]) * GiB  # the working set is 3 GiB
    assert detector.step_transient(alloc, peak) == pytest.approx(3 * GiB)
    # a drop in allocated with an old peak is not a bigger working set
    assert detector.step_transient(np.array([3.0, 1.0]) * GiB, np.array([6.0, 6.0]) * GiB) == pytest.approx(3 * GiB)


def test_too_few_readings():
    rep = run([BASE, BASE + MiB])
    assert not rep.leak and rep.reason == "too few readings"


def test_unsorted_and_missing_readings_are_tolerated():
    a = steady(n=100)
    steps = np.arange(100, dtype=float)
    order = np.random.default_rng(0).permutation(100)
    alloc = a[order].astype(object)
    alloc[5] = None
    rep = detector.analyze_steps(steps[order], alloc, capacity=CARD, t=1.79e9 + STEP_S * steps[order])
    assert rep.leak and rep.rate == pytest.approx(32 * MiB)


def test_json_fields():
    js = run(steady()).to_json()
    for key in (
        "leak",
        "actionable",
        "onset_step",
        "bytes_per_step",
        "bytes_per_second",
        "steps_to_oom",
        "seconds_to_oom",
    ):
        assert key in js
    assert js["onset_step"] == 0 and isinstance(js["onset_step"], int)
    healthy = run(warmup_plateau()).to_json()
    assert healthy["steps_to_oom"] is None and healthy["bytes_per_step"] == 0.0


# --------------------------------------------------------------------------- fragmentation


def test_fragmentation_flagged_and_forecast_uses_the_reserve():
    n = 200
    cap = 12 * GiB
    a = np.full(n, 6.0 * GiB)
    reserved = np.full(n, 11.5 * GiB)  # 96% of the cap reserved, half of it free in pieces
    retries = np.arange(n) // 10
    frag = fragmentation.fragmentation_check(a, reserved, cap, retries=retries)
    assert frag["fragmented"] and frag["retries_rising"]
    assert "expandable_segments" in frag["message"]
    assert "ragmentation" in frag["message"]
    healthy = fragmentation.fragmentation_check(a, np.full(n, 7 * GiB), cap, retries=retries)
    assert not healthy["fragmented"]
    calm = fragmentation.fragmentation_check(a, reserved, cap, retries=np.zeros(n))
    assert not calm["fragmented"]

    leak = steady(n=n, rate=8 * MiB, base=4 * GiB)
    res = leak + 5.5 * GiB
    plain = run(leak, capacity=cap)
    fragged = run(leak, capacity=cap, reserved=res, retries=retries.astype(float))
    assert fragged.fragmentation["fragmented"]
    assert fragged.to_oom < plain.to_oom  # the reserve, not allocated, meets the cap first


def test_fragmentation_in_the_verdict_on_probe_records():
    recs = [
        {"i": k, "allocated": 6 * GiB, "reserved": int(11.6 * GiB), "alloc_retries": k, "limit": 12 * GiB}
        for k in range(5)
    ]
    assert verdict_from_records(recs)["fragmentation"]["fragmented"]
    calm = [dict(r, alloc_retries=0) for r in recs]  # no retries: not near an OOM from fragmentation
    assert not verdict_from_records(calm)["fragmentation"]["fragmented"]


# --------------------------------------------------------------------------- per cell


def test_cell_rerun_keeping_memory_is_reported():
    cells = []
    alloc = BASE
    for _k in range(4):
        cells.append({"cell": "setup", "allocated": alloc})
        alloc += 256 * MiB  # Out[n] keeps the returned tensor of every run
        cells.append({"cell": "eval", "allocated": alloc})
    out = cell_leaks.analyze_cells(cells)
    assert [c["cell"] for c in out["leaking_cells"]] == ["eval"]
    assert out["leaking_cells"][0]["bytes_per_run"] == 256 * MiB
    assert "%reset" in out["message"] and "Out" in out["message"]


def test_cell_reruns_that_free_memory_are_fine():
    cells = [{"cell": "train", "allocated": BASE + (k % 2) * GiB} for k in range(6)]
    assert cell_leaks.analyze_cells(cells)["leaking_cells"] == []


def test_failed_cell_blames_the_traceback():
    cells = [{"cell": "boom", "allocated": BASE + k * 64 * MiB, "error": True} for k in range(3)]
    out = cell_leaks.analyze_cells(cells)
    assert out["leaking_cells"][0]["errors"] == 3
    assert "traceback" in out["message"]


# --------------------------------------------------------------------------- triage


def _frame(f, line, name):
    return {"filename": f, "line": line, "name": name}


def test_triage_names_the_stack_whose_tensors_survive():
    torch_frame = _frame("/usr/lib/python3/site-packages/torch/nn/modules/module.py", 1750, "_call_impl")
    events = []
    addr = 0x1000
    for _step in range(4):
        # the forward's activations are freed every step
        for _k in range(3):
            events.append(
                {
                    "action": "alloc",
                    "addr": addr,
                    "size": 8 * MiB,
                    "frames": [torch_frame, _frame("train.py", 40, "step")],
                }
            )
            events.append({"action": "free_requested", "addr": addr, "size": 8 * MiB})
            events.append({"action": "free_completed", "addr": addr, "size": 8 * MiB})
            addr += 0x10
        # ... but the hidden state appended to a list survives
        events.append(
            {"action": "alloc", "addr": addr, "size": 32 * MiB, "frames": [torch_frame, _frame("train.py", 42, "step")]}
        )
        addr += 0x10
    snap = {"segments": [], "device_traces": [events]}
    out = triage.triage_snapshot(snap, steps=4, source_line=lambda f, n: "h = model(x)" if n == 42 else None)
    top = out["stacks"][0]
    assert top["where"] == "train.py:42 step"
    assert top["bytes_per_step"] == 32 * MiB and top["count"] == 4
    assert len(out["stacks"]) == 1
    assert out["message"] == "`train.py:42 h = model(x)` keeps 32 MiB a step"


@pytest.mark.parametrize("markers", [True, False])
def test_triage_tells_a_leak_from_what_the_last_step_still_holds(markers):
    """As on the H100: the last step's parameter gradients (allocated by autograd, no Python
    frame; 4 parameters) survive too, as many as the steps recorded; only the leak survives
    from every step. The probe marks step boundaries with a tiny allocation."""
    marker = {
        "action": "alloc",
        "size": 512,
        "frames": [_frame("/x/jupyter_gpu_panel/probe.py", 1, protocol.STEP_MARKER)],
    }
    events, addr = [], 0x1000

    def ev(action, a, size, frames=()):
        events.append({"action": action, "addr": a, "size": size, "frames": list(frames)})

    def mark():
        nonlocal addr
        if markers:
            events.append({**marker, "addr": addr})
            ev("free_completed", addr, 512)
            addr += 0x10

    grads: list[int] = []
    mark()
    for _step in range(4):
        for a in grads:  # zero_grad(set_to_none=True) frees the previous step's gradients
            ev("free_completed", a, 64 * MiB)
        ev("alloc", addr, 32 * MiB, [_frame("cell.py", 8, "<module>")])  # h, appended to a list
        addr += 0x10
        grads = []
        for _ in range(4):
            ev("alloc", addr, 64 * MiB, [])
            grads.append(addr)
            addr += 0x10
        mark()
    out = triage.triage_snapshot({"device_traces": [events]}, steps=4, source_line=lambda f, n: "h = model[0](x)")
    top, second = out["stacks"][:2]
    assert top["where"] == "cell.py:8 <module>" and top["every_step"] and top["steps_kept"] == 4
    assert second["where"] == "<inside torch>" and second["count"] == 4 and not second["every_step"]
    assert out["message"] == "`cell.py:8 h = model[0](x)` keeps 32 MiB a step"


def test_triage_with_nothing_surviving():
    snap = {"device_traces": [[{"action": "alloc", "addr": 1, "size": 10}, {"action": "free_completed", "addr": 1}]]}
    out = triage.triage_snapshot(snap, steps=2)
    assert out["stacks"] == [] and out["message"] is None


def test_triage_on_a_real_allocation_history():
    """A snapshot recorded on an H100 (tests/data/leaks/record_snapshot.py): 4 steps keeping ``h``."""
    import json
    import linecache
    from pathlib import Path

    data = Path(__file__).resolve().parent / "data" / "leaks"
    snap = json.loads((data / "snapshot_leak.json").read_text())
    local = data / "record_snapshot.py"

    def source_line(filename: str, line: int):
        return linecache.getline(str(local), line) if filename.endswith("record_snapshot.py") else None

    out = triage.triage_snapshot(snap, steps=snap["steps"], source_line=source_line)
    top = out["stacks"][0]
    assert top["where"].endswith("record_snapshot.py:27 step")  # h = model[1](model[0](x))
    assert top["every_step"] and top["count"] == 4
    assert top["bytes_per_step"] == 32 * MiB
    assert out["message"] == "`record_snapshot.py:27 h = model[1](model[0](x))` keeps 32 MiB a step"
    # the forward's other activations, the gradients and the optimizer's temporaries were freed
    assert all(not s["every_step"] for s in out["stacks"][1:])


def test_triage_names_a_notebook_cell_as_such():
    frames = [_frame("/tmp/ipykernel_448/2819381951.py", 8, "<module>")]
    events = [{"action": "alloc", "addr": a, "size": 32 * MiB, "frames": frames} for a in range(4)]
    out = triage.triage_snapshot({"device_traces": [events]}, steps=4, source_line=lambda f, n: "h = model[0](x)")
    assert out["message"] == "`cell line 8 h = model[0](x)` keeps 32 MiB a step"
