"""The ``leaks`` command's contract: exactly one JSON object with exactly the documented fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_gpu_panel.cli import main
from jupyter_gpu_panel.memory.traces import read_records, sibling_mem_total
from jupyter_gpu_panel.memory.verdict import verdict_from_records

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
H100 = ROOT / "tests" / "data" / "traces" / "h100"
H200_ROUND2 = ROOT / "tests" / "data" / "leaks" / "h200-round2"
STEP_KEYS = {
    "source",
    "leak",
    "actionable",
    "onset_step",
    "bytes_per_step",
    "bytes_per_second",
    "steps_to_oom",
    "seconds_to_oom",
}
PROC_KEYS = {"pid", "leak", "actionable", "bytes_per_second", "seconds_to_oom"}
MiB = 2**20
GiB = 2**30


def leaks_json(capsys, *args: str) -> dict:
    rc = main(["leaks", *args, "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out  # exactly one JSON object
    return json.loads(lines[0])


def test_steps_trace(capsys):
    out = leaks_json(capsys, str(H100 / "leak_hidden.iters.jsonl"))
    assert set(out) == STEP_KEYS
    assert out["source"] == "steps"
    assert out["leak"] is True and out["actionable"] is True
    assert out["onset_step"] == 0
    assert out["bytes_per_step"] == pytest.approx(32 * MiB)
    assert out["bytes_per_second"] > 1e9
    assert isinstance(out["steps_to_oom"], float) and isinstance(out["seconds_to_oom"], float)


def test_healthy_steps_trace(capsys):
    out = leaks_json(capsys, str(H100 / "healthy_grad_accum.iters.jsonl"))
    assert set(out) == STEP_KEYS
    assert out["leak"] is False and out["actionable"] is False
    assert out["onset_step"] is None and out["steps_to_oom"] is None and out["seconds_to_oom"] is None
    assert out["bytes_per_step"] == 0.0


def test_capacity_overrides(capsys):
    # a run that has not run out of memory yet (one that did gets no forecast: the OOM explains it)
    path = str(H100 / "leak_hidden.iters.jsonl")
    card = leaks_json(capsys, path)
    capped = leaks_json(capsys, path, "--capacity", str(0.15 * 85520809984))
    assert capped["steps_to_oom"] < card["steps_to_oom"] / 5
    # a slow leak is actionable only when the memory is nearly full
    slow = str(H100 / "leak_loss_tensor.iters.jsonl")
    assert leaks_json(capsys, slow)["actionable"] is False
    tight = leaks_json(capsys, slow, "--capacity", str(4 * 2**30))
    assert tight["leak"] is True and tight["actionable"] is True


def test_capacity_of_the_card_is_an_upper_bound_when_a_second_process_takes_it(capsys, tmp_path):
    """Issue 19 item 6: a second process took all but 8 GiB of the card from iteration 519; the
    leak (64 MiB an iteration) ran out of memory at 644. Given ``--capacity`` (the card), the CLI
    once let it replace the device's free memory the records carry and forecast 14x too late;
    now the forecast is the same with it as without, the server's, and right."""
    trace = H200_ROUND2 / "second_process.iters.jsonl"
    card = sibling_mem_total(trace)
    records = read_records(trace)[:550]  # the verdict at iteration 548, 29 after the card was taken
    path = tmp_path / trace.name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "meta.jsonl").write_text((H200_ROUND2 / "meta.jsonl").read_text())  # the card beside it
    plain = leaks_json(capsys, str(path))
    with_card = leaks_json(capsys, str(path), "--capacity", str(card))
    server = verdict_from_records(records, default_capacity=card)  # what the tracker serves
    assert server["headroom_bound"] == "device free" and server["actionable"]
    assert with_card == plain
    for key in STEP_KEYS - {"source"}:
        assert plain[key] == (pytest.approx(server[key], rel=1e-9) if isinstance(server[key], float) else server[key])
    assert abs(server["current_step"] + plain["steps_to_oom"] - 644) <= 5  # out of memory at 644
    # a capacity below what the records allow is the bound then
    tight = leaks_json(capsys, str(path), "--capacity", str(server["level"] + 2 * GiB))
    assert tight["steps_to_oom"] == pytest.approx(32, abs=2)  # 2 GiB at 64 MiB an iteration


