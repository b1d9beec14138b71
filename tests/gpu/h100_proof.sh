#!/bin/bash
# Runs on the device machine (see the lead's notes): the Done-when proof for issue 5.
# Carry .whl (nbformat/nbclient/ipykernel... for python 3.12). Writes everything under $OUT.
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.max,pcie.link.width.max,clocks.sm,temperature.gpu --format=csv | tee "$OUT/gpu.txt"
python3 -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.device_count())' | tee -a "$OUT/gpu.txt"
python3 tests/gpu/independent.py "$OUT/independent_pre.json"
python3 tests/gpu/run_notebook.py gpu-benchmark "$OUT" 2>&1 | tail -5
python3 tests/gpu/independent.py "$OUT/independent_post.json"
[ -n "${SKIP_QUICK:-}" ] || python3 tests/gpu/run_notebook.py gpu-benchmark "$OUT" quick=True 2>&1 | tail -5
python3 tests/gpu/compare.py "$OUT"
