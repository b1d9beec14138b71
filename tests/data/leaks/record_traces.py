"""Record real training-loop memory traces for the leak detector's tests (needs a CUDA GPU).

The H100 recordings in ``tests/data/traces`` cover a handful of patterns; the detector must also be
right on patterns it was not tuned on (bounded caches, EMA switched on mid-run, staircase and
very fast leaks, views pinning storages, ``empty_cache`` drops, reference-cycle sawtooth).
This script runs one small transformer LM per scenario, in its own process so each starts
from a fresh caching allocator, and writes the same three files as those recordings:
``NAME.iters.jsonl`` (read after every optimizer step), ``NAME.nvml.jsonl`` (10 Hz NVML
samples from a thread) and one ``meta.jsonl`` line of ground truth.

    python record_traces.py OUTDIR [SCENARIO ...]
"""

from __future__ import annotations

import collections
import gc
import json
import os
import subprocess
import sys
import threading
import time

MiB = 1 << 20

#: name -> (steps, ground truth, memory fraction cap or None)
SCENARIOS: dict[str, dict] = {
    "healthy_ema_on": dict(
        steps=400, leak=False, onset=None, rate=0, note="EMA copy of the weights switched on at step 150"
    ),
    "healthy_batch_change": dict(steps=400, leak=False, onset=None, rate=0, note="batch size doubled at step 150"),
    "healthy_bounded_cache": dict(
        steps=400, leak=False, onset=None, rate=0, note="keeps the last 16 hidden-state batches in a deque"
    ),
    "healthy_empty_cache": dict(
        steps=400,
        leak=False,
        onset=None,
        rate=0,
        note="variable sequence length, torch.cuda.empty_cache() every 40 steps",
    ),
    "healthy_varlen": dict(
        steps=400,
        leak=False,
        onset=None,
        rate=0,
        note="random sequence length 32..256: reserve grows in steps then settles",
    ),
    "healthy_gc_cycles": dict(
        steps=400,
        leak=False,
        onset=None,
        rate=0,
        note="hidden states held by reference cycles, gc disabled, gc.collect() every 12 steps",
    ),
    "leak_staircase": dict(steps=400, leak=True, onset=0, rate=None, note="keeps the logits of every 8th step"),
    "leak_view_pin": dict(
        steps=400, leak=True, onset=0, rate=None, note="keeps a 1-element view of the logits: pins the whole storage"
    ),
    "leak_fast_oom": dict(
        steps=400,
        leak=True,
        onset=120,
        rate=None,
        frac=0.15,
        note="healthy for 120 steps, then keeps a 4x copy of the fp32 logits each step until OOM",
    ),
    "leak_small_onset": dict(
        steps=500, leak=True, onset=250, rate=None, note="healthy for 250 steps, then keeps 1 MiB a step"
    ),
    "leak_tiny": dict(
        steps=400, leak=True, onset=0, rate=2048, note="keeps 2 KiB a step: would not fill the card in 24 h"
    ),
}


def nvml_sampler(path: str, stop: threading.Event) -> None:
    import pynvml

    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    with open(path, "w") as f:
        while not stop.is_set():
            m = pynvml.nvmlDeviceGetMemoryInfo(h)
            u = pynvml.nvmlDeviceGetUtilizationRates(h)
            procs = [{"pid": p.pid, "used": p.usedGpuMemory} for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h)]
            f.write(
                json.dumps(
                    {
                        "t": time.time(),
                        "mem_used": m.used,
                        "mem_total": m.total,
                        "util_gpu": u.gpu,
                        "util_mem": u.memory,
                        "power_mw": pynvml.nvmlDeviceGetPowerUsage(h),
                        "temp_c": pynvml.nvmlDeviceGetTemperature(h, 0),
                        "clock_sm": pynvml.nvmlDeviceGetClockInfo(h, 1),
                        "procs": procs,
                    }
                )
                + "\n"
            )
            stop.wait(0.1)


