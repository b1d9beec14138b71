"""The OOM, explained (issue 19 item 4): recorded OOMs, and the probe's record on this CPU machine.

The recorded traces end with the line their loop wrote when it raised ``OutOfMemoryError``
(torch's own message): the verdict turns to ``oom``, says where and what was asked, and
forecasts nothing more. The probe's record is exercised with a real ``OutOfMemoryError`` carrying
torch's real text, raised after a loop that keeps its autograd graph (``val_loss += ...``): CPU
tensors stand in for the device's (``holds``), everything else is the probe's own code.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")  # in the test extra; CI turns a skip into a failure

from test_probe import CPUProbe, train  # noqa: E402

from jupyter_gpu_panel.memory.follower import Probes  # noqa: E402
from jupyter_gpu_panel.memory.oom import short_place, valid_oom  # noqa: E402
from jupyter_gpu_panel.memory.verdict import verdict_from_records  # noqa: E402
from jupyter_gpu_panel.memory.wording import oom_message  # noqa: E402
from jupyter_gpu_panel.probe import protocol as P  # noqa: E402

from conftest import ROOT, TRACES  # noqa: E402

ROUND2 = ROOT / "tests" / "data" / "leaks" / "h200-round2"
OOM_TRACES = [TRACES / "h100" / "leak_hidden_oom.iters.jsonl"] + sorted(
    f for f in ROUND2.glob("*.iters.jsonl") if '"oom": true' in f.read_text()
)
#: torch 2.11's message for a process capped by ``set_per_process_memory_fraction`` (from a trace).
OOM_TEXT = json.loads((ROUND2 / "leak_oom_1gib.iters.jsonl").read_text().splitlines()[-1])[P.OOM_MESSAGE]
GiB, MiB = 2**30, 2**20


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_there_are_recorded_ooms():
    assert len(OOM_TRACES) >= 6


@pytest.mark.parametrize("path", OOM_TRACES, ids=lambda p: p.name)
def test_a_recorded_oom_turns_the_verdict_to_oom_and_forecasts_nothing(path):
    recs = records(path)
    last = recs[-1]
    v = verdict_from_records(recs)
    assert v["state"] == "oom"
    oom = v["oom"]
    assert oom["step"] == last.get(P.ITER, last[P.INDEX])
    assert oom["requested"] == P.oom_numbers(last[P.OOM_MESSAGE])[P.OOM_REQUESTED] > 0
    assert 0 < oom["allocated"] <= oom["reserved"]
    assert v["message"].startswith(f"Ran out of memory at step {oom['step']:,}.")
    assert "full in" not in v["message"] and v["forecast"] is None and v["seconds_to_oom"] is None
    assert f"It asked for {oom['requested'] // MiB} MiB" in v["message"]
    assert oom["source"] == "recorded" and oom["holders"] == [] and oom["advice"]


def test_steps_after_an_oom_mean_the_loop_caught_it():
    """A batch-size finder catches its own OOM and goes on: the verdict is not ``oom``."""
    recs = records(TRACES / "h100" / "leak_hidden_oom.iters.jsonl")
    after = [{**r, P.INDEX: r[P.INDEX] + len(recs)} for r in recs[:-1][-5:]]
    v = verdict_from_records(recs + after)
    assert v["state"] == "running" and v["oom"] is None and "Ran out of memory" not in v["message"]


def test_the_message_numbers_are_torchs():
    got = P.oom_numbers(OOM_TEXT)
    assert got[P.OOM_REQUESTED] == 64 * MiB
    assert got[P.LIMIT] == pytest.approx(11.18 * GiB, rel=1e-3)
    assert got[P.RESERVED] - got[P.ALLOCATED] == pytest.approx(28.47 * MiB, rel=1e-3)
    assert P.oom_numbers("CUDA error: an illegal memory access") == {} and P.oom_numbers(None) == {}
    assert P.is_cuda_oom(torch.OutOfMemoryError(OOM_TEXT))
    assert P.is_cuda_oom(RuntimeError(OOM_TEXT)) and not P.is_cuda_oom(RuntimeError("shape mismatch"))


def test_a_bad_oom_line_keeps_only_what_is_well_formed():
    rec = {
        P.INDEX: 9, P.OOM: True, P.ITER: -1, P.OOM_REQUESTED: "lots", P.ALLOCATED: 2**70, P.OOM_SOURCE: "magic",
        P.OOM_HOLDERS: [{P.HOLDER_BYTES: 5, P.HOLDER_HOW: "history"}, "x", {P.HOLDER_BYTES: -1}] * 9,
        P.OOM_SITE: {P.FRAME_FILE: "a.py", P.FRAME_LINE: "3"}, P.CELL: ["not", "a", "cell"],
    }  # fmt: skip
    got = valid_oom(rec, 9)
    assert P.ITER not in got and got[P.OOM_REQUESTED] is None and got[P.ALLOCATED] is None
    assert got[P.OOM_SOURCE] == "recorded" and got[P.OOM_SITE] is None and got[P.CELL] is None
    assert got[P.OOM_HOLDERS] == []  # no line and no name: nothing to show
    v = verdict_from_records([rec])  # an OOM before any step still explains itself
    assert v["state"] == "oom" and v["message"] == "Ran out of memory at step 9."


def test_wording_names_the_holder_and_the_cell():
    oom = {
        "step": 557, "step_word": "step", "execution_count": 12, "requested": 256 * MiB,
        "allocated": int(6.9 * GiB), "reserved": 7 * GiB, "limit": 7 * GiB, "cell": "c1",
        "holders": [
            {"bytes": 2 * GiB, "where": "cell line 2", "code": "model = Net().cuda()", "name": "model", "model": True},
            {"bytes": int(5.2 * GiB), "where": "cell line 8", "code": "val_loss += model(xv).pow(2).mean()",
             "name": "val_loss", "model": False, "graph": True},
        ],
    }  # fmt: skip
    assert oom_message(oom) == (
        "Ran out of memory at step 557 in cell [12]; `val_loss += model(xv).pow(2).mean()` (cell line 8) holds"
        " 5.2 GiB. It asked for 256 MiB with 6.9 GiB allocated and 7 GiB reserved of 7 GiB."
    )
    assert short_place("/tmp/ipykernel_4242/123456789.py", 8) == "cell line 8"
    assert short_place("/home/u/train.py", 42) == "train.py:42"


# -- the probe's own record ------------------------------------------------------------------


class HoldingProbe(CPUProbe):
    """CPU tensors stand in for the device's: what the OOM walk counts."""

    def holds(self, tensor):
        return True


