"""On a real GPU: a real Jupyter server, two real kernels with the probe, one leaking.

    python tests/gpu/server_e2e.py OUTDIR

Starts `jupyter server` with the NVML source, opens two notebook sessions (leaky.ipynb and
healthy.ipynb), loads the probe into both through `POST kernels/{id}/probe` (the panel's
"Track memory" button), runs a training loop in each (one keeps 32 MiB a step), and polls
`GET kernels` and `GET snapshot`. Writes what it saw to OUTDIR and prints a summary; exits
non-zero when the leak is not reported on the right kernel or the healthy one is flagged.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

TOKEN = "e2e"
HEAD = {"Authorization": f"token {TOKEN}"}

TRAIN = """
import time, torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4096, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 4096)).cuda()
opt = torch.optim.AdamW(model.parameters())
x = torch.randn(2048, 4096, device="cuda")   # hidden states: 2048 x 4096 x 4 B = 32 MiB
keep = []
for i in range({steps}):
    h = model[0](x)
    loss = model[2](model[1](h)).pow(2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if {leak}:
        keep.append(h.detach())              # the leak: 32 MiB a step kept forever
    torch.cuda.synchronize()
    time.sleep(0.02)
print("done", i, torch.cuda.memory_allocated())
"""


SCRIPT = """\
import time, torch
import jupyter_gpu_panel.probe as probe
probe.start()  # a script, not a kernel: torchrun ranks do the same
model = torch.nn.Linear(2048, 2048).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(4096, 2048, device="cuda")
keep = []
for i in range(600):
    y = model(x)
    loss = y.pow(2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    keep.append(y.detach())  # the leak: 4096 x 2048 x 4 B = 32 MiB a step
    torch.cuda.synchronize()
    time.sleep(0.02)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def api(http: AsyncHTTPClient, base: str, path: str, method: str = "GET", body: object = None) -> dict:
    resp = await http.fetch(
        f"{base}/{path}",
        method=method,
        headers=HEAD,
        body=None if body is None else json.dumps(body),
        raise_error=False,
        request_timeout=60,
    )
    if resp.code >= 400:
        raise RuntimeError(f"{method} {path}: {resp.code} {resp.body[:300]!r}")
    return json.loads(resp.body) if resp.body else {}


async def execute(port: int, kernel_id: str, code: str) -> None:
    url = f"ws://127.0.0.1:{port}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
    ws = await websocket_connect(HTTPRequest(url, headers=HEAD))
    msg = {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "username": "e2e",
            "session": uuid.uuid4().hex,
            "version": "5.3",
            "date": "",
        },
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "buffers": [],
        "content": {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
    }
    ws.write_message(json.dumps(msg))
    ws.close()


def nvidia_smi(*query: str) -> list[list[str]]:
    out = subprocess.run(
        ["nvidia-smi", *query, "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30
    )
    return [[c.strip() for c in line.split(",")] for line in out.stdout.strip().splitlines()]


def compare_with_nvidia_smi(snap: dict) -> dict:
    """The server's snapshot against nvidia-smi read right after it (the loops have finished, so
    memory is still): device memory used and total, and each process's memory, in MiB."""
    MiB = 2**20
    gpus = {
        int(r[0]): {"used": int(r[1]), "total": int(r[2])}
        for r in nvidia_smi("--query-gpu=index,memory.used,memory.total")
    }
    apps = {int(r[0]): int(r[1]) for r in nvidia_smi("--query-compute-apps=pid,used_memory") if r[1].isdigit()}
    rows, agree = [], True
    for g in snap["gpus"]:
        smi = gpus.get(g["index"], {})
        ours = {"used": round(g["mem_used"] / MiB), "total": round(g["mem_total"] / MiB)}
        # memory may move by a few MiB between the two reads (other clients of the card)
        ok = smi and abs(ours["used"] - smi["used"]) <= max(64, 0.02 * smi["used"]) and ours["total"] == smi["total"]
        rows.append({"gpu": g["index"], "ours": ours, "nvidia_smi": smi, "agree": bool(ok)})
        agree = agree and bool(ok)
        for p in g["processes"]:
            if p["pid"] in apps:
                pok = abs(round(p["used"] / MiB) - apps[p["pid"]]) <= 64
                rows.append(
                    {"pid": p["pid"], "ours": round(p["used"] / MiB), "nvidia_smi": apps[p["pid"]], "agree": pok}
                )
                agree = agree and pok
    return {"agree": agree, "rows": rows}


def start_server(out: Path, *options: str) -> tuple[subprocess.Popen, int, Path, dict]:
    """`jupyter server` with the panel on the NVML source (plus ``options``): process, port, root, env."""
    port = free_port()
    root = Path(tempfile.mkdtemp())
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(root / "runtime"), JUPYTER_CONFIG_DIR=str(root / "cfg"))
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={port}",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
         "--ServerApp.jpserver_extensions={'jupyter_gpu_panel': True}",
         "--GPUPanel.source=nvml", "--GPUPanel.interval=0.5", "--GPUPanel.kernel_refresh=1", *options],
        env=env, stdout=open(out / "server.log", "w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    return server, port, root, env


async def wait_ready(http: AsyncHTTPClient, port: int) -> None:
    for _ in range(150):
        try:
            await api(http, f"http://127.0.0.1:{port}", "api/gpu-panel/status")
            return
        except Exception:  # noqa: BLE001 - not up yet
            await asyncio.sleep(0.2)


async def main(out: Path) -> int:
    server, port, root, env = start_server(out)
    log = open(out / "script.log", "w")
    base = f"http://127.0.0.1:{port}"
    http = AsyncHTTPClient()
    result: dict = {"ok": False}
    try:
        await wait_ready(http, port)
        result["status"] = await api(http, base, "api/gpu-panel/status")
        result["snapshot_idle"] = await api(http, base, "api/gpu-panel/snapshot")
        sessions = {}
        for name in ("leaky", "healthy"):
            s = await api(
                http,
                base,
                "api/sessions",
                "POST",
                {"path": f"{name}.ipynb", "type": "notebook", "name": f"{name}.ipynb", "kernel": {"name": "python3"}},
            )
            sessions[name] = s["kernel"]["id"]
        await asyncio.sleep(3)
        result["probe_load"] = {}
        for name, kid in sessions.items():
            result["probe_load"][name] = await api(http, base, f"api/gpu-panel/kernels/{kid}/probe", "POST", {})
        t_start = time.time()
        await execute(port, sessions["leaky"], TRAIN.format(steps=500, leak=True))
        await execute(port, sessions["healthy"], TRAIN.format(steps=500, leak=False))
        script_path = root / "train_script.py"
        script_path.write_text(SCRIPT)
        script = subprocess.Popen([sys.executable, str(script_path)], env=env, stdout=log, stderr=subprocess.STDOUT)
        script_seen = None
        timeline = []
        first_alarm = None
        healthy_flagged = False
        while time.time() - t_start < 60:
            await asyncio.sleep(1.0)
            doc = await api(http, base, "api/gpu-panel/kernels")
            row = {"t": round(time.time() - t_start, 1)}
            for k in doc["kernels"]:
                name = "leaky" if k["kernel_id"] == sessions["leaky"] else "healthy"
                leak = k.get("leak") or {}
                probe = k.get("probe") or {}
                row[name] = {
                    "notebook": k["notebook"],
                    "pids": k["pids"],
                    "memory": k["memory"],
                    "steps": probe.get("steps"),
                    "leak": leak.get("leak"),
                    "actionable": leak.get("actionable"),
                    "source": leak.get("source"),
                    "message": leak.get("message"),
                    "steps_to_oom": leak.get("steps_to_oom"),
                    "triage": probe.get("triage"),
                }
                if name == "leaky" and leak.get("actionable") and first_alarm is None:
                    first_alarm = {"t": row["t"], "step": probe.get("steps"), "leak": leak}
                if name == "healthy" and leak.get("actionable"):
                    healthy_flagged = True
            for sc in doc.get("scripts", []):
                if sc["pid"] == script.pid:
                    script_seen = sc
                    row["script"] = {
                        "steps": (sc["probe"] or {}).get("steps"),
                        "actionable": (sc["leak"] or {}).get("actionable"),
                        "triage": ((sc["probe"] or {}).get("triage") or {}).get("state"),
                    }
            timeline.append(row)
            print(json.dumps(row)[:400], flush=True)
            triage = (row.get("leaky") or {}).get("triage") or {}
            script_done = (row.get("script") or {}).get("triage") in ("done", "error")
            if (
                first_alarm
                and (row.get("leaky", {}).get("steps") or 0) >= 499
                and triage.get("state") in ("done", "error")
                and script_done
            ):
                break
        result["kernels_final"] = doc
        script.kill()  # before comparing memory with nvidia-smi: a running leak moves it
        script.wait()
        await asyncio.sleep(2.0)
        snap = await api(http, base, "api/gpu-panel/snapshot")
        result["snapshot_busy"] = snap
        result["vs_nvidia_smi"] = compare_with_nvidia_smi(snap)
        print("vs nvidia-smi:", json.dumps(result["vs_nvidia_smi"]))
        owners = {p["pid"]: p.get("owner") for g in snap["gpus"] for p in g["processes"]}
        result["owners"] = owners
        result["timeline"] = timeline
        result["first_alarm"] = first_alarm
        result["healthy_flagged"] = healthy_flagged
        leaky_nb = any((o or {}).get("notebook") == "leaky.ipynb" for o in owners.values())
        # the alarm asked the probe for the allocation history: it must name the leaking line
        triage = next(
            (k.get("probe") or {}).get("triage") for k in doc["kernels"] if k["kernel_id"] == sessions["leaky"]
        )
        result["triage"] = triage
        triage_ok = (
            bool(triage)
            and triage.get("state") == "done"
            and "h = model[0](x)" in (triage.get("message") or "")
            and "32 MiB a step" in (triage.get("message") or "")
        )
        print("triage:", json.dumps(triage)[:600])
        # the script beside the kernels: listed under scripts, its leak found and its line named
        result["script"] = script_seen
        st = ((script_seen or {}).get("probe") or {}).get("triage") or {}
        script_ok = (
            bool(script_seen)
            and bool((script_seen.get("leak") or {}).get("actionable"))
            and st.get("state") == "done"
            and "y = model(x)" in (st.get("message") or "")
        )
        print(
            "script:",
            json.dumps(
                {
                    "argv": (script_seen or {}).get("argv"),
                    "owner": (script_seen or {}).get("owner"),
                    "leak": ((script_seen or {}).get("leak") or {}).get("message"),
                    "triage": st.get("message"),
                }
            ),
        )
        result["ok"] = (
            bool(first_alarm)
            and not healthy_flagged
            and leaky_nb
            and result["vs_nvidia_smi"]["agree"]
            and triage_ok
            and script_ok
        )
        print("\nSUMMARY", json.dumps({k: result[k] for k in ("ok", "first_alarm", "healthy_flagged")})[:1500])
        print("owners:", json.dumps(owners))
    finally:
        if "script" in locals():
            script.kill()
        (out / "server_e2e.json").write_text(json.dumps(result, indent=1, default=str))
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
