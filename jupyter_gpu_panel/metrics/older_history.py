"""History older than the server's own ring buffer, from Prometheus (``query_range``), in the
same columnar shape as ``History.query``, so the panel's charts reach back as far as Prometheus
keeps this server's series. Processes are not there (their series are per kernel, not per pid).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from .prometheus_http import PrometheusClient

#: history field -> (exported series, scale from the series' base unit back to the field's unit)
EXPORTED: dict[str, tuple[str, float]] = {
    "util_gpu": ("jupyter_gpu_panel_utilization_ratio", 100.0),
    "util_mem": ("jupyter_gpu_panel_memory_utilization_ratio", 100.0),
    "mem_used": ("jupyter_gpu_panel_memory_used_bytes", 1.0),
    "mem_total": ("jupyter_gpu_panel_memory_total_bytes", 1.0),
    "temp_c": ("jupyter_gpu_panel_temperature_celsius", 1.0),
    "power_mw": ("jupyter_gpu_panel_power_watts", 1000.0),
    "clock_sm": ("jupyter_gpu_panel_sm_clock_hertz", 1e-6),
    "clock_mem": ("jupyter_gpu_panel_memory_clock_hertz", 1e-6),
}
#: Prometheus refuses ranges of more than 11,000 points.
MAX_RANGE_POINTS = 10_000


async def older_history(
    client: PrometheusClient,
    node: str,
    since: float,
    until: float,
    fields: Sequence[str],
    gpus: Optional[Sequence[int]],
    max_points: int,
    min_step: float,
) -> dict[int, dict[str, Any]]:
    """Per GPU index: ``{"t": array, "values": {field: array}}`` for ``since < t < until``."""
    wanted = [f for f in fields if f in EXPORTED]
    if until <= since or not wanted:
        return {}
    points = min(max_points or MAX_RANGE_POINTS, MAX_RANGE_POINTS)
    step = max(min_step, (until - since) / points)
    names = "|".join(EXPORTED[f][0] for f in wanted)
    promql = f'{{__name__=~"{names}",Hostname="{_escape(node)}"}}'
    series = await client.query_range(promql, since + step, until - step / 2, step)
    by_name = {name: field for field, (name, _) in EXPORTED.items()}
    out: dict[int, dict[str, Any]] = {}
    for s in series:
        try:
            index = int(s.labels.get("gpu", ""))
        except ValueError:
            continue
        if (gpus is not None and index not in gpus) or s.name not in by_name or not s.t:
            continue
        gpu = out.setdefault(index, {"times": {}, "cols": {}})
        field = by_name[s.name]
        gpu["cols"][field] = dict(zip(s.t, s.values))
        gpu["times"].update(dict.fromkeys(s.t))
    shaped = {}
    for index, gpu in out.items():
        t = np.array(sorted(gpu["times"]), dtype=float)
        values = {}
        for field in fields:
            col = gpu["cols"].get(field, {})
            scale = EXPORTED[field][1] if field in EXPORTED else 1.0
            raw = [col.get(x) for x in t.tolist()]
            arr = np.array([np.nan if v is None else v * scale for v in raw], dtype=float)
            values[field] = np.round(arr, 3)
        shaped[index] = {"t": t, "values": values}
    return shaped


def merge_older(doc: dict[str, Any], older: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Prepend the older columns to each GPU's columns in a ``History.query`` document."""
    gpus = {g["index"]: g for g in doc["gpus"]}
    for index, old in older.items():
        gpu = gpus.get(index)
        if gpu is None:
            gpu = {"index": index, "t": np.zeros(0), "values": {f: np.zeros(0) for f in doc["fields"]}}
            doc["gpus"].append(gpu)
        gpu["t"] = np.concatenate((old["t"], np.asarray(gpu["t"], dtype=float)))
        for field in doc["fields"]:
            mine = np.asarray(gpu["values"][field], dtype=float)
            gpu["values"][field] = np.concatenate((old["values"].get(field, np.full(len(old["t"]), np.nan)), mine))
    doc["gpus"].sort(key=lambda g: g["index"])
    return doc


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
