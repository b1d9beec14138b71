#!/bin/bash
# On the device machine (issues 10 and 11): carry .whl (jupyter_server, ipykernel, orjson, ... for
# the device's Python 3.12) and .device (Debian's prometheus binary, gzipped). Results in $OUT.
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl >/tmp/pip.log 2>&1 || { tail -5 /tmp/pip.log; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" /tmp/ci
gunzip -c .device/prometheus.gz > /tmp/prometheus && chmod +x /tmp/prometheus && /tmp/prometheus --version | head -1
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 tests/gpu/cluster_idle_e2e.py "$OUT" /tmp/prometheus
