"""Sampling cost per GPU per fast tick: our NVML reads vs `nvidia-smi --query-gpu` as a subprocess.

    python tests/perf/bench_sampling.py [--repeats 200] [--source nvml|replay]

Prints a table. Run on a machine with an NVIDIA GPU for the real numbers (the README
quotes one); without one it measures the replay source and says so.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from jupyter_gpu_panel.metrics.history import History
from jupyter_gpu_panel.metrics.readings import HISTORY_FIELDS
from jupyter_gpu_panel.metrics.sampler import Sampler
from jupyter_gpu_panel.metrics.sources import make_source

SMI_QUERY = (
    "index,name,utilization.gpu,utilization.memory,memory.used,memory.total,temperature.gpu,"
    "power.draw,power.limit,clocks.sm,clocks.mem,pstate"
)


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def profile_calls(source, repeats: int) -> dict[str, tuple[float, float]]:
    """Median cost of each NVML function one fast read makes (and how often it calls it)."""
    real = source.nvml
    costs: dict[str, list[float]] = {}

    class Timed:
        def __getattr__(self, name):
            attr = getattr(real, name)
            if not callable(attr) or not name.startswith("nvml") or isinstance(attr, type):
                return attr

            @functools.wraps(attr)  # keep __name__: the source keys its NotSupported cache on it
            def call(*a, **kw):
                t0 = time.perf_counter()
                try:
                    return attr(*a, **kw)
                finally:
                    costs.setdefault(name, []).append(time.perf_counter() - t0)

            return call

    source.nvml = Timed()
    try:
        for _ in range(repeats):
            source.read_fast(0)
    finally:
        source.nvml = real
    return {k: (statistics.median(v) * 1e6, len(v) / repeats) for k, v in costs.items()}


def row(name: str, samples: list[float], per: str) -> tuple[str, float, float, str]:
    return name, statistics.median(samples) * 1e6, max(samples) * 1e6, per


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--source", default="nvml")
    args = ap.parse_args()
    source = make_source(args.source)
    sampler = Sampler(source, interval=1.0, describe_processes=True)
    status = sampler.open()
    if not status.ok:
        print(f"{args.source}: {status.state} ({status.message}); measuring the replay source instead")
        source = make_source("replay")
        sampler = Sampler(source, interval=1.0)
        sampler.open()
    n_gpus = len(sampler.devices)
    rows = []
    per_call = profile_calls(source, args.repeats) if status.ok and status.source == "nvml" else {}
    fast = timed(lambda: source.read_fast(0), args.repeats)
    rows.append(row("fast fields, one GPU (source.read_fast)", fast, "per GPU per tick"))
    slow = timed(lambda: source.read_slow(0), max(5, args.repeats // 20))
    rows.append(row("slow fields, one GPU (PCIe, energy, ECC)", slow, "per GPU per slow tick"))
    tick = timed(sampler.tick, args.repeats)
    rows.append(row(f"whole sampler tick ({n_gpus} GPU, threads, history)", tick, "per tick"))
    smi = shutil.which("nvidia-smi")
    smi_med = None
    if smi:
        cmd = [smi, f"--query-gpu={SMI_QUERY}", "--format=csv,noheader,nounits", "-i", "0"]
        runs = timed(lambda: subprocess.run(cmd, capture_output=True, check=True), 20)
        rows.append(row("nvidia-smi --query-gpu (subprocess), one GPU", runs, "per GPU per tick"))
        smi_med = statistics.median(runs)
    sampler.stop()

    print(
        f"\nsource={status.source if status.ok else 'replay'}  "
        f"device={sampler.devices[0].name if sampler.devices else '-'}"
    )
    print(f"{'measurement':<52} {'median us':>10} {'max us':>10}  unit")
    print("-" * 90)
    for name, med, mx, per in rows:
        print(f"{name:<52} {med:>10.1f} {mx:>10.1f}  {per}")
    if per_call:
        print(f"\n{'NVML call in one fast read':<52} {'median us':>10} {'calls':>6}")
        for name, (med, calls) in sorted(per_call.items(), key=lambda kv: -kv[1][0] * kv[1][1]):
            print(f"{name:<52} {med:>10.1f} {calls:>6}")
    if smi_med:
        print(f"\nnvidia-smi / our fast read: {smi_med / statistics.median(fast):,.0f}x (target >= 100x)")
    h = History(3600, 1.0)
    print(
        f"history: {h.capacity * (1 + len(HISTORY_FIELDS)) * 8 / 1024:.0f} KiB per GPU-hour at a 1 s tick "
        f"(+ {h.capacity * 2 * 8 / 1024:.0f} KiB per GPU process)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