def test_nvml_trace_and_pid(capsys):
    path = str(H100 / "two_procs_one_leaks.nvml.jsonl")
    out = leaks_json(capsys, path)
    assert set(out) == {"source", "processes"} and out["source"] == "nvml"
    by_pid = {p["pid"]: p for p in out["processes"]}
    assert set(by_pid) == {400, 512}
    for p in by_pid.values():
        assert set(p) == PROC_KEYS
    assert by_pid[400]["actionable"] and not by_pid[512]["actionable"]
    only = leaks_json(capsys, path, "--pid", "512")
    assert [p["pid"] for p in only["processes"]] == [512]
    # a pid the trace does not hold is an error that lists the pids it does hold
    assert main(["leaks", path, "--pid", "999", "--json"]) == 2
    err = capsys.readouterr().err
    assert "no process 999" in err and "400, 512" in err


def test_prefix_of_a_trace(capsys, tmp_path):
    lines = (H100 / "leak_onset_200.iters.jsonl").read_text().splitlines(keepends=True)
    early = tmp_path / "early.iters.jsonl"
    early.write_text("".join(lines[:150]))
    assert leaks_json(capsys, str(early), "--capacity", "85520809984")["leak"] is False
    later = tmp_path / "later.iters.jsonl"
    later.write_text("".join(lines[:231]) + lines[231][:20])  # cut mid-line, as a live file
    out = leaks_json(capsys, str(later), "--capacity", "85520809984")
    assert out["actionable"] is True and out["onset_step"] == 200
    nv = (H100 / "leak_hidden.nvml.jsonl").read_text().splitlines(keepends=True)
    part = tmp_path / "part.nvml.jsonl"
    part.write_text("".join(nv[:60]))
    assert leaks_json(capsys, str(part))["processes"][0]["actionable"] is True


def test_default_capacity_from_the_probe_limit(capsys, tmp_path):
    # a probe file records the limit it can use: 2 GiB here, so a 1 MiB/step leak from 1.5 GiB is near
    alloc = [int(1.5 * 2**30) + i * MiB for i in range(200)]
    rows = [
        {"i": i, "t": 1.79e9 + 0.02 * i, "allocated": a, "reserved": a + 64 * MiB, "limit": 2**31}
        for i, a in enumerate(alloc)
    ]
    p = tmp_path / "probe-1.iters.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = leaks_json(capsys, str(p))
    assert out["actionable"] is True
    # no peak readings: the reserve stands in for the step's working set
    assert out["steps_to_oom"] == pytest.approx((2**31 - (alloc[-1] + 64 * MiB)) / MiB, rel=0.01)


def test_bad_input(capsys, tmp_path):
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"hello": 1}\nnot json\n')
    assert main(["leaks", str(junk), "--json"]) == 2
    assert "not a trace" in capsys.readouterr().err
    assert main(["leaks", str(tmp_path / "missing.jsonl"), "--json"]) == 2


def test_human_output(capsys):
    assert main(["leaks", str(H100 / "leak_hidden.iters.jsonl")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Leaking 32 MiB a step, full in ~")
    assert "growing since step 0" in out


def test_human_output_per_process(capsys):
    """NVML traces: one line per pid, the leaking one named, the healthy one clean."""
    assert main(["leaks", str(H100 / "two_procs_one_leaks.nvml.jsonl")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("pid 400: Leaking ") and "MiB/s, full in ~" in lines[0]
    assert lines[1] == "pid 512: No memory growth."


def test_console_entry_point():
    """The command as external scripts call it: a fresh interpreter, one JSON line on stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_gpu_panel",
            "leaks",
            str(H100 / "leak_hidden_oom.nvml.jsonl"),
            "--pid",
            "400",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["processes"][0]["pid"] == 400 and out["processes"][0]["actionable"] is True
