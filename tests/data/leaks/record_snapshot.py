"""Record a real allocation history of a leaking loop for the triage test (needs a CUDA GPU).

    python record_snapshot.py OUT.json

Runs three healthy warm-up steps, then records ``torch.cuda.memory._record_memory_history``
for four steps of a loop that keeps its hidden states (line marked LEAK below), and saves
the snapshot's ``device_traces`` (python frames only) for ``triage.triage_snapshot``.
"""

from __future__ import annotations

import json
import sys

import torch
import torch.nn as nn


def main(out: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1024, 4096), nn.GELU(), nn.Linear(4096, 1024)).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    kept = []

    def step(leak: bool) -> None:
        x = torch.randn(2048, 1024, device="cuda")
        h = model[1](model[0](x))
        loss = model[2](h).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if leak:
            kept.append(h.detach())  # LEAK: 2048 x 4096 fp32 = 32 MiB a step

    for _ in range(3):
        step(False)
    torch.cuda.synchronize()
    torch.cuda.memory._record_memory_history(max_entries=100_000, stacks="python")
    for _ in range(4):
        step(True)
    torch.cuda.synchronize()
    snap = torch.cuda.memory._snapshot()
    torch.cuda.memory._record_memory_history(enabled=None)
    traces = []
    for dev in snap.get("device_traces", []):
        traces.append(
            [
                {k: ev.get(k) for k in ("action", "addr", "size", "stream")}
                | {
                    "frames": [
                        {k: f.get(k) for k in ("filename", "line", "name")} for f in (ev.get("frames") or [])[:12]
                    ]
                }
                for ev in dev
            ]
        )
    with open(out, "w") as fh:
        json.dump({"torch": torch.__version__, "steps": 4, "device_traces": traces}, fh)

    sys.path.insert(0, ".")
    from jupyter_gpu_panel.memory import triage

    print(json.dumps(triage.triage_snapshot({"device_traces": traces}, 4)["stacks"][:3], indent=1))
    print(triage.triage_snapshot({"device_traces": traces}, 4)["message"])


if __name__ == "__main__":
    main(sys.argv[1])
