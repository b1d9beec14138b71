"""Generate ``dcgm-100x8.prom.gz``: one scrape of a 100-node x 8-GPU cluster, made once from the
recorded H100 traces in tests/data/traces (the values are real readings, spread over the nodes).

    python tests/data/cluster/make_exposition.py

DCGM exporter's series for every GPU, plus this project's per-kernel series for the GPUs that
notebooks hold (50 users; some kernels idle, some leaking), as the servers on those nodes export
them. Served by the tests' exporter (tests/servers.py Exposition) to a real Prometheus.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from dcgm import RecordedGPU, sample_lines  # noqa: E402 - after the path setup above

TRACES = ROOT / "tests" / "data" / "traces"
NODES, GPUS, USERS = 100, 8, 50
OUT = HERE / "dcgm-100x8.prom.gz"


def main() -> None:
    rng = random.Random(7)
    samples = [json.loads(line) for path in sorted(TRACES.glob("*/*.nvml.jsonl")) for line in path.open()]
    dcgm: dict[str, list[str]] = {}
    ours: dict[str, list[str]] = {}
    for n in range(NODES):
        node = f"gpu-node-{n:03d}"
        for g in range(GPUS):
            gpu = RecordedGPU(node, g, f"GPU-{n:03d}{g:02d}00-0000-0000-0000-000000000000", [])
            for line in sample_lines(gpu, rng.choice(samples)):
                dcgm.setdefault(line.split("{", 1)[0], []).append(line)
            if rng.random() < 0.6:  # a notebook holds this GPU
                user = f"user{rng.randrange(USERS):03d}"
                kid = f"{n:04x}{g:04x}-0000-4000-8000-{rng.randrange(16**12):012x}"
                who = f'kernel_id="{kid}",notebook="{user}/train-{g}.ipynb",user="{user}"'
                where = f'gpu="{g}",UUID="{gpu.uuid}",Hostname="{node}"'
                memory = rng.randrange(1, 70) * 2**30
                ours.setdefault("jupyter_gpu_panel_kernel_memory_bytes", []).append(
                    f"jupyter_gpu_panel_kernel_memory_bytes{{{who},{where}}} {memory}"
                )
                leaking = rng.random() < 0.05
                for name, value in (
                    ("jupyter_gpu_panel_kernel_leak_actionable", 1 if leaking else 0),
                    ("jupyter_gpu_panel_kernel_leak_bytes_per_second", rng.randrange(1, 64) * 2**20 if leaking else 0),
                ):
                    ours.setdefault(name, []).append(f'{name}{{{who},Hostname="{node}"}} {value}')
                if leaking:
                    ours.setdefault("jupyter_gpu_panel_kernel_seconds_to_oom", []).append(
                        f'jupyter_gpu_panel_kernel_seconds_to_oom{{{who},Hostname="{node}"}} {rng.randrange(60, 3600)}'
                    )
                if rng.random() < 0.15:
                    ours.setdefault("jupyter_gpu_panel_kernel_idle_seconds", []).append(
                        f'jupyter_gpu_panel_kernel_idle_seconds{{{who},Hostname="{node}"}} {rng.randrange(900, 7200)}'
                    )
    text = []
    for family in (dcgm, ours):
        for name, lines in family.items():
            text.append(f"# HELP {name} {name}.\n# TYPE {name} gauge")
            text.extend(lines)
    OUT.write_bytes(gzip.compress(("\n".join(text) + "\n").encode(), mtime=0))
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes gzipped)")


if __name__ == "__main__":
    main()
