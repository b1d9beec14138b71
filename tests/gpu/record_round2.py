"""Record the round-2 leak scenarios on a real GPU, through the real probe (needs CUDA).

    python tests/gpu/record_round2.py OUTDIR [SCENARIO ...]      # all scenarios: ~6-7 min
    python tests/gpu/record_round2.py --list

Each scenario runs in its own process (a fresh caching allocator) with
``jupyter_gpu_panel.probe`` started as a user would start it, so ``NAME.iters.jsonl`` is
the probe's own file (kind, iter, opt/mod, steps_per_iteration, limit re-read, free), plus a
last ``{"oom": true}`` line where the loop raised ``torch.cuda.OutOfMemoryError``.
``NAME.nvml.jsonl`` holds 10 Hz NVML samples taken by a thread (the shared traces' format) and
``meta.jsonl`` one line of ground truth per scenario, in ITERATIONS of the loop (``onset``,
``oom_at``, ``leak_bytes_per_iter``); ``loop_iters`` is the loop's own counter at the end and
``probe_iters`` the probe's, so the iteration grouping is checked against the loop itself.
``bounded: [a, b]``: memory that grows from iteration ``a`` and is full (or first given back)
at ``b``: a leak until then to anyone who has not seen it end, so an alarm there is allowed;
after it, none. ``other_ready_iter``: the iteration at which a second process had taken its
memory (the forecast's truth changes there).
``gan_leak_d`` also leaves ``gan_leak_d.triage.json``: the probe's triage of 4 iterations
(torch's allocation history with Python stacks) for the triage tests.

Needs torch with CUDA and nvidia-ml-py (pynvml); this checkout on ``sys.path``. Nothing else.
Every scenario stops by itself within ~60 s; a failing one is reported and the rest go on.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

MiB = 1 << 20
GiB = 1 << 30

#: name -> ground truth and knobs. ``rate`` None: measured from the readings.
SCENARIOS: dict[str, dict] = {
    "gan_leak_d": dict(
        leak=True,
        onset=0,
        rate=None,
        iters=1500,
        seconds=40,
        kind="step",
        note="GAN, separate Adam for G and D (2 optimizer steps an iteration); the D update "
        "keeps the fake batch `fake = G(z)` every iteration (12 MiB)",
    ),
    "gan_healthy": dict(
        leak=False, onset=None, rate=0, iters=800, seconds=25, kind="step", note="the same GAN without the leak"
    ),
    "bounded_deque": dict(
        leak=False,
        onset=None,
        rate=0,
        iters=900,
        seconds=30,
        kind="step",
        bounded=(60, 360),
        note="keeps the last 300 feature batches (256 KiB each) in a deque(maxlen=300) "
        "from iteration 60: grows 300 iterations, then flat",
    ),
    "bounded_cache": dict(
        leak=False,
        onset=None,
        rate=0,
        iters=500,
        seconds=30,
        kind="step",
        bounded=(50, 114),
        note="an LRU cache capped at 64 entries of 4 MiB from iteration 50: grows 64 iterations, then flat",
    ),
    "leak_fraction_oom": dict(
        leak=True,
        onset=60,
        rate=None,
        iters=2000,
        seconds=40,
        kind="step",
        frac=0.05,
        note="probe started at fraction 1; at iteration 60 the loop sets "
        "set_per_process_memory_fraction(0.05) and keeps 64 MiB an iteration until OOM",
    ),
    "leak_fraction_oom_fast": dict(
        leak=True,
        onset=40,
        rate=None,
        iters=2000,
        seconds=30,
        kind="step",
        frac=0.05,
        note="fraction 0.05 set after the probe started; from iteration 40 keeps 256 MiB an iteration until OOM",
    ),
    "leak_oom_1gib": dict(
        leak=True,
        onset=30,
        rate=None,
        iters=2000,
        seconds=30,
        kind="step",
        frac=0.08,
        note="fraction 0.08 set after the probe started; from iteration 30 keeps 1 GiB an "
        "iteration until OOM (the alarm can only come a few iterations ahead)",
    ),
    "leak_oom_512": dict(
        leak=True,
        onset=50,
        rate=None,
        iters=2000,
        seconds=30,
        kind="step",
        frac=0.1,
        note="fraction 0.1 set after the probe started; from iteration 50 keeps 512 MiB an iteration until OOM",
    ),
    "leak_oom_varlen": dict(
        leak=True,
        onset=40,
        rate=None,
        iters=2000,
        seconds=30,
        kind="step",
        frac=0.05,
        note="fraction 0.05; random sequence length 64..256; from iteration 40 keeps the "
        "fp32 logits (32-128 MiB, varying) every iteration until OOM",
    ),
    "second_process": dict(
        leak=True,
        onset=0,
        rate=None,
        iters=4000,
        seconds=50,
        kind="step",
        note="keeps 64 MiB an iteration; at iteration 150 a second process takes all but "
        "8 GiB of the card's free memory: the leak reaches OOM on the device",
    ),
    "nvml_staircase_32": dict(
        leak=True,
        onset=0,
        rate=None,
        iters=10000,
        seconds=30,
        kind="step",
        step_s=0.05,
        note="keeps 32 MiB every 4th iteration, ~50 ms an iteration",
    ),
    "nvml_1mib": dict(
        leak=True,
        onset=0,
        rate=None,
        iters=10000,
        seconds=30,
        kind="step",
        step_s=0.02,
        note="keeps 1 MiB an iteration, ~20 ms an iteration",
    ),
    "healthy_varlen_long": dict(
        leak=False,
        onset=None,
        rate=0,
        iters=10000,
        seconds=35,
        kind="step",
        note="random sequence length 32..256 and batch 8..32: the reserve grows in "
        "steps, then settles (NVML's hardest healthy case)",
    ),
    "inference_leak": dict(
        leak=True,
        onset=0,
        rate=None,
        iters=3000,
        seconds=25,
        kind="forward",
        step_s=0.006,
        note="no optimizer: an eval loop, encoder then head under no_grad, keeps the "
        "head's output (2 MiB) every iteration",
    ),
    "generate_healthy": dict(
        leak=False,
        onset=None,
        rate=0,
        iters=2400,
        seconds=25,
        kind="forward",
        step_s=0.006,
        bounded=(0, 120),
        note="no optimizer: token-by-token generation, a KV cache that grows 1 MiB a "
        "token for 120 tokens and is dropped after each sequence",
    ),
}


# ------------------------------------------------------------------------------ NVML sampler


def nvml_sampler(path: str, stop: threading.Event) -> None:
    import pynvml

    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(int(os.environ.get("RECORD_NVML_INDEX", "0")))
    with open(path, "w") as f:
        while not stop.is_set():
            m = pynvml.nvmlDeviceGetMemoryInfo(h)
            try:
                u = pynvml.nvmlDeviceGetUtilizationRates(h)
                util = (u.gpu, u.memory)
            except pynvml.NVMLError:
                util = (None, None)
            procs = [{"pid": p.pid, "used": p.usedGpuMemory} for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h)]
            f.write(
                json.dumps(
                    {
                        "t": time.time(),
                        "mem_used": m.used,
                        "mem_total": m.total,
                        "util_gpu": util[0],
                        "util_mem": util[1],
                        "power_mw": pynvml.nvmlDeviceGetPowerUsage(h),
                        "temp_c": pynvml.nvmlDeviceGetTemperature(h, 0),
                        "clock_sm": pynvml.nvmlDeviceGetClockInfo(h, 1),
                        "procs": procs,
                    }
                )
                + "\n"
            )
            f.flush()
            stop.wait(0.1)


# ------------------------------------------------------------------------------ models


def make_models(torch):
    nn = torch.nn

    class LM(nn.Module):
        """The small transformer LM of the recorded H100 traces."""

        def __init__(self, vocab=8192, d=768, layers=4):
            super().__init__()
            self.vocab = vocab
            self.emb = nn.Embedding(vocab, d)
            layer = nn.TransformerEncoderLayer(d, 12, 4 * d, batch_first=True, norm_first=True)
            self.body = nn.TransformerEncoder(layer, layers)
            self.head = nn.Linear(d, vocab)

        def forward(self, x):
            mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1], device=x.device)
            h = self.body(self.emb(x), is_causal=True, mask=mask)
            return h, self.head(h)

    class Generator(nn.Module):
        def __init__(self, z=128, out=3 * 64 * 64):
            super().__init__()
            self.net = nn.Sequential(
                nn.Linear(z, 1024),
                nn.BatchNorm1d(1024),
                nn.ReLU(),
                nn.Linear(1024, 4096),
                nn.BatchNorm1d(4096),
                nn.ReLU(),
                nn.Linear(4096, out),
                nn.Tanh(),
            )

        def forward(self, z):
            return self.net(z)

    class Discriminator(nn.Module):
        def __init__(self, inp=3 * 64 * 64):
            super().__init__()
            self.features = nn.Sequential(
                nn.Linear(inp, 4096), nn.LeakyReLU(0.2), nn.Linear(4096, 1024), nn.LeakyReLU(0.2)
            )
            self.out = nn.Linear(1024, 1)

        def forward(self, x):
            return self.out(self.features(x))

    return LM, Generator, Discriminator


# ------------------------------------------------------------------------------ one scenario


class Recorder:
    def __init__(self, name: str, outdir: str) -> None:
        import torch

        import jupyter_gpu_panel.probe as probe_mod

        self.torch = torch
        self.name = name
        self.outdir = outdir
        self.spec = SCENARIOS[name]
        self.tmp = tempfile.mkdtemp(prefix="probe-")
        self.probe = probe_mod.start(directory=self.tmp, max_bytes=1 << 30)
        if self.probe is None:
            raise SystemExit("the probe cannot run here")
        self.stop = threading.Event()
        self.nvml = threading.Thread(
            target=nvml_sampler, args=(os.path.join(outdir, name + ".nvml.jsonl"), self.stop), daemon=True
        )
        self.nvml.start()
        time.sleep(0.3)
        self.t_end = time.time() + self.spec["seconds"]
        self.oom_at = None
        self.k = -1
        self.extra: dict = {}

    def pace(self, t0: float) -> None:
        """Pad an iteration to the scenario's period (a data loader's wait)."""
        step_s = self.spec.get("step_s")
        if step_s:
            self.torch.cuda.synchronize()
            left = step_s - (time.time() - t0)
            if left > 0:
                time.sleep(left)

    def loop(self, body) -> None:
        torch = self.torch
        for k in range(self.spec["iters"]):
            self.k = k
            t0 = time.time()
            try:
                body(k)
                torch.cuda.synchronize()
            except torch.cuda.OutOfMemoryError as e:
                self.oom_at = k
                p = self.probe
                p._fh.write(json.dumps({"i": p.step, "iter": k, "t": t0, "oom": True, "msg": str(e)[:400]}) + "\n")
                p._fh.flush()
                break
            self.pace(t0)
            if time.time() > self.t_end:
                break

    def finish(self) -> None:
        torch = self.torch
        import jupyter_gpu_panel.probe as probe_mod

        p = self.probe
        its = p.iterations[self.spec["kind"]]
        probe_iters = its.index
        path = p.path
        probe_mod.stop()
        time.sleep(0.3)
        self.stop.set()
        self.nvml.join()
        shutil.copy(path, os.path.join(self.outdir, self.name + ".iters.jsonl"))
        with open(path) as f:
            recs = [json.loads(line) for line in f if line.strip()]
        good = [r for r in recs if not r.get("oom") and r.get("kind", "step") == self.spec["kind"]]
        firsts, seen = [], set()
        for r in good:
            if r["iter"] not in seen:
                seen.add(r["iter"])
                firsts.append(r)
        spec = self.spec
        rate = spec["rate"]
        if rate is None:  # what the floor gained per leaking iteration, from the probe's readings
            a = [(r["iter"], r["allocated"]) for r in firsts if r["iter"] >= (spec["onset"] or 0) + 2]
            a = a[: len(a) - 1] if self.oom_at is not None else a
            rate = (a[-1][1] - a[0][1]) / max(1, a[-1][0] - a[0][0]) if len(a) >= 2 else 0
        total = torch.cuda.get_device_properties(0).total_memory
        ts = [r["t"] for r in firsts]
        dts = sorted(b - a for a, b in zip(ts, ts[1:]))
        step_s = dts[len(dts) // 2] if dts else None
        cap = total * spec["frac"] if spec.get("frac") else total
        free_now = cap - (firsts[-1]["reserved"] if firsts else 0)
        spis = [r.get("steps_per_iteration") for r in firsts if r.get("steps_per_iteration")]
        meta = {
            "scenario": self.name,
            "leak": spec["leak"],
            "onset": spec["onset"],
            "oom_at": self.oom_at,
            "note": spec["note"],
            "pid": os.getpid(),
            "gpu": torch.cuda.get_device_name(0),
            "mem_total": total,
            "frac": spec.get("frac"),
            "torch": torch.__version__,
            "median_step_s": step_s,
            "leak_bytes_per_iter": rate,
            "kind": spec["kind"],
            "probe": True,  # records carry limit/free: judge them without an outside capacity
            "steps_per_iteration": (sum(spis) / len(spis)) if spis else 1,
            "loop_iters": self.k,
            "probe_iters": probe_iters,
            "records": len(recs),
            "actionable": bool(spec["leak"] and rate > 0 and step_s and free_now / (rate / step_s) < 86400),
            **({"bounded": list(spec["bounded"])} if spec.get("bounded") else {}),
            **self.extra,
        }
        with open(os.path.join(self.outdir, "meta.jsonl"), "a") as f:
            f.write(json.dumps(meta) + "\n")
        shutil.rmtree(self.tmp, ignore_errors=True)


def lm_step(torch, model, opt, b, s, dev):
    nn = torch.nn
    x = torch.randint(0, model.vocab, (b, s), device=dev)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        h, logits = model(x)
        loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, model.vocab).float(), x[:, 1:].reshape(-1))
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return h, logits


def run_one(name: str, outdir: str) -> None:
    import torch

    torch.manual_seed(0)
    dev = torch.device("cuda")
    LM, Generator, Discriminator = make_models(torch)
    rec = Recorder(name, outdir)
    spec = rec.spec
    kept: list = []
    nn = torch.nn

    if name.startswith("gan_"):
        G, D = Generator().to(dev), Discriminator().to(dev)
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        bce = nn.BCEWithLogitsLoss()
        batch = 256
        ones = torch.ones(batch, 1, device=dev)
        zeros = torch.zeros(batch, 1, device=dev)
        triage_at = 500 if name == "gan_leak_d" else None

        def body(k):
            real = torch.rand(batch, 3 * 64 * 64, device=dev) * 2 - 1
            z = torch.randn(batch, 128, device=dev)
            # D update
            fake = G(z)
            d_loss = bce(D(real), ones) + bce(D(fake.detach()), zeros)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            if name == "gan_leak_d":
                kept.append(fake.detach())  # the leak: the D update keeps every fake batch
            # G update
            g_loss = bce(D(fake), ones)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            if triage_at is not None and k == triage_at:
                with open(rec.probe.triage_request_path, "w") as fh:
                    fh.write(json.dumps({"steps": 4}))

        rec.loop(body)
        if triage_at is not None:
            rec.extra["triage_requested_at"] = triage_at
            if rec.probe.triage_path.exists():
                shutil.copy(rec.probe.triage_path, os.path.join(outdir, name + ".triage.json"))

    elif name.startswith("bounded_"):
        model = LM().to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
        start, _end = spec["bounded"]
        buf: collections.deque = collections.deque(maxlen=300)
        cache: collections.OrderedDict = collections.OrderedDict()

        def body(k):
            h, logits = lm_step(torch, model, opt, 16, 256, dev)
            if k >= start:
                if name == "bounded_deque":
                    buf.append(h.detach().reshape(-1)[:65536].float().clone())  # 256 KiB
                else:
                    cache[k] = h.detach().reshape(-1)[: 1 << 20].float().clone()  # 4 MiB
                    if len(cache) > 64:
                        cache.popitem(last=False)

        rec.loop(body)

    elif name.startswith("leak_fraction_oom"):
        model = LM().to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
        onset = spec["onset"]
        per = 64 * MiB if name == "leak_fraction_oom" else 256 * MiB

        def body(k):
            if k == onset:
                torch.cuda.set_per_process_memory_fraction(spec["frac"])
            h, logits = lm_step(torch, model, opt, 16, 256, dev)
            if k >= onset:
                kept.append(torch.empty(per // 4, dtype=torch.float32, device=dev).fill_(float(k)))

        rec.loop(body)

    elif name.startswith("leak_oom_"):
        model = LM().to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
        onset = spec["onset"]
        gen = torch.Generator().manual_seed(2)

        def body(k):
            if k == 10:
                torch.cuda.set_per_process_memory_fraction(spec["frac"])
            s = int(torch.randint(64, 257, (), generator=gen)) if name == "leak_oom_varlen" else 256
            h, logits = lm_step(torch, model, opt, 16, s, dev)
            if k >= onset:
                if name == "leak_oom_varlen":
                    kept.append(logits.detach().float())
                else:
                    per = GiB if name == "leak_oom_1gib" else 512 * MiB
                    kept.append(torch.empty(per // 4, dtype=torch.float32, device=dev).fill_(1.0))

        rec.loop(body)

    elif name == "second_process":
        model = LM().to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
        ready = os.path.join(rec.tmp, "other.ready")
        other: dict = {}
        code = (
            "import time, torch, sys\n"
            "torch.cuda.init(); free, total = torch.cuda.mem_get_info()\n"
            f"keep = torch.empty(max(0, free - {8 * GiB}), dtype=torch.uint8, device='cuda')\n"
            "torch.cuda.synchronize()\n"
            f"open({ready!r}, 'w').write(str(keep.numel()))\n"
            "time.sleep(120)\n"
        )

        def body(k):
            if k == 150:
                other["proc"] = subprocess.Popen([sys.executable, "-c", code])
                other["started_iter"] = k
            if "proc" in other and "ready_iter" not in other and os.path.exists(ready):
                other["ready_iter"] = k
            h, logits = lm_step(torch, model, opt, 16, 256, dev)
            kept.append(torch.empty(16 * MiB, dtype=torch.float32, device=dev).fill_(1.0))  # 64 MiB

        try:
            rec.loop(body)
        finally:
            proc = other.get("proc")
            if proc is not None:
                rec.extra["other_pid"] = proc.pid
                rec.extra["other_started_iter"] = other.get("started_iter")
                rec.extra["other_ready_iter"] = other.get("ready_iter")
                kept.clear()
                proc.kill()
                proc.wait()

    elif name.startswith("nvml_") or name == "healthy_varlen_long":
        model = LM().to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
        gen = torch.Generator().manual_seed(1)

        def body(k):
            b, s = 16, 256
            if name == "healthy_varlen_long":
                s = int(torch.randint(32, 257, (), generator=gen))
                b = int(torch.randint(8, 33, (), generator=gen))
            h, logits = lm_step(torch, model, opt, b, s, dev)
            if name == "nvml_staircase_32" and k % 4 == 3:
                kept.append(torch.empty(8 * MiB, dtype=torch.float32, device=dev).fill_(1.0))  # 32 MiB
            elif name == "nvml_1mib":
                kept.append(h.detach().reshape(-1)[:262144].float().clone())  # 1 MiB

        rec.loop(body)

    elif name == "inference_leak":
        d = 2048
        enc = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d)).to(dev).eval()
        head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d)).to(dev).eval()

        def body(k):
            with torch.no_grad():
                x = torch.randn(256, d, device=dev)
                h = enc(x)
                out = head(h)
                kept.append(out)  # 2 MiB: the leak (outputs collected on the GPU)

        rec.loop(body)

    elif name == "generate_healthy":
        d = 1024
        lm = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d)).to(dev).eval()
        cache: list = []

        def body(k):
            with torch.no_grad():
                if k % 120 == 0:
                    cache.clear()  # a new sequence: its KV cache is dropped
                tok = torch.randn(8, d, device=dev)
                y = lm(tok)
                cache.append(torch.cat([y] * 32, dim=1).reshape(-1)[:262144].clone())  # 1 MiB a token

        rec.loop(body)
    else:
        raise SystemExit(f"unknown scenario {name}")
    kept.clear()
    rec.finish()


def main() -> int:
    if "--list" in sys.argv:
        for n, s in SCENARIOS.items():
            print(f"{n:24} {s['note']}")
        return 0
    out = sys.argv[1]
    names = sys.argv[2:] or list(SCENARIOS)
    if len(names) == 1 and os.environ.get("RECORD_CHILD"):
        run_one(names[0], out)
        return 0
    os.makedirs(out, exist_ok=True)
    failed = []
    for n in names:
        t0 = time.time()
        try:
            r = subprocess.run([sys.executable, __file__, out, n], env={**os.environ, "RECORD_CHILD": "1"}, timeout=150)
            rc = r.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        print(f"{n}: rc {rc} in {time.time() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(n)
    print("failed:", failed or "none")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
