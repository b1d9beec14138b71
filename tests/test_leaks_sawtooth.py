"""Leaks under a sawtooth (issue 19 item 3): token-by-token generation, judged on the floor of
each sequence (``memory.sawtooth``).

The records are the probe's (``kind: forward``, one iteration a token), modelled on a
generation loop with a KV cache grown by ``torch.cat``: every token the cache grows by one
token's K and V (the concatenation holds the old and the new cache for a moment: the peak) and
the sequence's logits are collected; both are dropped when the sequence ends. The leaky loop
keeps each finished sequence's cache, so its floor rises one cache a sequence while every
drop still gives back the logits. Before this judge such a leak was flagged in the first
tooth, lost between teeth, and judged "no leak" just before its OOM.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest

from jupyter_gpu_panel.cli import main as cli_main
from jupyter_gpu_panel.memory import sawtooth
from jupyter_gpu_panel.memory.records import StepTrace, steps_from_records
from jupyter_gpu_panel.memory.verdict import verdict_from_records, verdict_from_trace

MiB = 2**20
GiB = 2**30
BASE = 2 * GiB  # the model's weights
KV = 1 * MiB  # one token's K and V, all layers
LOGITS = 2 * MiB  # one token's logits (batch 16, 32k vocabulary, fp32)
L = 120  # tokens a sequence
STEP_S = 0.006
#: the leak fills the process cap in ~20 sequences
LIMIT = BASE + 20 * L * KV + L * (KV + LOGITS) + 64 * MiB
DATA = Path(__file__).resolve().parent / "data" / "leaks" / "h200-round2"


def generation(
    lengths: list[int],
    *,
    keep_from: Optional[int] = 0,
    freed_at: Optional[int] = None,
    keep_last: Optional[int] = None,
    logits: int = LOGITS,
    limit: float = LIMIT,
) -> list[dict[str, Any]]:
    """Probe records of a generation loop: one sequence of ``lengths[s]`` tokens after another.

    ``keep_from``: the sequence from which each finished sequence's cache is kept (None: none,
    healthy); ``freed_at``: the sequence before which the kept caches are dropped (and none
    kept after: the leak fixed, ``del`` run);
    ``keep_last``: keep only that many (a bounded cache). Ends with the probe's OOM marker
    when a token's peak passes ``limit``.
    """
    recs: list[dict[str, Any]] = []
    kept: list[int] = []
    i, t = 0, 1.79e9
    for s, n_tok in enumerate(lengths):
        if freed_at is not None and s == freed_at:
            kept.clear()
        for j in range(n_tok):
            alloc = BASE + sum(kept) + j * (KV + logits)
            peak = alloc + (j + 1) * KV  # torch.cat: the old cache and the new one at once
            if peak > limit:
                recs.append({"i": i, "iter": i, "oom": True})
                return recs
            recs.append(
                {
                    "i": i,
                    "kind": "forward",
                    "iter": i,
                    "mod": 0,
                    "t": t,
                    "steps_per_iteration": 1,
                    "allocated": alloc,
                    "reserved": -(-peak // (2 * MiB)) * 2 * MiB,
                    "peak_allocated": peak,
                    "limit": int(limit),
                }
            )
            i += 1
            t += STEP_S
        if keep_from is not None and s >= keep_from and (freed_at is None or s < freed_at):
            kept.append(n_tok * KV)
            if keep_last is not None:
                kept = kept[-keep_last:]
    return recs


def prefix(trace: StepTrace, k: int, last_i: int) -> StepTrace:
    """The first ``k`` iterations of ``trace`` (of records without an OOM line), the newest
    record's ``i`` being ``last_i``: what ``steps_from_records`` makes of the first ``k``
    records here (one record an iteration, the same ``limit`` in all, no ``free``), without
    validating them again for every prefix."""
    cols = {name: getattr(trace, name) for name in ("steps", "t", "allocated", "reserved", "peak", "alloc_retries")}
    cut = {name: None if col is None else col[:k] for name, col in cols.items()}
    return replace(trace, **cut, last_i=last_i)


def verdicts(recs: list[dict[str, Any]], start: int, every: int = 5) -> dict[int, dict[str, Any]]:
    """The verdict on every ``every``-th prefix from ``start`` records on, and on all of them
    (that one through ``verdict_from_records``, as the CLI and the server judge a file)."""
    steps = [r for r in recs if not r.get("oom")]  # prefixes end before the OOM line
    trace = steps_from_records(steps)
    out = {k: verdict_from_trace(prefix(trace, k, steps[k - 1]["i"])) for k in range(start, len(trace), every)}
    out[len(recs)] = verdict_from_records(recs)
    return out


def first_alarm_for_good(vs: dict[int, dict[str, Any]]) -> Optional[int]:
    """The prefix from which every verdict is a leak (None: it ends on no leak)."""
    ks = sorted(vs)
    first = None
    for k in ks:
        if vs[k]["leak"]:
            first = k if first is None else first
        else:
            first = None
    return first


def test_a_prefix_is_what_the_records_make():
    recs = generation([L] * 12, keep_from=0)
    trace = steps_from_records(recs)
    for k in (150, 777, 1200):
        assert json.dumps(verdict_from_trace(prefix(trace, k, recs[k - 1]["i"])), sort_keys=True) == json.dumps(
            verdict_from_records(recs[:k]), sort_keys=True
        )


# --------------------------------------------------------------------------- healthy


def test_a_sawtooth_back_to_its_floor_is_never_flagged_after_its_first_period():
    recs = generation([L] * 30, keep_from=None)
    vs = verdicts(recs, L + 1, every=4)
    flagged = [k for k, v in vs.items() if v["leak"]]
    assert not flagged, (flagged[:5], vs[flagged[0]]["reason"] if flagged else None)
    assert vs[len(recs)]["message"] == "No memory growth across iterations."


@pytest.mark.parametrize("seed", range(4))
def test_sequences_of_any_length_are_teeth_once_the_saw_is_established(seed):
    """Variable lengths (an EOS token): a sequence longer than all before it grows past what
    ``growth`` has seen given back, but every tooth returned to the same floor: no leak, from
    the third sequence on (with only one closed period there is no saw to speak of yet)."""
    rng = np.random.default_rng(seed)
    lengths = [int(n) for n in rng.integers(40, 200, 25)]
    recs = generation(lengths, keep_from=None)
    vs = verdicts(recs, sum(lengths[:2]) + 1, every=9)
    flagged = [k for k, v in vs.items() if v["leak"]]
    assert not flagged, (lengths[:6], flagged[:5], vs[flagged[0]]["reason"] if flagged else None)


def test_a_generation_that_never_ends_is_flagged_once_far_longer_than_any_tooth():
    """The open period is a tooth only while it is not ``TOOTH_FACTOR`` times the longest."""
    recs = generation([L] * 6 + [100 * L], keep_from=None, logits=0)
    vs = verdicts(recs, 7 * L, every=20)
    open_start = 6 * L
    assert not any(v["leak"] for k, v in vs.items() if k - open_start <= sawtooth.TOOTH_FACTOR * L * 0.9)
    assert vs[len(recs)]["leak"] and vs[len(recs)]["actionable"]


# --------------------------------------------------------------------------- leaks


def test_a_floor_rising_one_cache_a_sequence_is_flagged_within_3_periods_and_to_the_oom():
    recs = generation([L] * 100, keep_from=0)
    assert recs[-1].get("oom"), "the model must run out of memory"
    vs = verdicts(recs, 10, every=4)
    first = first_alarm_for_good(vs)
    # the leak begins when the first sequence ends (its cache kept): flagged within 3 periods
    assert first is not None and first <= L + 3 * L, first
    # the last reading before the OOM, and the whole trace (its OOM marker included)
    before = verdict_from_records(recs[:-1])
    assert before["leak"] and before["actionable"], before["reason"]
    assert before["message"].startswith("Leaking 1 MiB an iteration, full in ~"), before["message"]
    assert "sawtooth" in before["reason"]  # the floors' verdict, not the newest tooth's slope
    last = vs[len(recs)]
    assert last["leak"] and last["bytes_per_step"] == pytest.approx(MiB, rel=0.01), last


def test_the_forecast_at_the_first_alarm_names_the_oom():
    recs = generation([L] * 100, keep_from=0)
    oom_iter = recs[-1]["iter"]
    vs = verdicts(recs, L, every=4)
    first = first_alarm_for_good(vs)
    v = vs[first]
    predicted = v["current_step"] + v["steps_to_oom"]
    assert abs(predicted - oom_iter) <= 0.1 * (oom_iter - v["current_step"]), (predicted, oom_iter)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("logits", [LOGITS // 4, 4 * LOGITS])
def test_leaks_with_variable_lengths_stay_flagged_to_the_oom(seed, logits):
    rng = np.random.default_rng(seed)
    lengths = [int(n) for n in rng.integers(60, 180, 200)]
    recs = generation(lengths, keep_from=0, logits=logits)
    assert recs[-1].get("oom")
    vs = verdicts(recs, 10, every=9)
    first = first_alarm_for_good(vs)
    assert first is not None and first <= sum(lengths[:5]), (first, lengths[:5])
    assert vs[len(recs)]["leak"]


def test_a_leak_that_begins_mid_run_is_flagged_within_3_periods_of_its_onset():
    recs = generation([L] * 100, keep_from=10)
    onset = 11 * L  # the cache of sequence 10 is kept when it ends
    vs = verdicts(recs, 10, every=6)
    assert not any(v["leak"] for k, v in vs.items() if 2 * L < k <= onset)
    first = first_alarm_for_good(vs)
    assert first is not None and onset < first <= onset + 3 * L, first
    assert vs[len(recs)]["leak"]


def test_the_alarm_clears_once_the_kept_caches_are_freed():
    recs = generation([L] * 16, keep_from=0, freed_at=10)
    vs = verdicts(recs, 10, every=4)
    assert vs[max(k for k in vs if k <= 10 * L)]["leak"]
    after = [k for k in vs if k > 10 * L + 2]
    assert after and not any(vs[k]["leak"] for k in after), [vs[k]["reason"] for k in after if vs[k]["leak"]][:2]


def test_a_bounded_cache_of_finished_sequences_clears_once_full():
    """Keep the last 4 sequences' caches (a prompt cache): a leak while it fills, then none."""
    recs = generation([L] * 30, keep_from=0, keep_last=4)
    vs = verdicts(recs, 10, every=4)
    full = 5 * L  # the fourth cache is kept when sequence 3 ends; sequence 4 replaces one
    late = [k for k in vs if k > full + (sawtooth.STOPPED_PERIODS + 1) * L]
    assert late and not any(vs[k]["leak"] for k in late)


