"""Leak detector cost: one verdict over N readings, per pattern (issue 4: 10,000 points < 5 ms).

    python tests/perf/bench_leaks.py [--repeats 50] [--sizes 1000,10000,20000]

Prints a table of the median and 95th-percentile time of ``analyze_steps`` (per-step
series, with peaks, reserve and retries as the probe gives them) and ``analyze_time``
(an NVML per-process series), and ends with the verdict on the 5 ms budget at 10,000
points. Pure CPU: the GPU plays no part.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from jupyter_gpu_panel.memory import detector

MiB = 2**20
CARD = 85_520_809_984
BUDGET_MS = 5.0


def patterns(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    i = np.arange(n, dtype=float)
    base = 1.7e9
    return {
        "plateau": np.full(n, base),
        "steady leak": base + 32 * MiB * i,
        "onset at 90%": base + 32 * MiB * np.clip(i - 0.9 * n, 0, None),
        "staircase": base + 256 * MiB * (i // 8),
        "gc sawtooth": base + 12 * MiB * (i % 12),
        "noisy 1 MiB/step": base + MiB * i + rng.integers(-30_000, 30_000, n),
        "shape noise": base + rng.integers(-30_000, 30_000, n),
        "eval spikes": base + 2e9 * (i % 50 == 49),
    }


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm caches and scipy's lazy imports
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    out.sort()
    return statistics.median(out), out[min(len(out) - 1, int(0.95 * len(out)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--sizes", default="1000,10000,20000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"python {platform.python_version()} on {platform.machine()} ({platform.processor() or 'cpu'}), "
        f"numpy {np.__version__}"
    )
    print(f"{'pattern':<18} {'N':>7} {'steps med ms':>13} {'p95':>7} {'time med ms':>12} {'p95':>7}  verdict")
    worst_10k = 0.0
    for n in sizes:
        steps = np.arange(n, dtype=float)
        t = 1.79e9 + 0.022 * steps
        for name, x in patterns(n).items():
            peak = np.maximum.accumulate(x + 3e9)
            reserved = x + 2e9
            retries = np.zeros(n)

            def by_step(x=x, peak=peak, reserved=reserved, retries=retries, steps=steps, t=t):
                return detector.analyze_steps(
                    steps, x, capacity=CARD, t=t, peak=peak, reserved=reserved, alloc_retries=retries
                )

            s_med, s_p95 = timed(by_step, args.repeats)
            t_med, t_p95 = timed(lambda x=x, t=t: detector.analyze_time(t, x, capacity=CARD), args.repeats)
            rep = detector.analyze_steps(steps, x, capacity=CARD, t=t, peak=peak)
            verdict = "actionable" if rep.actionable else ("leak" if rep.leak else "healthy")
            print(f"{name:<18} {n:>7} {s_med:>13.2f} {s_p95:>7.2f} {t_med:>12.2f} {t_p95:>7.2f}  {verdict}")
            if n == 10_000:
                worst_10k = max(worst_10k, s_med, t_med)
    if 10_000 in sizes:
        ok = worst_10k < BUDGET_MS
        print(
            f"worst median at 10,000 points: {worst_10k:.2f} ms -> "
            f"{'within' if ok else 'OVER'} the {BUDGET_MS:.0f} ms budget"
        )
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
