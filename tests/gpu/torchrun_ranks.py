"""On a real GPU: per-rank probes under torchrun, beside a real server (issue 13, the part one
card allows: both ranks share the one GPU, gloo backend; the 2-GPU run needs the withheld kind).

    python tests/gpu/torchrun_ranks.py OUTDIR

A `jupyter server` (NVML source) runs; `torchrun --nproc-per-node 2` starts a DDP-style script
whose ranks each call `probe.start()`; rank 1 keeps 32 MiB a step, rank 0 does not. Checks that
`GET kernels` lists both ranks under `scripts` with their rank and device, flags rank 1 only and
names its line, and that `GET snapshot` shows both processes. Writes OUTDIR/torchrun_ranks.json.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_e2e import api, start_server, wait_ready

RANKS = """\
import os, time, torch, torch.distributed as dist
import jupyter_gpu_panel.probe as probe
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.cuda.set_device(0)                 # one card here: both ranks on it
probe.start()
model = torch.nn.Linear(2048, 2048).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(4096, 2048, device="cuda")
keep = []
for i in range(700):
    y = model(x)
    loss = y.pow(2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    g = model.weight.grad.detach().cpu()
    dist.all_reduce(g)                   # the ranks stay in step
    opt.step()
    if rank == 1:
        keep.append(y.detach())          # the leak on rank 1: 4096 x 2048 x 4 B = 32 MiB a step
    torch.cuda.synchronize()
    time.sleep(0.03)
dist.destroy_process_group()
"""


async def main(out: Path) -> int:
    server, port, root, env = start_server(out)
    base = f"http://127.0.0.1:{port}/api/gpu-panel"
    http = AsyncHTTPClient()
    result: dict = {}
    ranks = None
    try:
        await wait_ready(http, port)
        script = root / "ranks.py"
        script.write_text(RANKS)
        ranks = subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", str(script)],
            env=env, stdout=open(out / "torchrun.log", "w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        t0 = time.time()
        flagged_at = None
        doc = {}
        while time.time() - t0 < 60 and ranks.poll() is None:
            doc = await api(http, base, "kernels?refresh=1")
            scripts = doc.get("scripts", [])
            leaky = [s for s in scripts if s["leak"] and s["leak"]["actionable"]]
            if leaky and flagged_at is None:
                flagged_at = time.time() - t0
                result["first_alarm"] = {"t": round(flagged_at, 1), "rank": leaky[0]["rank"],
                                         "message": leaky[0]["leak"]["message"]}  # fmt: skip
            triaged = [s for s in leaky if (s["probe"]["triage"] or {}).get("state") == "done"]
            if triaged:
                break
            await asyncio.sleep(1)
        snap = await api(http, base, "snapshot")
        result["scripts"] = [
            {"pid": s["pid"], "rank": s["rank"], "device": s["probe"]["device"], "steps": s["probe"]["steps"],
             "leak": s["leak"] and {k: s["leak"][k] for k in ("leak", "actionable", "bytes_per_step", "message")},
             "triage": (s["probe"]["triage"] or {}).get("message")}
            for s in doc.get("scripts", [])
        ]  # fmt: skip
        result["snapshot_processes"] = [
            {"pid": p["pid"], "used": p["used"], "user": p["user"], "owner": p["owner"]}
            for g in snap["gpus"] for p in g["processes"]
        ]  # fmt: skip
        by_rank = {s["rank"]: s for s in result["scripts"]}
        ok = (
            set(by_rank) == {"0", "1"}
            and by_rank["1"]["leak"] and by_rank["1"]["leak"]["actionable"]
            and not (by_rank["0"]["leak"] or {}).get("leak")
            and {s["pid"] for s in result["scripts"]} <= {p["pid"] for p in result["snapshot_processes"]}
        )  # fmt: skip
        result["ok"] = bool(ok)
    finally:
        (out / "torchrun_ranks.json").write_text(json.dumps(result, indent=1, default=str))
        if ranks is not None and ranks.poll() is None:
            ranks.terminate()
        server.terminate()
        server.wait(timeout=20)
    print(json.dumps({"ok": result.get("ok"), "first_alarm": result.get("first_alarm")}))
    for s in result.get("scripts", []):
        print(json.dumps(s)[:400])
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
