"""NVML-only leak detection on the sampler's ticks (issue 19 item 1): synthetic per-tick traces
at 1 s and 0.1 s ticks, the recorded NVML traces, and a real server whose kernel row is flagged.

The synthetic healthy run is a small model of PyTorch's caching allocator: a training loop
whose batch varies 512-32768 rows takes blocks best-fit from the cached segments (splitting
them), asks the driver for a new segment only when none fits, and gives its free segments
back at ``empty_cache()``; NVML sees the context plus the segments.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from types import SimpleNamespace

import pytest
from tick_replay import onset_time, replay, scenarios

from jupyter_gpu_panel.memory.tick_growth import TickGrowth, TickJudge, more_urgent, required_seconds

MiB = 2**20
GiB = 2**30
CONTEXT = 500 * MiB


def first_alarm(trace, total, t_from=-math.inf):
    """Feed ``(t, used)`` ticks (the device holds only this process) and return the first alarm's time."""
    g = TickGrowth()
    for t, used in trace:
        if g.update(t, used, total - used) is not None and t >= t_from:
            return t
    return None


def leak_trace(rate, tick, onset, end, segment=20 * MiB, base=3 * GiB, phase=0.0):
    """Flat ``base`` until ``onset``, then a reserve rising ``rate`` bytes/s in whole segments."""
    out, t = [], phase
    while t <= end:
        grown = max(0.0, t - onset) * rate
        out.append((t, base + math.floor(grown / segment) * segment))
        t += tick
    return out


@pytest.mark.parametrize("tick", [1.0, 0.1])
@pytest.mark.parametrize("total", [24 * GiB, 150 * GiB])
@pytest.mark.parametrize(("rate", "within"), [(1024 * MiB, 5.0), (256 * MiB, 5.0), (64 * MiB, 10.0)])
@pytest.mark.parametrize("segment", [2 * MiB, 20 * MiB])
def test_steady_growth_is_flagged_in_time(tick, total, rate, within, segment):
    for phase in (0.0, 0.37 * tick, 0.81 * tick):  # the onset falls anywhere between two ticks
        onset = 30.0 + 0.5 * tick
        end = onset + 20.0
        trace = [(t, u) for t, u in leak_trace(rate, tick, onset, end, segment, phase=phase) if u < total - GiB]
        at = first_alarm(trace, total)
        assert at is not None and at >= onset, (at, onset)
        assert at - onset <= within, f"{rate / MiB:.0f} MiB/s at {tick} s ticks flagged after {at - onset:.1f} s"


def test_the_forecast_counts_other_processes():
    """The same growth on a card that others have nearly filled: full sooner, flagged sooner."""
    trace = leak_trace(64 * MiB, 0.1, 10.0, 40.0)
    empty, crowded = TickGrowth(), TickGrowth()
    for t, used in trace:
        a = empty.update(t, used, 150 * GiB - used)
        b = crowded.update(t, used, 3 * GiB - (used - trace[0][1]))
    assert a is not None and b is not None
    assert b["seconds_to_oom"] < a["seconds_to_oom"] / 20
    assert required_seconds(b["seconds_to_oom"]) < required_seconds(a["seconds_to_oom"])


def test_a_single_large_allocation_is_not_a_leak():
    for tick in (1.0, 0.1):
        trace = [(i * tick, 2 * GiB + (20 * GiB if i * tick >= 10 else 0)) for i in range(int(60 / tick))]
        assert first_alarm(trace, 80 * GiB) is None
        # the same allocation filled in over 2 s (weights loading at 10 GiB/s) looks like a
        # leak filling the card in seconds while it lasts; the verdict clears once it stops
        g = TickGrowth()
        for i in range(int(60 / tick)):
            used = 2 * GiB + min(20 * GiB, max(0.0, i * tick - 10) * 10 * GiB)
            v = g.update(i * tick, used, 80 * GiB - used)
            if i * tick >= 14.0:
                assert v is None, i * tick