def leaking_eval(w, steps):
    val_loss = torch.zeros(())
    for _ in range(steps):
        x = torch.randn(256, 256)
        val_loss += (x @ w).pow(2).mean()  # keeps every step's graph: x and x @ w
    raise torch.OutOfMemoryError(OOM_TEXT)


def oom_lines(p):
    return [r for r in map(json.loads, p.path.read_text().splitlines()) if r.get(P.OOM)]


def test_the_cell_hook_records_the_oom_with_the_line_that_holds_the_memory(tmp_path):
    CPUProbe.kept = []
    p = HoldingProbe(tmp_path)
    p.open()
    try:
        train(5)  # five optimizer steps: iterations 0..4
        w = torch.randn(256, 256, requires_grad=True)
        try:
            leaking_eval(w, 20)
        except torch.OutOfMemoryError as err:
            assert p.note_cell_error(err, "cell-7", 12) is True
        assert p.note_cell_error(ValueError("not memory"), "cell-8", 13) is False
        p._fh.flush()
        [rec] = oom_lines(p)
    finally:
        p.close()
    assert rec[P.ITER] == 5 and rec[P.KIND] == P.KIND_STEP and rec[P.OOM_SOURCE] == P.OOM_SOURCE_EXCEPTION
    assert rec[P.CELL] == "cell-7" and rec[P.EXECUTION_COUNT] == 12
    assert rec[P.OOM_REQUESTED] == 64 * MiB and rec[P.LIMIT] == P.oom_numbers(OOM_TEXT)[P.LIMIT]
    top = rec[P.OOM_HOLDERS][0]
    assert top[P.HOLDER_NAME] == "val_loss" and top[P.HOLDER_GRAPH] is True
    assert top[P.HOLDER_CODE].startswith("val_loss += (x @ w)")
    # 20 steps kept x and x @ w (256 KiB each, float32) in the graph
    assert top[P.HOLDER_BYTES] >= 20 * 2 * 256 * 1024
    assert rec[P.OOM_SITE][P.HOLDER_CODE] == "raise torch.OutOfMemoryError(OOM_TEXT)"

    # the server reads it: the verdict's words name the line and the cell
    probes = Probes(tmp_path)
    probes.poll()
    follower = probes.followers[p.pid]
    v = follower.judge()
    assert v["state"] == "oom" and v["oom"]["execution_count"] == 12
    assert v["message"].startswith("Ran out of memory at step 5 in cell [12]; `val_loss += (x @ w).pow(2).mean()` (")
    assert "holds" in v["message"] and v["forecast"] is None
    assert any("autograd graph" in a for a in v["oom"]["advice"])


def test_an_observed_oom_the_loop_caught_is_not_recorded(tmp_path):
    """torch's observer fires for every failed allocation, also those the code catches."""
    CPUProbe.kept = []
    p = HoldingProbe(tmp_path)
    p.open()
    try:
        train(2)
        p.on_oom_observed(p.device, 64 * MiB, GiB, 0)  # what torch's observer calls
        assert p._oom_pending[P.OOM_REQUESTED] == 64 * MiB
        train(1)  # the loop went on
        assert p._oom_pending is None
        p.on_oom_observed(p.device, 64 * MiB, GiB, 0)
        p.note_cell_error(None, "c", 3)  # the cell ended without an error: it was caught there
        assert p._oom_pending is None and oom_lines(p) == []
        p.on_oom_observed(p.device, 32 * MiB, GiB, 0)
        try:
            leaking_eval(torch.randn(256, 256, requires_grad=True), 3)
        except torch.OutOfMemoryError as err:
            p.note_cell_error(err, "c", 4)
        p._fh.flush()
        [rec] = oom_lines(p)
    finally:
        p.close()
    # the observer's numbers are the failure's: they win over the message's
    assert rec[P.OOM_SOURCE] == P.OOM_SOURCE_OBSERVER and rec[P.OOM_REQUESTED] == 32 * MiB and rec[P.LIMIT] == GiB
    assert rec[P.OOM_HOLDERS][0][P.HOLDER_NAME] == "val_loss"
