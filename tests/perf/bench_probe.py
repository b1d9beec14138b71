"""Overhead of the in-kernel probe on a ~20 ms training step (needs a CUDA GPU).

    python tests/perf/bench_probe.py [--steps 300] [--blocks 4]

Alternates blocks of steps without and with the probe (A/B/A/B, so clock drift hits both)
and prints mean step time, the probe's share of it, and the hook's own cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    import torch

    import jupyter_gpu_panel.probe as probe_mod

    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--target-ms", type=float, default=20.0)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU: the probe does nothing here; run this on a GPU machine")
        return 0
    dev = torch.device("cuda")
    model = torch.nn.Sequential(*[torch.nn.Linear(4096, 4096) for _ in range(4)]).to(dev)
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randn(1024, 4096, device=dev)

    def step() -> None:
        loss = model(x).float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # size the step to ~target ms with extra matmuls: the overhead is relative to a real step
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(20):
        step()
    torch.cuda.synchronize()
    base_ms = (time.perf_counter() - t0) / 20 * 1000
    a = torch.randn(8192, 8192, device=dev)
    t0 = time.perf_counter()
    for _ in range(10):
        a @ a
    torch.cuda.synchronize()
    mm_ms = (time.perf_counter() - t0) / 10 * 1000
    extra = max(0, round((args.target_ms - base_ms) / mm_ms))

    def timed_block(n: int) -> float:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            step()
            for _ in range(extra):
                a @ a
            torch.cuda.synchronize()  # a step ends when its GPU work does, as in a real loop's .item()
        return (time.perf_counter() - t0) / n * 1000

    off, on = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.blocks):
            off.append(timed_block(args.steps))
            p = probe_mod.start(directory=tmp)
            on.append(timed_block(args.steps))
            probe_mod.stop()
        p = probe_mod.Probe(Path(tmp))
        fast = p.reading()
        flat = torch.cuda.memory_stats()
        same = (
            fast["allocated"] == flat["allocated_bytes.all.current"]
            and fast["reserved"] == flat["reserved_bytes.all.current"]
        )
        p.open()
        costs = []
        for _ in range(2000):
            t0 = time.perf_counter()
            p._on_step(opt, (), {})
            costs.append(time.perf_counter() - t0)
        p.close()
    off_ms, on_ms = statistics.median(off), statistics.median(on)
    hook_us = statistics.median(costs) * 1e6
    print(f"\ndevice={torch.cuda.get_device_name()}  torch={torch.__version__}")
    print(f"{'measurement':<44} {'value':>12}")
    print("-" * 58)
    print(f"{'step time without probe (median of blocks)':<44} {off_ms:>9.3f} ms")
    print(f"{'step time with probe (median of blocks)':<44} {on_ms:>9.3f} ms")
    print(f"{'difference / step time':<44} {100 * (on_ms - off_ms) / off_ms:>10.3f} %")
    print(f"{'hook cost per step (median of 2000)':<44} {hook_us:>9.1f} us")
    print(f"{'hook cost / 20 ms step':<44} {100 * hook_us / 20000:>10.3f} %  (target < 1 %)")
    print(f"{'nested stats == memory_stats()':<44} {str(same):>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
