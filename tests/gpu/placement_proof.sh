#!/bin/bash
# GPU placement on a real GPU (issue 20), for the one-GPU H200: with placement=most-free-memory,
#   1. GET placement names GPU 0 for the next kernel;
#   2. a real kernel started through POST api/kernels has CUDA_VISIBLE_DEVICES=0 and
#      CUDA_DEVICE_ORDER=PCI_BUS_ID in its own os.environ, and its torch tensors land on that GPU
#      (torch's device UUID is NVML's GPU 0, nvidia-smi lists the kernel's pid there);
#   3. the panel's kernels document row says so (placement.gpus == [0], source placement, memory on "0").
# Run from the repository root on the GPU machine:  bash tests/gpu/placement_proof.sh
# Needs python3 with torch (CUDA), jupyter_server, ipykernel, nvidia-ml-py, psutil, numpy, scipy, orjson,
# nbformat; a folder of wheels for them can be carried as .whl (installed offline into /tmp/site).
# Prints one JSON document (also written to $OUT/placement-proof.json): save it as
# docs/measurements/h200-placement-proof.json. Exit status 0 only when every check held.
set -u
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
        >/tmp/pip.log 2>&1 || { tail -5 /tmp/pip.log; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
# what the machine gave this shell; the server must start without it, or placement (rightly) keeps it
export PROOF_OUTER_CVD="${CUDA_VISIBLE_DEVICES-<unset>}"
unset CUDA_VISIBLE_DEVICES
python3 - "$OUT" <<'PY'
import json, os, secrets, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

out = Path(sys.argv[1])
work = Path(tempfile.mkdtemp(prefix="placement-proof-"))
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
     "--GPUPanel.source=nvml", "--GPUPanel.placement=most-free-memory", "--GPUPanel.kernel_refresh=0.5"],
    env=env, stdout=open(out / "placement-server.log", "w"), stderr=subprocess.STDOUT,
)
base = f"http://127.0.0.1:{port}"


def call(method, path, body=None, timeout=60):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


result = {"machine": {"outer_cuda_visible_devices": os.environ.get("PROOF_OUTER_CVD")}, "checks": {}}
checks = result["checks"]
kid = None
try:
    status = {}
    for _ in range(120):
        try:
            status = call("GET", "/api/gpu-panel/status")
            if status["state"] == "ok" and status["sampler"]["ticks"] > 3:
                break
        except OSError:
            pass
        time.sleep(0.5)
    result["status"] = {k: status.get(k) for k in ("source", "state", "driver_version", "cuda_driver_version")}
    devices = call("GET", "/api/gpu-panel/devices")
    result["devices"] = devices
    placement = call("GET", "/api/gpu-panel/placement")
    result["placement_before"] = placement
    checks["placement_names_gpu_0"] = (placement.get("next") or {}).get("gpus") == [0]

    kid = call("POST", "/api/kernels", {"name": "python3"})["id"]
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(runtime / f"kernel-{kid}.json"))
    client.load_connection_file()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    code = (
        "import json, os, torch\n"
        "x = torch.randn(8192, 8192, device='cuda')  # 256 MiB\n"
        "torch.cuda.synchronize()\n"
        "p = torch.cuda.get_device_properties(0)\n"
        "print('PROOF ' + json.dumps({'cuda_visible_devices': os.environ.get('CUDA_VISIBLE_DEVICES'),\n"
        "  'cuda_device_order': os.environ.get('CUDA_DEVICE_ORDER'), 'device_count': torch.cuda.device_count(),\n"
        "  'tensor_device': str(x.device), 'name': p.name, 'uuid': str(getattr(p, 'uuid', '')),\n"
        "  'allocated': torch.cuda.memory_allocated(), 'pid': os.getpid(), 'torch': torch.__version__}))\n"
    )
    lines = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            lines.append(msg["content"].get("text", ""))
        elif msg["msg_type"] == "error":
            lines.append(f"\n{msg['content']['ename']}: {msg['content']['evalue']}\n")

    client.execute_interactive(code, timeout=120, output_hook=hook)
    found = [x for x in "".join(lines).splitlines() if x.startswith("PROOF ")]
    if not found:
        raise RuntimeError("the kernel's code failed: " + "".join(lines)[-2000:])
    kernel = json.loads(found[0][6:])
    result["kernel"] = kernel
    checks["kernel_env_is_gpu_0"] = kernel["cuda_visible_devices"] == "0" and kernel["cuda_device_order"] == "PCI_BUS_ID"
    checks["tensor_on_cuda_0"] = kernel["tensor_device"] == "cuda:0" and kernel["allocated"] >= 256 * 2**20
    gpu0 = next(d for d in devices["devices"] if d["index"] == 0)
    checks["torch_device_is_nvml_gpu_0"] = bool(kernel["uuid"]) and gpu0["uuid"].endswith(kernel["uuid"].replace("GPU-", ""))
    smi = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout
    result["nvidia_smi_compute_apps"] = smi.strip().splitlines()
    checks["nvidia_smi_lists_kernel_on_gpu_0"] = any(
        line.split(",")[0].strip() == str(kernel["pid"]) and line.split(",")[1].strip() == gpu0["uuid"]
        for line in smi.strip().splitlines() if line.count(",") >= 2)
    row = None
    for _ in range(40):  # the tracker attributes the pid within a few refreshes
        doc = call("GET", "/api/gpu-panel/kernels?refresh=1")
        row = next((k for k in doc["kernels"] if k["kernel_id"] == kid), None)
        if row and row["memory"].get("0"):
            break
        time.sleep(0.5)
    result["kernel_row"] = {k: row.get(k) for k in ("kernel_id", "pid", "pids", "memory", "placement")} if row else None
    checks["row_says_gpu_0"] = bool(row) and row["placement"]["gpus"] == [0] and row["placement"]["source"] == "placement"
    checks["row_memory_on_gpu_0"] = bool(row) and row["memory"].get("0", 0) >= 256 * 2**20
    result["placement_after"] = call("GET", "/api/gpu-panel/placement")
    client.stop_channels()
except Exception as err:  # noqa: BLE001 - written into the JSON, which then says ok: false
    result["error"] = f"{type(err).__name__}: {err}"
    checks["completed"] = False
finally:
    if kid is not None:
        try:
            call("DELETE", f"/api/kernels/{kid}")
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
(out / "placement-proof.json").write_text(text + "\n")
print(text)
sys.exit(0 if result["ok"] else 1)
PY
