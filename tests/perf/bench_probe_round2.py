"""What the round-2 probe adds to a step, on a real GPU (needs CUDA).

    python tests/perf/bench_probe_round2.py [--json OUT.json]

* ``cudaMemGetInfo`` (``torch.cuda.mem_get_info``): its cost idle, and whether it waits for
  the GPU: called with ~40 ms of matrix products queued, it must return long before they end;
* re-reading the per-process fraction (``torch._C._cuda_getMemoryFraction``);
* the step hook per optimizer step: free memory read at every record vs at most every
  ``protocol.FREE_SECONDS`` (the default);
* the forward hook on a top-level module while a training loop runs (it only compares clocks);
* one forward of a 48-module model while the discovery pre-hook is on (once a cell), vs off.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def median_us(fn, n: int = 2000) -> float:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out) * 1e6


def main() -> int:
    import torch

    import jupyter_gpu_panel.probe as probe_mod
    from jupyter_gpu_panel.probe import protocol

    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to measure here")
        return 0
    dev = torch.device("cuda")
    res: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    torch.cuda.mem_get_info()
    res["mem_get_info_idle_us"] = median_us(lambda: torch.cuda.mem_get_info(0))
    raw = torch._C._cuda_getMemoryFraction
    res["get_memory_fraction_us"] = median_us(lambda: raw(0))

    # does cudaMemGetInfo wait for queued GPU work?
    a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(30):
        a @ a
    torch.cuda.synchronize()
    queued_ms = (time.perf_counter() - t0) * 1e3
    waits = []
    for _ in range(5):
        for _ in range(30):
            a @ a
        t0 = time.perf_counter()
        torch.cuda.mem_get_info(0)
        call_ms = (time.perf_counter() - t0) * 1e3
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        left_ms = (time.perf_counter() - t1) * 1e3
        waits.append((call_ms, left_ms))
    res["queued_work_ms"] = queued_ms
    res["mem_get_info_with_queue_ms"] = [round(c, 4) for c, _ in waits]
    res["work_left_after_call_ms"] = [round(w, 2) for _, w in waits]
    res["mem_get_info_synchronizes"] = any(left < 0.1 * queued_ms for _, left in waits)

    model = torch.nn.Sequential(*[torch.nn.Linear(512, 512) for _ in range(48)]).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(64, 512, device=dev)
    with tempfile.TemporaryDirectory() as tmp:
        p = probe_mod.Probe(Path(tmp))
        p.open()
        try:
            res["hook_us_free_default"] = median_us(lambda: p._on_step(opt, (), {}), 3000)
            saved = protocol.FREE_SECONDS
            protocol.FREE_SECONDS = 0.0
            res["hook_us_free_every_record"] = median_us(lambda: p._on_step(opt, (), {}), 3000)
            protocol.FREE_SECONDS = saved
            p._last_step_t = time.time()  # a training loop is running
            res["forward_hook_in_training_us"] = median_us(lambda: p._on_forward(model, (), None), 20000)

            def fwd():
                model(x)
                torch.cuda.synchronize()

            for _ in range(5):
                fwd()
            plain = median_us(fwd, 200)
            from torch.nn.modules.module import register_module_forward_pre_hook

            h = register_module_forward_pre_hook(p._discover)
            p._call_impl_code = torch.nn.Module._call_impl.__code__
            p._discovery, p._discovery_seen, p._discovery_calls = h, set(), 0
            t0 = time.perf_counter()
            fwd()  # the discovering forward: hooks the top-level module
            armed = (time.perf_counter() - t0) * 1e6
            p._disarm()
            res["forward_48_modules_us"] = plain
            res["forward_48_modules_discovering_us"] = armed
        finally:
            p.close()
    for k, v in res.items():
        print(f"{k:<40} {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
