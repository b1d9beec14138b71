"""DCGM exporter series made from the recorded H100 traces: the hardware side of the cluster tests.

NVIDIA's DCGM exporter names its gauges after DCGM fields (``DCGM_FI_DEV_FB_USED`` in MiB, ...)
and labels them ``gpu``, ``UUID``, ``device``, ``modelName``, ``Hostname``. Here the values are a
recorded trace's samples, played in real time, so Prometheus scrapes readings a real card gave.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass

from jupyter_gpu_panel.metrics.trace_format import load_trace

MODEL = "NVIDIA H100 80GB HBM3"
MiB = 2**20


@dataclass
class RecordedGPU:
    node: str
    index: int
    uuid: str
    samples: list[dict]

    def at(self, now: float) -> dict:
        t0 = self.samples[0]["t"]
        span = self.samples[-1]["t"] - t0 + 0.1
        offsets = [s["t"] - t0 for s in self.samples]
        return self.samples[max(0, bisect.bisect_right(offsets, (now % span)) - 1)]


def gpus_from_trace(node: str, trace, uuid_prefix: str = "GPU-rec", gpus: int = 1) -> list[RecordedGPU]:
    samples = load_trace(trace)[0]
    return [RecordedGPU(node, i, f"{uuid_prefix}-{node}-{i}", samples) for i in range(gpus)]


def sample_lines(gpu: RecordedGPU, s: dict) -> list[str]:
    labels = f'gpu="{gpu.index}",UUID="{gpu.uuid}",device="nvidia{gpu.index}",modelName="{MODEL}",Hostname="{gpu.node}"'
    used = s["mem_used"] / MiB
    values = {
        "DCGM_FI_DEV_GPU_UTIL": s["util_gpu"],
        "DCGM_FI_DEV_FB_USED": round(used),
        "DCGM_FI_DEV_FB_FREE": round(s["mem_total"] / MiB - used),
        "DCGM_FI_DEV_POWER_USAGE": s["power_mw"] / 1000,
        "DCGM_FI_DEV_GPU_TEMP": s["temp_c"],
        "DCGM_FI_DEV_SM_CLOCK": s["clock_sm"],
    }
    return [f"{name}{{{labels}}} {value}" for name, value in values.items()]


def exposition(gpus: list[RecordedGPU], now: float | None = None, extra: str = "") -> str:
    now = time.time() if now is None else now
    by_name: dict[str, list[str]] = {}
    for gpu in gpus:
        for line in sample_lines(gpu, gpu.at(now)):
            by_name.setdefault(line.split("{", 1)[0], []).append(line)
    out = []
    for name, lines in by_name.items():
        out.append(f"# HELP {name} DCGM field {name}.\n# TYPE {name} gauge")
        out.extend(lines)
    return "\n".join(out) + "\n" + extra
