"""The REST and websocket API: thin handlers, and ``openapi.json``, the single contract."""

from __future__ import annotations

from typing import Any

from .base import API


def routes() -> list[tuple[str, Any]]:
    """Patterns relative to the server's base_url (ExtensionApp joins them)."""
    from .benchmarks import BenchmarksHandler
    from .cluster import ClusterHandler
    from .history import HistoryHandler
    from .kernels import KernelActionHandler, KernelsHandler, ProbeTriageHandler
    from .openapi import OpenAPIHandler
    from .placement import PlacementHandler
    from .status import DevicesHandler, SnapshotHandler, StatusHandler
    from .websocket import StreamHandler

    return [
        (rf"/{API}/status", StatusHandler),
        (rf"/{API}/devices", DevicesHandler),
        (rf"/{API}/snapshot", SnapshotHandler),
        (rf"/{API}/history", HistoryHandler),
        (rf"/{API}/openapi.json", OpenAPIHandler),
        (rf"/{API}/stream", StreamHandler),
        (rf"/{API}/kernels", KernelsHandler),
        (rf"/{API}/kernels/(?P<kernel_id>[^/]+)/(?P<action>[^/]+)", KernelActionHandler),
        (rf"/{API}/probes/(?P<pid>[^/]+)/triage", ProbeTriageHandler),
        (rf"/{API}/placement", PlacementHandler),
        (rf"/{API}/benchmarks", BenchmarksHandler),
        (rf"/{API}/cluster", ClusterHandler),
    ]
