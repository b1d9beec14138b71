#!/bin/bash
# The OOM, explained, on a real GPU (issue 19 item 4), for the one-GPU H200:
#   1. a real jupyter_server with the extension, a real kernel (a notebook session), the probe loaded
#      through the panel's own action (POST kernels/<id>/probe);
#   2. the kernel caps itself with torch.cuda.set_per_process_memory_fraction (8 GiB) and runs a
#      training loop whose validation forgot no_grad (`val_loss += model(xv).pow(2).mean()` every
#      5th step) until CUDA runs out of memory;
#   3. GET kernels: the row's verdict is state "oom", names the step, the cell and the line that holds
#      the memory (`val_loss += ...`, cell line N), what was asked, allocated, reserved and the cap;
#      and the idle kernel's `cached` is a number (issue 19 item 5).
# Run from the repository root on the GPU machine:  bash tests/gpu/oom_proof.sh
# Needs python3 with torch (CUDA), jupyter_server, ipykernel, nvidia-ml-py, psutil, numpy, scipy, orjson;
# a folder of wheels for them can be carried as .whl (installed offline into /tmp/site).
# Prints one JSON document (also written to $OUT/oom-proof.json, with the probe's OOM line as
# $OUT/oom-record.json and the server's log). Exit status 0 only when every check held.
# OOM_PROOF_CPU=1 dry-runs it on a machine without a GPU: the kernel stands in for CUDA at torch's
# boundary (as tests/test_oom_kernel.py does) and raises torch's real OOM text after a CPU leak.
set -u
export PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
if [ -d .whl ] && [ -z "${OOM_PROOF_CPU:-}" ]; then
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
        >/tmp/pip.log 2>&1 || { tail -5 /tmp/pip.log; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
timeout 560 $PYTHON - "$OUT" <<'PY'
import json, os, secrets, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

out = Path(sys.argv[1])
cpu = bool(os.environ.get("OOM_PROOF_CPU"))
work = Path(tempfile.mkdtemp(prefix="oom-proof-"))
runtime = work / "runtime"
token = secrets.token_hex(16)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
server = subprocess.Popen(
    [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
     f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
     "--ServerApp.jpserver_extensions={'jupyter_gpu_panel': True}",
     "--GPUPanel.source=nvml" if not cpu else "--GPUPanel.source=replay", "--GPUPanel.kernel_refresh=0.5"],
    env=env, stdout=open(out / "oom-server.log", "w"), stderr=subprocess.STDOUT,
)
base = f"http://127.0.0.1:{port}"
T0 = time.time()


def say(*args):
    print(f"[{time.time() - T0:6.1f} s]", *args, file=sys.stderr, flush=True)


def call(method, path, body=None, timeout=60):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


CPU_STAND_IN = """
import types, torch
torch.cuda.current_device = lambda: 0
torch.cuda.get_device_properties = lambda device: types.SimpleNamespace(total_memory=1 << 30)
torch.cuda.get_per_process_memory_fraction = lambda device: 1.0
import jupyter_gpu_panel.probe as _p, jupyter_gpu_panel.probe.core as _core
_p.unavailable_reason = lambda: None
_core.Probe.holds = lambda self, tensor: True
"""
SETUP = """import time, torch
dev = 'cpu' if {cpu} else 'cuda'
total = 1 << 30 if {cpu} else torch.cuda.get_device_properties(0).total_memory
if not {cpu}:
    torch.cuda.set_per_process_memory_fraction(8 * 2**30 / total)  # an 8 GiB card
dim = 128 if {cpu} else 2048  # the dry run's CPU is slow
model = torch.nn.Sequential(*[torch.nn.Linear(dim, dim) for _ in range(4)]).to(dev)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
print('SETUP', torch.__version__, dev)
"""
# the cell that runs out of memory: line 10 keeps every 5th step's autograd graph
LOOP = """val_loss = 0
started = time.time()
for step in range(1_000_000):
    x = torch.randn(dim, dim, device=dev)
    loss = model(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 5 == 0:
        val_loss += model(torch.randn(dim, dim, device=dev)).pow(2).mean()
    if {cpu} and step == 20:
        raise torch.OutOfMemoryError({text!r})
    if time.time() - started > 240:
        print('NO OOM after 240 s at step', step)
        break
"""
CPU_TEXT = ("CUDA out of memory. Tried to allocate 64.00 MiB. GPU 0 has a total capacity of 139.80 GiB of which "
            "127.92 GiB is free. Including non-PyTorch memory, this process has 8.62 GiB memory in use. 8.00 GiB "
            "allowed; Of the allocated memory 7.91 GiB is allocated by PyTorch, and 28.47 MiB is reserved by "
            "PyTorch but unallocated.")

result = {"machine": {"cpu_dry_run": cpu}, "checks": {}}
checks = result["checks"]
kid = client = None
try:
    for _ in range(120):
        try:
            status = call("GET", "/api/gpu-panel/status")
            if status["state"] == "ok":
                break
        except OSError:
            pass
        time.sleep(0.5)
    result["status"] = {k: status.get(k) for k in ("source", "state", "driver_version", "cuda_driver_version")}
    say("server up:", result["status"])
    session = call("POST", "/api/sessions",
                   {"path": "val.ipynb", "name": "val.ipynb", "type": "notebook", "kernel": {"name": "python3"}})
    kid = session["kernel"]["id"]
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(runtime / f"kernel-{kid}.json"))
    client.load_connection_file()
    client.start_channels()
    client.wait_for_ready(timeout=60)

    def run(code, timeout=300):
        lines = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                lines.append(msg["content"].get("text", ""))
            elif msg["msg_type"] == "error":
                lines.append(f"\n{msg['content']['ename']}: {msg['content']['evalue'][:300]}\n")

        reply = client.execute_interactive(code, timeout=timeout, output_hook=hook)
        return "".join(lines), reply["content"]

    if cpu:
        run(CPU_STAND_IN)
    loaded = call("POST", f"/api/gpu-panel/kernels/{kid}/probe", {})
    result["probe_loaded"] = loaded
    say("probe:", loaded.get("message"))
    checks["probe_loaded"] = loaded.get("ok") is True
    text, _ = run(SETUP.format(cpu=cpu))
    say(text.strip())
    # item 5: an idle kernel with the probe and no step yet has a cached reading
    row = None
    for _ in range(30):
        doc = call("GET", "/api/gpu-panel/kernels?refresh=1")
        row = next((k for k in doc["kernels"] if k["kernel_id"] == kid), None)
        if row and row["probe"] and isinstance(row["idle"]["cached"], int):
            break
        time.sleep(0.5)
    result["idle_before_loop"] = row["idle"] if row else None
    checks["cached_is_a_number_before_any_step"] = bool(row) and isinstance(row["idle"]["cached"], int)
    say("idle before the loop:", result["idle_before_loop"])
    t_loop = time.time()
    text, reply = run(LOOP.format(cpu=cpu, text=CPU_TEXT), timeout=300)
    result["cell"] = {"status": reply.get("status"), "ename": reply.get("ename"),
                      "execution_count": reply.get("execution_count"), "seconds": round(time.time() - t_loop, 1),
                      "output_tail": text[-600:]}
    say("loop cell:", result["cell"]["status"], result["cell"]["ename"], f"{result['cell']['seconds']} s")
    checks["cell_ran_out_of_memory"] = reply.get("ename") == "OutOfMemoryError"
    leak = None
    for _ in range(60):
        doc = call("GET", "/api/gpu-panel/kernels?refresh=1")
        row = next((k for k in doc["kernels"] if k["kernel_id"] == kid), None)
        leak = (row or {}).get("leak")
        if leak and leak.get("state") == "oom":
            break
        time.sleep(0.5)
    result["verdict"] = leak
    result["idle_after_oom"] = row["idle"] if row else None
    oom = (leak or {}).get("oom") or {}
    say("verdict:", (leak or {}).get("message"))
    checks["verdict_state_oom"] = bool(leak) and leak.get("state") == "oom"
    checks["names_the_cell"] = oom.get("execution_count") == reply.get("execution_count") is not None
    checks["requested_bytes"] = (oom.get("requested") or 0) > 0
    checks["allocated_reserved_limit"] = all(isinstance(oom.get(k), int) for k in ("allocated", "reserved", "limit"))
    top = [h for h in oom.get("holders") or [] if not h.get("model")]
    checks["holder_is_the_val_loss_line"] = bool(top) and (top[0].get("code") or "").startswith("val_loss +=") \
        and top[0].get("where") == "cell line 10"
    checks["message_explains"] = (leak or {}).get("message", "").startswith("Ran out of memory at step") \
        and "full in" not in (leak or {}).get("message", "")
    checks["no_forecast"] = bool(leak) and leak.get("forecast") is None
    if not cpu:
        checks["observer_saw_it"] = oom.get("source") == "observer"
    checks["cached_is_a_number_after_oom"] = bool(row) and isinstance(row["idle"]["cached"], int)
    for f in sorted((runtime / "gpu-panel").glob("probe-*.iters.jsonl")):
        ooms = [x for x in f.read_text().splitlines() if '"oom":true' in x]
        if ooms:
            (out / "oom-record.json").write_text(json.dumps(json.loads(ooms[-1]), indent=2) + "\n")
except Exception as err:  # noqa: BLE001 - written into the JSON, which then says ok: false
    result["error"] = f"{type(err).__name__}: {err}"
    checks["completed"] = False
finally:
    if client is not None:
        client.stop_channels()
    if kid is not None:
        try:
            call("DELETE", f"/api/kernels/{kid}", timeout=30)
        except Exception as err:  # noqa: BLE001 - the server is stopped next anyway
            result["shutdown_error"] = repr(err)
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    shutil.rmtree(work, ignore_errors=True)
result["ok"] = bool(checks) and all(checks.values())
result["t"] = time.time()
text = json.dumps(result, indent=2)
(out / "oom-proof.json").write_text(text + "\n")
print(text)
sys.exit(0 if result["ok"] else 1)
PY
rc=$?
[ $rc -eq 124 ] && echo '{"ok": false, "error": "oom_proof.sh: timed out after 560 s"}' | tee "$OUT/oom-proof.json"
exit $rc
