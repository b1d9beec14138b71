#!/bin/bash
# On the device machine: the server end to end (issue 4) with its snapshot checked against
# nvidia-smi, and the benchmark notebook's quick mode timed (issue 5). Carry .whl2 (jupyter_server,
# ipykernel, nbclient, ... wheels for the device's Python); results land in $OUT.
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl2/*.whl >/tmp/pip.log 2>&1 || { tail -5 /tmp/pip.log; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" /tmp/e2e /tmp/nb
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)' | tee -a "$OUT/gpu.txt"
python3 tests/gpu/server_e2e.py /tmp/e2e 2>&1 | tail -8
cp /tmp/e2e/server_e2e.json "$OUT/server_e2e.json"; tail -20 /tmp/e2e/server.log > "$OUT/server_log_tail.txt"
python3 tests/gpu/run_notebook.py gpu-benchmark /tmp/nb quick=True 2>&1 | tail -3
cp /tmp/nb/gpu-benchmark-quick.results.json /tmp/nb/gpu-benchmark-quick.wall_s "$OUT/" 2>/dev/null
python3 - <<'PY'
import json
r = json.load(open("/tmp/e2e/server_e2e.json"))
print("e2e ok:", r.get("ok"), "first alarm:", json.dumps(r.get("first_alarm"))[:300])
print("vs nvidia-smi:", json.dumps(r.get("vs_nvidia_smi")))
PY
