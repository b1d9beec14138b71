"""What the probe's clock costs: one look a second while a cell runs code with no optimizer step.

    python tests/perf/bench_probe_clock.py [--seconds 20]

Part 1 times one ``clock_tick`` (a look that writes nothing, and a look that writes a record)
and states the share of one CPU core at the clock's period (``protocol.CLOCK_SECONDS``).
Part 2 runs the real clock thread for ``--seconds`` while the main thread keeps allocating,
and reports the thread's own CPU time (``time.thread_time`` inside it) per wall second.
With CUDA the probe reads the real allocator (the hook's full record costs 28 us on an H100:
docs/measurements/h100-bench-probe.txt); without it, the CPU stand-in of the test suite.
Prints a table; not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import jupyter_gpu_panel.probe as probe_mod  # noqa: E402
from jupyter_gpu_panel.probe import protocol as P  # noqa: E402

KEPT: list = []


class StandInProbe(probe_mod.Probe):
    """No CUDA here: the bytes the loop keeps, as the test suite's CPUProbe reads them."""

    def _limit(self) -> int:
        return 1 << 30

    def reading(self) -> dict:
        held = sum(t.numel() * t.element_size() for t in KEPT)
        return {"allocated": held, "reserved": held, "active": held, "inactive_split": 0}


def make_probe(directory: str) -> probe_mod.Probe:
    if torch.cuda.is_available():
        return probe_mod.Probe(Path(directory))
    return StandInProbe(Path(directory), device=0)


def keep() -> None:
    if torch.cuda.is_available():
        KEPT.append(torch.zeros(1024, device="cuda"))
    else:
        KEPT.append(torch.zeros(1024))


def part1(repeats: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        p = make_probe(d)
        p.open()
        try:
            p.run_starts(now=time.time() - 10)
            p.clock_tick(time.time())  # its first look sets the baseline
            looks = []
            for _ in range(repeats):  # the allocator does not move: nothing is written
                t0 = time.perf_counter()
                p.clock_tick(time.time())
                looks.append((time.perf_counter() - t0) * 1e6)
            writes = []
            for _ in range(repeats):
                keep()
                t0 = time.perf_counter()
                p.clock_tick(time.time())
                writes.append((time.perf_counter() - t0) * 1e6)
        finally:
            p.close()
            KEPT.clear()
    return statistics.median(looks), statistics.median(writes)


def part2(seconds: float) -> tuple[float, int]:
    cpu = [0.0]
    original = probe_mod.Probe.clock_tick

    def timed_tick(self, now):  # the clock thread's own CPU time, measured inside it
        t0 = time.thread_time()
        try:
            return original(self, now)
        finally:
            cpu[0] += time.thread_time() - t0

    with tempfile.TemporaryDirectory() as d:
        p = make_probe(d)
        p.clock_tick = timed_tick.__get__(p)  # type: ignore[method-assign]
        p.open()
        p.run_starts(now=time.time() - 10)
        p.start_clock()
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                keep()
                time.sleep(0.01)
        finally:
            p.close()
            KEPT.clear()
        n = sum(1 for line in p.path.read_text().splitlines() if '"kind":"time"' in line)
    assert not any(t.name == "gpu-panel-probe-clock" for t in threading.enumerate())
    return cpu[0], n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--repeats", type=int, default=2000)
    args = ap.parse_args()
    where = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU stand-in (no CUDA)"
    look, write = part1(args.repeats)
    cpu, n = part2(args.seconds)
    print(f"\nThe probe's clock, every {P.CLOCK_SECONDS:g} s; allocator: {where}")
    print(f"{'measure':<52} {'value':>12}")
    print(f"{'one look, allocator unchanged (median)':<52} {look:>9.1f} us")
    print(f"{'one look that writes a record (median)':<52} {write:>9.1f} us")
    share = write / 1e6 / P.CLOCK_SECONDS * 100
    print(f"{'share of one core at its period (record each tick)':<52} {share:>10.4f} %")
    print(f"{f'clock thread CPU over {args.seconds:g} s, real thread':<52} {cpu * 1e3:>9.2f} ms")
    print(f"{'  per wall second':<52} {cpu / args.seconds * 100:>10.4f} %  (target < 0.1 %)")
    print(f"{'records written by the thread':<52} {n:>12}")


if __name__ == "__main__":
    main()