# --------------------------------------------------------------------------- the saw itself


def test_period_starts_are_the_sequence_starts():
    lengths = [120, 80, 150, 95, 130]
    recs = generation(lengths, keep_from=0)
    x = np.asarray([r["allocated"] for r in recs], dtype=float)
    starts = sawtooth.period_starts(x)
    assert starts is not None
    assert starts.tolist() == np.cumsum([0] + lengths[:-1]).tolist()


def test_noise_and_ramps_are_no_saw():
    rng = np.random.default_rng(0)
    noisy = BASE + rng.normal(0, 8 * MiB, 3000)
    assert sawtooth.period_starts(noisy) is None
    ramp = BASE + np.arange(3000) * MiB
    assert sawtooth.period_starts(ramp) is None
    # eval spikes (one reading up, then back) are no teeth: not a saw judged on its floors
    spikes = np.full(600, float(BASE))
    spikes[50::50] += 512 * MiB
    assert sawtooth.sawtooth_growth(np.arange(600.0), spikes, capacity=LIMIT) is None


def test_judging_a_long_saw_is_bounded():
    """20,000 readings (the follower's window) of a leaking saw: judged once in well under
    the time the server spends between two polls."""
    import time

    lengths = [L] * 170
    recs = generation(lengths, keep_from=0, limit=80 * GiB)
    x = np.asarray([r["allocated"] for r in recs], dtype=float)
    t0 = time.perf_counter()
    saw = sawtooth.sawtooth_growth(np.arange(len(x), dtype=float), x, capacity=80 * GiB)
    assert time.perf_counter() - t0 < 0.5
    assert saw is not None and saw.growth.leak