class CachingAllocator:
    """PyTorch's large pool, as far as NVML sees it: segments, best-fit blocks split to size."""

    def __init__(self) -> None:
        self.segments: list[int] = []  # bytes from the driver, kept until empty_cache
        self.pinned = 0  # weights and optimizer state: never released

    def step(self, requests: list[int]) -> None:
        free = sorted(self.segments)  # every activation of the last step has been freed
        for size in requests:
            size = -(-size // (2 * MiB)) * (2 * MiB) if size > 10 * MiB else 20 * MiB
            fit = next((i for i, b in enumerate(free) if b >= size), None)
            if fit is None:
                self.segments.append(size)  # cudaMalloc of a new segment
                continue
            rest = free.pop(fit) - size
            if rest > MiB:
                free.insert(next((i for i, b in enumerate(free) if b >= rest), len(free)), rest)

    def empty_cache(self) -> None:
        self.segments = []

    @property
    def reserved(self) -> int:
        return CONTEXT + self.pinned + sum(self.segments)


def training_trace(seed, tick, seconds=180.0, empty_every=(400, 900)):
    """NVML readings of a training loop with batch sizes 512-32768 and occasional empty_cache."""
    rng = random.Random(seed)
    alloc = CachingAllocator()
    alloc.pinned = 4 * 3 * 64 * MiB  # 4 layers: weights, grads, Adam's two moments
    t, next_tick, out = 0.0, 0.0, []
    steps_to_empty = rng.randint(*empty_every)
    while t < seconds:
        rows = int(math.exp(rng.uniform(math.log(512), math.log(32768))))
        act = rows * 1024 * 4
        alloc.step([act] * 8 + [rows * 1000 * 4] + [act] * 4)  # forward, logits, backward
        t += 0.004 + rows * 2e-6
        steps_to_empty -= 1
        if steps_to_empty == 0:
            alloc.empty_cache()
            steps_to_empty = rng.randint(*empty_every)
        while next_tick <= t:
            out.append((next_tick, alloc.reserved))
            next_tick += tick
    return out


@pytest.mark.parametrize("tick", [1.0, 0.1])
@pytest.mark.parametrize("seed", range(6))
def test_a_training_loop_with_varying_batches_and_empty_cache_is_not_a_leak(tick, seed):
    trace = training_trace(seed, tick)
    assert max(u for _, u in trace) - min(u for _, u in trace) > 4 * GiB  # the reserve does move a lot
    assert sum(b < a for (_, a), (_, b) in zip(trace, trace[1:])) >= 3  # and empty_cache drops it
    for total in (24 * GiB, 150 * GiB):
        assert first_alarm(trace, total) is None


def test_judge_keys_processes_by_gpu_and_forgets_ended_ones():
    judge = TickJudge()
    for i in range(80):
        t = i * 0.1
        leak = SimpleNamespace(pid=11, used=GiB + int(max(0.0, t - 1.0) * 512 * MiB))
        flat = SimpleNamespace(pid=12, used=GiB)
        gpu = SimpleNamespace(
            index=0, state="ok", mem_total=80 * GiB, mem_used=2 * GiB + leak.used, processes=[leak, flat]
        )
        judge.on_tick(SimpleNamespace(t=1000.0 + t, gpus=[gpu]))
    assert judge.verdict_for([12]) is None
    v = judge.verdict_for([12, 11])
    assert v is not None and v["pid"] == 11 and v["gpu"] == 0 and v["actionable"]
    assert more_urgent(v, None) and not more_urgent(None, v)
    judge.on_tick(SimpleNamespace(t=1000.0 + 8 + 31, gpus=[]))
    assert judge.verdict_for([11]) is None


def recorded():
    return [(d, meta) for d, meta in scenarios()]


@pytest.mark.parametrize(("d", "meta"), recorded(), ids=lambda x: x.get("scenario") if isinstance(x, dict) else x.name)
def test_recorded_traces(d, meta):
    """No alarm on a healthy recording; on a leaking one, none before its onset, and the first
    alarm (printed with -s) within 10 s whenever the recording lasts that long after it."""
    r = replay(d, meta)
    print(f"\n{d.name}/{meta['scenario']}: first alarm {r['first']} (s after onset), {r['duration']:.1f} s recorded")
    if not meta["leak"]:
        assert r["first"] == {}
        return
    if meta.get("pid") is None or meta.get("leak_bytes_per_iter", 0) < MiB:
        return  # tiny leaks (bytes a step) are the probe's: NVML cannot see them in seconds
    first = r["first"].get(meta["pid"])
    if first is not None:
        assert first >= -0.2
    if onset_time(d, meta) is not None and r["duration"] >= 10.0:
        assert first is not None and first <= 10.0


# -- a real server: the fake NVML lists a real kernel's pid, whose memory starts to grow ----------


@pytest.fixture
def gpu_panel_config(fake):
    return {"source": "nvml", "interval": 0.1, "kernel_refresh": 0.2}


async def test_a_kernel_row_is_flagged_within_5_s_of_a_256_mib_s_growth(jp_fetch, jp_serverapp, panel, fake):
    resp = await jp_fetch("api", "sessions", method="POST", body=json.dumps(
        {"path": "leaky.ipynb", "type": "notebook", "name": "leaky.ipynb", "kernel": {"name": "python3"}}))  # fmt: skip
    kid = json.loads(resp.body)["kernel"]["id"]
    pid = jp_serverapp.kernel_manager.get_kernel(kid).provisioner.pid
    base = 3 * GiB
    fake.processes[0] = [(pid, base)]
    fake.facts["mem_used"] = 40 * GiB  # another process's: the forecast counts it

    async def row():
        # GET kernels?refresh=1: the answer is checked against openapi.json (the per-tick verdict
        # is an NvmlVerdict like the refresh path's, ``headroom_bound`` included)
        resp = await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})
        return next(k for k in json.loads(resp.body)["kernels"] if k["kernel_id"] == kid)

    flat_until = time.monotonic() + 3.0
    while time.monotonic() < flat_until:  # flat: never flagged
        leak = (await row())["leak"]
        assert leak is None or not leak["leak"], leak
        await asyncio.sleep(0.2)

    start = time.monotonic()

    async def grow():  # 256 MiB/s, in 2 MiB segments as the allocator reserves them
        while True:
            grown = int((time.monotonic() - start) * 256 * MiB) // (2 * MiB) * (2 * MiB)
            fake.processes[0] = [(pid, base + grown)]
            await asyncio.sleep(0.05)

    task = asyncio.create_task(grow())
    try:
        flagged = None
        while time.monotonic() - start < 8.0:
            leak = (await row())["leak"]
            if leak is not None and leak["leak"] and leak["actionable"]:
                flagged = (time.monotonic() - start, leak)
                break
            await asyncio.sleep(0.2)
    finally:
        task.cancel()
    assert flagged is not None, "not flagged within 8 s"
    after, leak = flagged
    assert after <= 5.0, after
    assert leak["source"] == "nvml" and leak["reason"].startswith("per tick"), leak
    # in the refresh path's frame: the kernel's own level, the device's free memory above it
    assert leak["headroom_bound"] == "device free" and leak["level"] >= base, leak
    assert leak["headroom"] < fake.facts["mem_total"] - 40 * GiB - base, leak
    assert leak["capacity"] == pytest.approx(leak["level"] + leak["headroom"]), leak
    assert 150 * MiB < leak["bytes_per_second"] < 400 * MiB
    assert leak["seconds_to_oom"] is not None and leak["forecast"] is not None
    print(f"\nkernel row flagged {after:.1f} s after a 256 MiB/s growth began: {leak['message']}")
