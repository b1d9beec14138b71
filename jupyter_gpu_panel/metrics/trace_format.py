"""The ``*.nvml.jsonl`` trace format: written by ``jupyter-gpu-panel record``, read by the replay
source and the leak detector. One JSON object per GPU per sample:

``t`` (Unix seconds), ``mem_used``, ``mem_total`` (bytes), ``util_gpu``, ``util_mem`` (%),
``power_mw``, ``temp_c``, ``clock_sm``, ``clock_mem`` (MHz), ``procs`` (``[{"pid", "used"}]``)
and, in multi-GPU recordings, ``gpu`` (the index). Static facts of the recorded GPUs sit in a
``<name>.device.json`` sidecar. The project's recorded H100 traces use the same format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from ..jsonl import read_jsonl
from .readings import GPUReading

#: The per-sample reading fields of the format, named as in ``GPUReading``.
READING_FIELDS = ("mem_used", "mem_total", "util_gpu", "util_mem", "power_mw", "temp_c", "clock_sm", "clock_mem")


def trace_record(reading: GPUReading, multi_gpu: bool) -> dict[str, Any]:
    """One line of the format for one GPU reading."""
    rec: dict[str, Any] = {"t": round(reading.t, 6)}
    for name in READING_FIELDS:
        rec[name] = getattr(reading, name)
    rec["procs"] = [{"pid": p.pid, "used": p.used} for p in reading.processes]
    if multi_gpu:
        rec["gpu"] = reading.index
    return rec


def load_trace(path: Union[str, Path]) -> dict[int, list[dict[str, Any]]]:
    """Samples per GPU index, in time order. A torn last line (a live recording) is skipped."""
    per_gpu: dict[int, list[dict[str, Any]]] = {}
    for rec in read_jsonl(path):
        t, gpu = rec.get("t"), rec.get("gpu", 0)
        if isinstance(t, (int, float)) and not isinstance(t, bool) and isinstance(gpu, int):
            per_gpu.setdefault(gpu, []).append(rec)
    for samples in per_gpu.values():
        samples.sort(key=lambda r: r["t"])
    return per_gpu


def sidecar_path(trace: Path) -> Path:
    """``name.nvml.jsonl`` -> ``name.device.json`` (the recorded GPUs' static facts)."""
    name = trace.name
    stem = name[: -len(".nvml.jsonl")] if name.endswith(".nvml.jsonl") else trace.stem
    return trace.with_name(stem + ".device.json")