# --------------------------------------------------------------------------- CLI and recordings


def test_the_cli_says_leak_on_the_leaky_sawtooth(tmp_path, capsys):
    recs = generation([L] * 100, keep_from=0)
    path = tmp_path / "generate_leak.iters.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert cli_main(["leaks", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    verdict = out[0] if isinstance(out, list) else out
    assert verdict["leak"] is True, verdict
    assert verdict["bytes_per_step"] == pytest.approx(MiB, rel=0.01)
    # just before the OOM, as the file stood then
    path.write_text("".join(json.dumps(r) + "\n" for r in recs[:-1]))
    assert cli_main(["leaks", str(path)]) == 0
    assert capsys.readouterr().out.startswith("Leaking 1 MiB an iteration")


RECORDED = Path(__file__).resolve().parent / "data" / "leaks" / "h200-generate"


def recorded(name: str) -> tuple[list[dict[str, Any]], dict[str, Any], list[int]]:
    """A recording's records, its ``meta.jsonl`` line, and the iterations where its sequences
    begin (the saw's periods, checked against the loop's own lengths where they are fixed)."""
    recs = [json.loads(line) for line in (RECORDED / f"{name}.iters.jsonl").read_text().splitlines() if line]
    meta = next(m for m in map(json.loads, (RECORDED / "meta.jsonl").read_text().splitlines()) if m["scenario"] == name)
    steps = [r for r in recs if not r.get("oom")]
    starts = sawtooth.period_starts(np.asarray([r["allocated"] for r in steps], dtype=float))
    assert starts is not None
    return recs, meta, [steps[s]["iter"] for s in starts]