def run_one(name: str, outdir: str) -> None:
    import torch
    import torch.nn as nn

    spec = SCENARIOS[name]
    torch.manual_seed(0)
    dev = torch.device("cuda")
    if spec.get("frac"):
        torch.cuda.set_per_process_memory_fraction(spec["frac"])
    vocab, d, layers = 8192, 768, 4
    seq, batch = 256, 16

    class LM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(vocab, d)
            layer = nn.TransformerEncoderLayer(d, 12, 4 * d, batch_first=True, norm_first=True)
            self.body = nn.TransformerEncoder(layer, layers)
            self.head = nn.Linear(d, vocab)

        def forward(self, x):
            h = self.body(
                self.emb(x),
                is_causal=True,
                mask=nn.Transformer.generate_square_subsequent_mask(x.shape[1], device=x.device),
            )
            return h, self.head(h)

    model = LM().to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    ema = None
    kept: list = []
    cache: collections.deque = collections.deque(maxlen=16)
    if name == "healthy_gc_cycles":
        gc.disable()

    stop = threading.Event()
    th = threading.Thread(target=nvml_sampler, args=(os.path.join(outdir, name + ".nvml.jsonl"), stop), daemon=True)
    th.start()
    time.sleep(0.3)
    oom_at = None
    with open(os.path.join(outdir, name + ".iters.jsonl"), "w") as f:
        for i in range(spec["steps"]):
            t0 = time.time()
            try:
                b = batch * 2 if (name == "healthy_batch_change" and i >= 150) else batch
                s = seq
                if name in ("healthy_varlen", "healthy_empty_cache"):
                    s = int(torch.randint(32, 257, ()).item())
                x = torch.randint(0, vocab, (b, s), device=dev)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    h, logits = model(x)
                    loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, vocab).float(), x[:, 1:].reshape(-1))
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                if name == "healthy_ema_on" and i == 150:
                    ema = [p.detach().clone() for p in model.parameters()]
                if ema is not None:
                    with torch.no_grad():
                        for e, p in zip(ema, model.parameters()):
                            e.mul_(0.999).add_(p.detach(), alpha=0.001)
                if name == "healthy_bounded_cache":
                    cache.append(h.detach().float())
                elif name == "healthy_gc_cycles":
                    node: dict = {"h": h.detach().float()}
                    node["self"] = node  # a cycle: only the collector frees it
                    del node
                    if i % 12 == 11:
                        gc.collect()
                elif name == "leak_staircase" and i % 8 == 7:
                    kept.append(logits.detach())
                elif name == "leak_view_pin":
                    kept.append(logits.detach()[0, 0, :1])
                elif name == "leak_fast_oom" and i >= spec["onset"]:
                    kept.append(logits.detach().float().repeat(4, 1, 1))
                elif name == "leak_small_onset" and i >= spec["onset"]:
                    kept.append(h.detach()[:2].float().reshape(-1)[:262144].clone())  # 1 MiB
                elif name == "leak_tiny":
                    kept.append(h.detach()[0, 0, :512].float().clone())  # 2 KiB
                del h, logits
                torch.cuda.synchronize()
            except torch.cuda.OutOfMemoryError as e:
                oom_at = i
                f.write(json.dumps({"i": i, "t": t0, "oom": True, "msg": str(e)[:400]}) + "\n")
                break
            st = torch.cuda.memory_stats()
            f.write(
                json.dumps(
                    {
                        "i": i,
                        "t": t0,
                        "dt": time.time() - t0,
                        "loss": float(loss.item()),
                        "allocated": torch.cuda.memory_allocated(),
                        "reserved": torch.cuda.memory_reserved(),
                        "active": st.get("active_bytes.all.current", 0),
                        "inactive_split": st.get("inactive_split_bytes.all.current", 0),
                        "peak_allocated": torch.cuda.max_memory_allocated(),
                        "alloc_retries": st.get("num_alloc_retries", 0),
                        "num_ooms": st.get("num_ooms", 0),
                    }
                )
                + "\n"
            )
    time.sleep(0.3)
    stop.set()
    th.join()
    steps = []
    with open(os.path.join(outdir, name + ".iters.jsonl")) as f:
        steps = [json.loads(line) for line in f]
    good = [r for r in steps if not r.get("oom")]
    rate = spec["rate"]
    if rate is None:  # measured: what the floor gained per leaking step
        a = [r["allocated"] for r in good if r["i"] >= (spec["onset"] or 0) + 2]
        rate = (a[-1] - a[0]) / max(1, len(a) - 1)
    total = torch.cuda.get_device_properties(0).total_memory
    free_now = total - good[-1]["reserved"]
    step_s = sorted(r["dt"] for r in good)[len(good) // 2]
    meta = {
        "scenario": name,
        "leak": spec["leak"],
        "onset": spec["onset"],
        "oom_at": oom_at,
        "note": spec["note"],
        "pid": os.getpid(),
        "gpu": torch.cuda.get_device_name(0),
        "frac": spec.get("frac"),
        "torch": torch.__version__,
        "median_step_s": step_s,
        "leak_bytes_per_iter": rate,
        "actionable": bool(spec["leak"] and rate > 0 and free_now / (rate / step_s) < 86400),
    }
    with open(os.path.join(outdir, "meta.jsonl"), "a") as f:
        f.write(json.dumps(meta) + "\n")


if __name__ == "__main__":
    out = sys.argv[1]
    names = sys.argv[2:] or list(SCENARIOS)
    if len(names) == 1 and os.environ.get("RECORD_CHILD"):
        run_one(names[0], out)
        sys.exit(0)
    os.makedirs(out, exist_ok=True)
    for n in names:
        r = subprocess.run([sys.executable, __file__, out, n], env={**os.environ, "RECORD_CHILD": "1"})
        print(n, "rc", r.returncode, flush=True)
