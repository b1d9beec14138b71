"""``GET cluster`` behind a cache: one Prometheus round trip per refresh, however many tabs ask."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Optional

import orjson

from ..metrics.prometheus_http import PrometheusClient, PrometheusError
from . import promql
from .capped import Answer, Capped, fetch_capped, read_vector, release
from .view import cluster_view

#: defaults of c.GPUPanel.cluster_max_series / cluster_max_bytes: 6,000 8-GPU nodes of DCGM
#: series; 100 nodes x 8 GPUs answer ~5,500 series, ~1.5 MB
MAX_SERIES = 50_000
MAX_BYTES = 32 * 2**20


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
        max_series: int = MAX_SERIES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.client = PrometheusClient(url, timeout=timeout) if url else None
        self.me = me
        self.show_users = show_users
        self.refresh = refresh
        self.stale_after = stale_after
        self.max_series = max(1, int(max_series))
        self.max_bytes = max(1, int(max_bytes))
        self._parts: Optional[list[bytes]] = None
        self._at = 0.0
        self._inflight: Optional[asyncio.Future[list[bytes]]] = None

    async def body(self) -> list[bytes]:
        """The cluster document as JSON pieces, built and encoded in a worker thread once per
        refresh. Only the bytes are kept: a cached document of thousands of GPUs would make every
        later full garbage collection of the server slower."""
        if self._parts is not None and time.monotonic() - self._at < self.refresh:
            return self._parts
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._fetch())
        return await asyncio.shield(self._inflight)

    async def doc(self) -> dict[str, Any]:
        """The document itself (for a caller in Python): the body, decoded."""
        return orjson.loads(b"".join(await self.body()))

    async def _fetch(self) -> list[bytes]:
        now = time.time()
        base: dict[str, Any] = {
            "t": now,
            "nodes": [],
            "summary": None,
            "show_users": self.show_users,
            "truncated": None,
        }
        if self.client is None:
            parts = doc_parts(
                {
                    **base,
                    "state": "not-configured",
                    "message": "No Prometheus configured: set c.GPUPanel.prometheus_url to see the cluster.",
                }
            )
        else:
            try:
                answers = await asyncio.gather(
                    fetch_capped(self.client, promql.VALUES, self.max_bytes),
                    fetch_capped(self.client, promql.SCRAPED, self.max_bytes),
                )
                # reading, the join, the encoding and the freeing grow with the cluster: one worker
                # thread does them all (two would take the GIL from the event loop in turns)
                parts = await asyncio.get_running_loop().run_in_executor(None, self._build, base, *answers, now)
            except PrometheusError as err:
                parts = doc_parts({**base, "state": "unreachable", "message": str(err)})
        self._parts, self._at = parts, time.monotonic()
        return parts

    def _build(self, base: dict[str, Any], values_answer: Answer, scraped_answer: Answer, now: float) -> list[bytes]:
        values = read_vector(values_answer, self.max_series)
        scraped = read_vector(scraped_answer, self.max_series)
        values_answer.chunks.clear()  # the text is read: its megabytes go now
        scraped_answer.chunks.clear()
        view = cluster_view(
            values.samples,
            scraped.samples,
            now=now,
            me=self.me,
            show_users=self.show_users,
            stale_after=self.stale_after,
        )
        cut = values if values.truncated else scraped if scraped.truncated else None
        truncated = None
        state = _state(view, self.stale_after)
        if cut is not None:
            truncated = {
                "reason": cut.truncated,
                "limit": self.max_series if cut.truncated == "series" else self.max_bytes,
                "series_read": cut.series,
            }
            said = _truncated_message(cut, self.max_series, self.max_bytes)
            if state["state"] == "stale":  # says more about what is shown: the truncation is added
                state = {**state, "message": f"{state['message']} {said}"}
            else:
                state = {"state": "truncated", "message": said}
        doc = {**base, **view, **state, "truncated": truncated}
        parts = doc_parts(doc)
        for node in doc["nodes"]:
            release(node["gpus"])
        release(values.samples)
        release(scraped.samples)
        return parts


def _truncated_message(cut: Capped, max_series: int, max_bytes: int) -> str:
    if cut.truncated == "series":
        first = f"Prometheus answered more than {max_series} series: only the first {cut.series} are read"
        setting = "c.GPUPanel.cluster_max_series"
    else:
        first = (
            f"Prometheus' answer is longer than {max_bytes} bytes: only the {cut.series} series in its "
            f"first {max_bytes} bytes are read"
        )
        setting = "c.GPUPanel.cluster_max_bytes"
    return f"{first}, so some nodes and GPUs may be missing and the counts are lower bounds (raise {setting})."


def doc_parts(doc: dict[str, Any]) -> list[bytes]:
    """``doc`` as JSON pieces, one GPU each: a cluster of thousands of GPUs encoded in one call
    would hold the GIL (and the event loop) for its whole length."""
    head = orjson.dumps({k: v for k, v in doc.items() if k != "nodes"})
    parts = [head[:-1] + b',"nodes":[']
    for n, node in enumerate(doc["nodes"]):
        parts.append((b"," if n else b"") + b'{"node":' + orjson.dumps(node["node"]) + b',"gpus":[')
        parts.extend((b"," if g else b"") + orjson.dumps(gpu) for g, gpu in enumerate(node["gpus"]))
        parts.append(b"]}")
    parts.append(b"]}")
    return parts


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