@pytest.mark.parametrize("name", ["generate_leak", "generate_leak_varlen"])
def test_recorded_generation_leaks_stay_flagged_from_the_third_sequence_to_the_oom(name):
    """H200, through the probe: the KV cache of every finished sequence kept until the process
    cap is reached. Flagged from the 3rd sequence after the first kept cache, on every prefix
    from there to the OOM, at the floors' rate (the KV cache's 512 KiB a token, plus the
    allocator's rounding), and the forecast at that first alarm within 25 %."""
    recs, meta, seq_starts = recorded(name)
    assert recs[-1].get("oom") and meta["oom_at"] == recs[-1]["iter"]
    if meta["period"]:
        assert seq_starts[2:6] == [2 * meta["period"], 3 * meta["period"], 4 * meta["period"], 5 * meta["period"]]
    vs = verdicts(recs, 10, every=2)
    first = first_alarm_for_good(vs)
    assert first is not None and first < len(recs)
    v = vs[first]
    after = [s for s in seq_starts if s > meta["onset"]]
    assert v["current_step"] < after[3], (v["current_step"], seq_starts[:6])  # by the 3rd sequence
    oom = meta["oom_at"]
    predicted = v["current_step"] + v["steps_to_oom"]
    assert abs(predicted - oom) <= 0.25 * (oom - v["current_step"]), (predicted, oom)
    before = verdict_from_records(recs[:-1])
    assert before["leak"] and "sawtooth" in before["reason"], before["reason"]
    assert meta["kv_bytes_per_token"] <= before["bytes_per_step"] <= 1.25 * meta["kv_bytes_per_token"]


def test_recorded_healthy_generation_of_any_length_is_never_flagged_after_its_second_sequence():
    recs, meta, seq_starts = recorded("generate_healthy_varlen")
    assert not meta["leak"] and len(seq_starts) >= 20
    vs = verdicts(recs, 10, every=2)
    steps = [r for r in recs if not r.get("oom")]
    flagged = [steps[k - 1]["iter"] for k, v in vs.items() if v["leak"]]
    assert all(it < seq_starts[2] for it in flagged), (flagged[-5:], seq_starts[:4])


def test_the_recorded_healthy_generation_is_never_flagged_after_its_first_sequence():
    """``generate_healthy`` (H200, record_round2.py): 20 sequences of 120 tokens, 1 MiB each."""
    recs = [json.loads(line) for line in (DATA / "generate_healthy.iters.jsonl").read_text().splitlines() if line]
    x = np.asarray([r["allocated"] for r in recs], dtype=float)
    assert sawtooth.period_starts(x).tolist() == list(range(0, 2400, 120))  # a saw, every sequence
    vs = verdicts(recs, 121, every=3)
    assert not any(v["leak"] for v in vs.values())
