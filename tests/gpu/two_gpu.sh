#!/bin/bash
# 2-GPU proof: the benchmark notebook's multi-GPU section (torchrun, NCCL all-reduce busbw, DDP scaling),
# with the single-GPU parts cut down to keep the device time short. Carry .whl.
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=index,name,pcie.link.gen.max,pcie.link.width.max --format=csv | tee "$OUT/gpu.txt"
nvidia-smi topo -m | tee -a "$OUT/gpu.txt"
python3 tests/gpu/run_notebook.py gpu-benchmark "$OUT" quick=True "matmul_sizes=[4096]" "matmul_dtypes=['bf16']" \
  run_compile=False find_max_batch=False sustained_s=0 pitfall_size=2048 pitfall_lowp_size=2048 2>&1 | tail -5
python3 - "$OUT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + "/gpu-benchmark-quick.results.json"))
print("errors:", r["errors"])
m = r["multi_gpu"]
print({k: v for k, v in m.items() if k not in ("allreduce",)})
for a in m.get("allreduce", []):
    print(f"{a['bytes'] >> 20:6d} MiB  {a['time_us']:10.1f} us  algbw {a['algbw_GBps']:7.1f}  busbw {a['busbw_GBps']:7.1f} GB/s")
PY
