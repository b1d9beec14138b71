"""The cluster document from Prometheus samples: pure, so it is tested without a Prometheus.

GPUs are identified by ``(Hostname, gpu)``: the node and NVML's device index, labels that DCGM
exporter and this project's exporter share (the UUID when a series has no index; a recording has
no UUID). DCGM's readings win where both exist; this project's series add who holds each GPU:
user, notebook, kernel, leak alarm. Other users are counted, not named, unless the deployment
allows it (``cluster_show_users``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from .promql import DCGM_FIELDS, KERNEL_IDLE, KERNEL_LEAK, KERNEL_MEMORY, OWN_GPU_FIELDS

GPUKey = tuple[str, str]

#: the labels the view reads: the others are dropped as Prometheus' answer is read
LABELS = ("Hostname", "instance", "gpu", "UUID", "modelName", "kernel_id", "notebook", "user")
#: One series' sample: ``(name, value, time, *values of LABELS)``, "" for a label it lacks. Flat
#: strings and floats, so the garbage collector stops tracking it at its first pass: 100,000
#: tracked samples (a dataclass, a NamedTuple, or a tuple holding a dict) made the full
#: collection they trigger, run by the reading thread, hold the GIL and stall the event loop for
#: 0.3 s in a server of 470,000 objects.
Reading = tuple[Any, ...]


def reading(name: str, labels: Mapping[str, str], value: float, t: float = 0.0) -> Reading:
    return (name, value, t, *(str(labels.get(k) or "") for k in LABELS))


def _labels(r: Reading) -> dict[str, str]:
    return {k: v for k, v in zip(LABELS, r[3:]) if v}


def gpu_key(labels: dict[str, str]) -> Optional[GPUKey]:
    host = labels.get("Hostname") or labels.get("instance")
    ident = f"gpu{labels['gpu']}" if labels.get("gpu") else labels.get("UUID")
    return (host, ident) if host and ident else None


def _empty_gpu(key: GPUKey, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "node": key[0],
        "gpu": labels.get("gpu"),
        "uuid": labels.get("UUID") or None,
        "model": labels.get("modelName") or None,
        "util": None,
        "mem_used": None,
        "mem_total": None,
        "power_w": None,
        "temp_c": None,
        "sm_clock_hz": None,
        "age_s": None,
        "stale": False,
        # tuples, () when empty: a cluster of thousands of GPUs leaves fewer objects for the garbage
        # collector to track (orjson writes a tuple as a list)
        "sources": (),
        "holders": (),
        "others": {"count": 0, "users": 0, "memory": 0},
        "idle_holders": 0,
        "leak_alarms": 0,
    }


def cluster_view(
    values: Sequence[Reading],
    scraped: Sequence[Reading],
    *,
    now: float,
    me: Optional[str],
    show_users: bool,
    stale_after: float,
) -> dict[str, Any]:
    """``values``: the samples of ``promql.VALUES``; ``scraped``: of ``promql.SCRAPED``."""
    gpus: dict[GPUKey, dict[str, Any]] = {}
    dcgm: dict[GPUKey, dict[str, float]] = {}
    kernels: dict[tuple[str, str], dict[str, Any]] = {}

    def gpu_for(labels: dict[str, str]) -> Optional[dict[str, Any]]:
        key = gpu_key(labels)
        if key is None:
            return None
        if key not in gpus:
            gpus[key] = _empty_gpu(key, labels)
        g = gpus[key]
        g["gpu"] = g["gpu"] or labels.get("gpu")
        g["uuid"] = g["uuid"] or labels.get("UUID") or None
        g["model"] = g["model"] or labels.get("modelName") or None
        return g

    for r in values:
        name, value, labels = r[0], r[1], _labels(r)
        if name in DCGM_FIELDS:
            g, key = gpu_for(labels), gpu_key(labels)
            if g is not None and key is not None:
                field, scale = DCGM_FIELDS[name]
                dcgm.setdefault(key, {})[field] = value * scale
                if "dcgm" not in g["sources"]:
                    g["sources"] += ("dcgm",)
        elif name in OWN_GPU_FIELDS:
            g = gpu_for(labels)
            if g is not None:
                g[OWN_GPU_FIELDS[name]] = value
                if "jupyter" not in g["sources"]:
                    g["sources"] += ("jupyter",)
        elif name == KERNEL_MEMORY:
            g = gpu_for(labels)
            if g is not None:
                kid = labels.get("kernel_id", "")
                holder = {
                    "kernel_id": kid,
                    "notebook": labels.get("notebook") or None,
                    "user": labels.get("user") or None,
                    "memory": value,
                }
                if g["holders"]:
                    g["holders"].append(holder)
                else:  # the first: a list from here on
                    g["holders"] = [holder]
                kernels.setdefault((g["node"], kid), {})["holder_of"] = holder
        elif name in KERNEL_LEAK or name == KERNEL_IDLE:
            host = labels.get("Hostname") or labels.get("instance") or ""
            field = "idle_seconds" if name == KERNEL_IDLE else KERNEL_LEAK[name]
            kernels.setdefault((host, labels.get("kernel_id", "")), {})[field] = value
    # DCGM's readings win where both exist (it is the fleet's reference)
    for key, fields in dcgm.items():
        g = gpus[key]
        for field, value in fields.items():
            if field != "mem_free":
                g[field] = value
        if "mem_used" in fields and "mem_free" in fields:
            g["mem_total"] = fields["mem_used"] + fields["mem_free"]
    for r in scraped:
        scraped_key = gpu_key(_labels(r))
        if scraped_key is not None and scraped_key in gpus:
            age = max(0.0, now - r[1])
            g = gpus[scraped_key]
            g["age_s"] = age if g["age_s"] is None else min(g["age_s"], age)
    for g in gpus.values():
        g["stale"] = g["age_s"] is not None and g["age_s"] > stale_after
        named, others, other_users = [], g["others"], set()
        for h in sorted(g["holders"], key=lambda h: -h["memory"]):
            info = kernels.get((g["node"], h["kernel_id"]), {})
            h["leak_actionable"] = bool(info.get("actionable"))
            h["seconds_to_oom"] = info.get("seconds_to_oom") if h["leak_actionable"] else None
            h["idle_seconds"] = info.get("idle_seconds")
            h["mine"] = me is not None and h["user"] == me
            g["leak_alarms"] += h["leak_actionable"]
            g["idle_holders"] += h["idle_seconds"] is not None
            if h["mine"] or show_users:
                named.append(h)
            else:
                others["count"] += 1
                others["memory"] += h["memory"]
                # a holder whose user is not labelled is counted as a user of its own
                other_users.add(h["user"] or ("kernel", h["kernel_id"]))
        others["users"] = len(other_users)
        g["holders"] = named or ()
    nodes: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(gpus, key=lambda k: (k[0], _index(gpus[k]["gpu"]), k[1])):
        nodes.setdefault(key[0], []).append(gpus[key])
    all_gpus = list(gpus.values())
    return {
        "nodes": [{"node": name, "gpus": node_gpus} for name, node_gpus in nodes.items()],
        "summary": {
            "nodes": len(nodes),
            "gpus": len(all_gpus),
            "held": sum(1 for g in all_gpus if g["holders"] or g["others"]["count"]),
            "mine": sum(1 for g in all_gpus if any(h["mine"] for h in g["holders"])),
            "leak_alarms": sum(g["leak_alarms"] for g in all_gpus),
            "idle_holders": sum(g["idle_holders"] for g in all_gpus),
            "stale": sum(1 for g in all_gpus if g["stale"]),
        },
    }


def _index(gpu: Optional[str]) -> int:
    try:
        return int(gpu) if gpu is not None else 1 << 30
    except ValueError:
        return 1 << 30
