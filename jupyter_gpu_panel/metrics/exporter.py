"""Prometheus export: what only this server knows, on Jupyter Server's own ``/metrics``.

Per GPU (base units, DCGM exporter's label names so the two join in PromQL: ``gpu``, ``UUID``,
``modelName``, ``Hostname``) and per kernel / probed script (``kernel_id``, ``notebook``,
``user``, ``gpu``): its GPU memory, its leak verdict and OOM forecast. A scrape reads what the
sampler and the kernel tracker already hold: no NVML call, no file read. Label sets are bounded:
no pid on long-lived series, and a kernel's series vanish with the kernel (each scrape is built
from the current view, nothing is remembered). An unauthenticated ``/metrics`` leaves the
notebook and user labels out unless ``metrics_show_notebooks`` (``names_shown``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional, Protocol

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .privacy import Audience
from .sampler import Sampler


class _KernelsView(Protocol):
    @property
    def doc(self) -> dict[str, Any]: ...


class ExportedPanel(Protocol):
    """What a scrape reads of the running extension (``app.ExportedPanel``): a protocol, since the app
    sits above this layer (it imports it) and the kernels layer too (a scrape reads its document)."""

    @property
    def node_name(self) -> str: ...
    @property
    def metrics_show_notebooks(self) -> bool: ...
    @property
    def serverapp(self) -> Any: ...
    @property
    def sampler(self) -> Sampler: ...
    @property
    def tracker(self) -> _KernelsView: ...
    def audience(self) -> Audience: ...


PREFIX = "jupyter_gpu_panel_"
GPU_LABELS = ("gpu", "UUID", "modelName", "Hostname")
KERNEL_LABELS = ("kernel_id", "notebook", "user", "gpu", "UUID", "Hostname")
SCRIPT_LABELS = ("script", "rank", "user", "Hostname")
#: the labels that say who works on what: left out of an unauthenticated /metrics
WHO_LABELS = frozenset({"notebook", "user"})

#: reading field -> (metric suffix, help, scale to base units)
GPU_GAUGES: tuple[tuple[str, str, str, float], ...] = (
    ("util_gpu", "utilization_ratio", "Share of time a kernel ran on the GPU (NVML utilization.gpu).", 0.01),
    ("util_mem", "memory_utilization_ratio", "Share of time device memory was read or written.", 0.01),
    ("mem_used", "memory_used_bytes", "Device memory in use.", 1.0),
    ("mem_total", "memory_total_bytes", "Device memory in total.", 1.0),
    ("power_mw", "power_watts", "Power draw.", 0.001),
    ("power_limit_mw", "power_limit_watts", "Enforced power limit.", 0.001),
    ("temp_c", "temperature_celsius", "GPU temperature.", 1.0),
    ("clock_sm", "sm_clock_hertz", "SM clock.", 1e6),
    ("clock_mem", "memory_clock_hertz", "Memory clock.", 1e6),
)


class PanelCollector(Collector):
    """One per process (the registry is global); follows the running panel."""

    def __init__(self) -> None:
        self.panel: Optional[ExportedPanel] = None

    def attach(self, panel: Optional[ExportedPanel]) -> None:
        self.panel = panel

    def collect(self) -> Iterator[GaugeMetricFamily]:
        panel = self.panel
        if panel is None:
            return
        yield from gpu_families(panel)
        yield from kernel_families(panel)


def _fam(suffix: str, doc: str, labels: tuple[str, ...]) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + suffix, doc, labels=list(labels))


def gpu_families(panel: ExportedPanel) -> Iterator[GaugeMetricFamily]:
    sampler = panel.sampler
    host = panel.node_name
    devices = {d.index: d for d in sampler.devices}
    snap = sampler.snapshot()
    families = {field: _fam(suffix, doc, GPU_LABELS) for field, suffix, doc, _ in GPU_GAUGES}
    throttled = _fam("throttled", "1 while the clocks are held down, by reason.", (*GPU_LABELS, "reason"))
    up = _fam("gpu_up", "1 when the GPU answered on the last tick, 0 when lost or unresponsive.", GPU_LABELS)
    info = _fam("source_info", "Where readings come from (nvml, or replay of a recording).", ("source", "Hostname"))
    info.add_metric([sampler.status.source, host], 1.0 if sampler.status.ok else 0.0)
    for reading in snap.gpus if snap else []:
        dev = devices.get(reading.index)
        labels = [str(reading.index), (dev.uuid if dev else None) or "", (dev.name if dev else None) or "", host]
        up.add_metric(labels, 1.0 if reading.state == "ok" else 0.0)
        if reading.state != "ok":
            continue
        for field, _, _, scale in GPU_GAUGES:
            value = getattr(reading, field)
            if value is not None:
                families[field].add_metric(labels, float(value) * scale)
        for reason in reading.throttle_reasons or ():
            throttled.add_metric([*labels, reason], 1.0)
    yield info
    yield up
    yield from families.values()
    yield throttled


def names_shown(panel: ExportedPanel) -> bool:
    """Whether notebook paths and user names go into the labels: always behind Jupyter's
    authentication; on an open ``/metrics`` (``authenticate_prometheus = False``, which anyone
    who reaches the port can read) only when ``metrics_show_notebooks`` says so."""
    if panel.metrics_show_notebooks:
        return True
    serverapp = panel.serverapp
    settings = getattr(getattr(serverapp, "web_app", None), "settings", None) or {}
    # the setting jupyter_server's /metrics handler itself reads
    return bool(settings.get("authenticate_prometheus", getattr(serverapp, "authenticate_prometheus", True)))


def kernel_families(panel: ExportedPanel) -> Iterator[GaugeMetricFamily]:
    doc: dict[str, Any] = panel.tracker.doc
    host = panel.node_name
    uuids = {str(d.index): d.uuid or "" for d in panel.sampler.devices}
    shown = names_shown(panel)

    def labels(names: tuple[str, ...]) -> tuple[str, ...]:
        return names if shown else tuple(n for n in names if n not in WHO_LABELS)

    def who(values: dict[str, str]) -> list[str]:
        return [v for n, v in values.items() if shown or n not in WHO_LABELS]

    kernel_labels = labels(KERNEL_LABELS)
    memory = _fam("kernel_memory_bytes", "GPU memory held by a kernel's processes, per GPU.", kernel_labels)
    leak_labels = labels(KERNEL_LABELS[:3] + ("Hostname",))
    rate = _fam("kernel_leak_bytes_per_second", "Memory a kernel keeps per second (0: no leak).", leak_labels)
    oom = _fam("kernel_seconds_to_oom", "Forecast seconds until the kernel's GPU memory is full.", leak_labels)
    actionable = _fam("kernel_leak_actionable", "1 when the kernel's leak fills the GPU within 24 h.", leak_labels)
    idle = _fam("kernel_idle_seconds", "Seconds an idle kernel has sat on GPU memory (idle holders only).", leak_labels)
    for k in doc.get("kernels", []):
        kernel = who({"kernel_id": k["kernel_id"], "notebook": k.get("notebook") or "", "user": k.get("user") or ""})
        for gpu, used in (k.get("memory") or {}).items():
            memory.add_metric([*kernel, gpu, uuids.get(gpu, ""), host], float(used))
        _add_leak(k.get("leak"), [*kernel, host], rate, oom, actionable)
        if (k.get("idle") or {}).get("holder"):
            idle.add_metric([*kernel, host], float(k["idle"]["seconds"]))
    script_labels = labels(SCRIPT_LABELS)
    s_rate = _fam("script_leak_bytes_per_second", "Memory a probed script keeps per second.", script_labels)
    s_oom = _fam("script_seconds_to_oom", "Forecast seconds until a probed script's memory is full.", script_labels)
    s_act = _fam("script_leak_actionable", "1 when a probed script's leak fills the GPU within 24 h.", script_labels)
    user = panel.audience().user or ""
    for s in doc.get("scripts", []):
        argv = s.get("argv") or []
        name = (argv[0].rsplit("/", 1)[-1] if argv else "") or "script"
        script = who({"script": name, "rank": s.get("rank") or "", "user": user})
        _add_leak(s.get("leak"), [*script, host], s_rate, s_oom, s_act)
    yield from (memory, rate, oom, actionable, idle, s_rate, s_oom, s_act)


def _add_leak(
    leak: Optional[dict[str, Any]],
    labels: list[str],
    rate: GaugeMetricFamily,
    oom: GaugeMetricFamily,
    act: GaugeMetricFamily,
) -> None:
    if not leak:
        return
    bps = leak.get("bytes_per_second")
    rate.add_metric(labels, float(bps) if leak.get("leak") and bps is not None else 0.0)
    act.add_metric(labels, 1.0 if leak.get("actionable") else 0.0)
    if leak.get("actionable") and leak.get("seconds_to_oom") is not None:
        oom.add_metric(labels, float(leak["seconds_to_oom"]))


COLLECTOR = PanelCollector()
_registered = False


def register(panel: Optional[ExportedPanel], registry: Any = REGISTRY) -> None:
    """Serve ``panel``'s series on ``/metrics`` (registered once per process, then re-pointed;
    ``None`` when the extension stops)."""
    global _registered
    COLLECTOR.attach(panel)
    if not _registered:
        registry.register(COLLECTOR)
        _registered = True
