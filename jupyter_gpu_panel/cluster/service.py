"""``GET cluster`` behind a cache: one Prometheus round trip per refresh, however many tabs ask."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Optional

from ..metrics.sources.prometheus import PrometheusClient, PrometheusError
from . import promql
from .view import cluster_view


class ClusterService:
    def __init__(
        self,
        url: str,
        *,
        me: Optional[str],
        show_users: bool,
        refresh: float = 5.0,
        stale_after: float = 120.0,
        timeout: float = 5.0,
    ) -> None:
        self.client = PrometheusClient(url, timeout=timeout) if url else None
        self.me = me
        self.show_users = show_users
        self.refresh = refresh
        self.stale_after = stale_after
        self._doc: Optional[dict[str, Any]] = None
        self._at = 0.0
        self._inflight: Optional[asyncio.Future[dict[str, Any]]] = None

    async def doc(self) -> dict[str, Any]:
        if self._doc is not None and time.monotonic() - self._at < self.refresh:
            return self._doc
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._fetch())
        return await asyncio.shield(self._inflight)

    async def _fetch(self) -> dict[str, Any]:
        now = time.time()
        base: dict[str, Any] = {"t": now, "nodes": [], "summary": None, "show_users": self.show_users}
        if self.client is None:
            doc = {
                **base,
                "state": "not-configured",
                "message": "No Prometheus configured: set c.GPUPanel.prometheus_url to see the cluster.",
            }
        else:
            try:
                values, scraped = await asyncio.gather(
                    self.client.query(promql.VALUES), self.client.query(promql.SCRAPED)
                )
            except PrometheusError as err:
                doc = {**base, "state": "unreachable", "message": str(err)}
            else:
                view = await asyncio.get_running_loop().run_in_executor(
                    None,
                    lambda: cluster_view(
                        values, scraped, now=now, me=self.me, show_users=self.show_users, stale_after=self.stale_after
                    ),
                )
                doc = {**base, **view, **_state(view, self.stale_after)}
        self._doc, self._at = doc, time.monotonic()
        return doc


def _state(view: dict[str, Any], stale_after: float) -> dict[str, Any]:
    summary = view["summary"]
    if not summary["gpus"]:
        return {
            "state": "no-gpu-series",
            "message": "Prometheus holds no GPU series (DCGM exporter's or this "
            "project's): check that it scrapes them.",
        }
    if summary["stale"] == summary["gpus"]:
        return {
            "state": "stale",
            "message": f"Every GPU's last scrape is older than {stale_after:.0f} s: is Prometheus still scraping?",
        }
    return {"state": "ok", "message": None}
