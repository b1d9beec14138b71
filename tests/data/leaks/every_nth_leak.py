"""A training loop whose validation, every Nth step, forgets ``torch.no_grad()``: each
``val_loss += ...`` keeps that validation's autograd graph (the live case of issue 19, on CPU).

    python every_nth_leak.py PERIOD PROBE_DIR [MAX_STEPS]

Runs with ``tests/cpu_history.py``'s stand-in for torch's CUDA allocator history, until the probe
wrote its triage (the test's server side asks for it on the leak alarm) or MAX_STEPS.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/: cpu_history
import cpu_history


def main(period: int, directory: str, max_steps: int) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # the test machine's cores are shared: one thread is faster there
    probe = cpu_history.start(directory)
    model = nn.Sequential(nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 256))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    val_loss = 0.0
    for step in range(max_steps):
        x = torch.randn(64, 256)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % period == period - 1:
            xv = torch.randn(64, 256)
            val_loss += model(xv).pow(2).mean()  # LEAK: no torch.no_grad(), the graph is kept
        if probe.triage_path.exists():
            break
        time.sleep(0.002)
    cpu_history.stop(probe)
    print(f"steps {step + 1}")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3000)
