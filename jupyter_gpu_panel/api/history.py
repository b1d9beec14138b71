"""``GET history``: the sampler's ring buffers over HTTP, and what Prometheus holds before them.

Thin: parse and check the arguments, ask the history, answer. What grows with the data (a
history query and its JSON) runs in a worker thread.
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..metrics.history import parse_history_fields
from ..metrics.older_history import merge_older, older_history
from ..metrics.prometheus_http import PrometheusClient, PrometheusError
from .base import BaseHandler, json_parts

MAX_HISTORY_POINTS = 100_000
#: GPU indices a query may name (NVML numbers devices from 0; no node holds more than this).
MAX_GPU_INDEX = 1023


class HistoryHandler(BaseHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        since = self._since()
        fields = self.list_arg("fields")
        if fields is not None:
            try:
                fields = parse_history_fields(fields)
            except ValueError as err:
                raise web.HTTPError(400, str(err)) from None
        max_points = self.int_arg(self.get_argument("max_points", "0"), "max_points", 0, MAX_HISTORY_POINTS)
        raw_gpu = self.get_argument("gpu", None)
        gpus = None
        if raw_gpu is not None:
            gpus = [self.int_arg(g, "gpu", 0, MAX_GPU_INDEX) for g in raw_gpu.split(",")[: MAX_GPU_INDEX + 1]]
            known = {d.index for d in self.panel.sampler.devices}
            missing = sorted(set(gpus) - known)
            if missing and self.panel.sampler.status.ok:
                raise web.HTTPError(400, f"no GPU {missing[0]}; this server has {sorted(known) or 'none'}")
        panel = self.panel
        sampler = panel.sampler
        audience = panel.audience()
        work = panel.history_work  # one worker thread; identical queries within a tick share it

        def query() -> dict:
            return sampler.history.query(
                since=since,
                fields=fields,
                max_points=max_points,
                gpus=gpus,
                pid_visible=lambda pid: audience.sees_process(sampler.user_of(pid)),
            )

        def encode(doc: dict, older_columns: Optional[dict] = None) -> list[bytes]:
            if older_columns:
                merge_older(doc, older_columns)
            return json_parts({"now": sampler.health.last_tick, "interval": sampler.interval, **doc})

        if since is None or not panel.prometheus_url:
            key = (since, tuple(fields or ()), max_points, tuple(gpus or ()), audience)
            body = await work.run(key, lambda: encode({**query(), "older": None}))
        else:  # the buffer's start decides what to ask Prometheus: no sharing of this document
            doc = await work.run(object(), query)
            doc["older"], older_columns = await older_part(panel, doc, since, gpus, max_points)
            body = await work.run(object(), lambda: encode(doc, older_columns))
        await self.write_large(body)

    def _since(self) -> Optional[float]:
        raw = self.get_argument("since", None)
        if raw is None or raw == "":
            return None
        try:
            value = float(raw[:64])
        except ValueError:
            raise web.HTTPError(400, f"since must be a number (Unix seconds), got {raw[:40]!r}") from None
        if not math.isfinite(value):
            raise web.HTTPError(400, "since must be finite")
        return value


async def older_part(
    panel: Any, doc: dict, since: Optional[float], gpus: Optional[list[int]], max_points: int
) -> tuple[Optional[dict], dict]:
    """What Prometheus holds of this server before its own buffer starts, when one is configured and
    asked for (``since`` older than the buffer): ``({"source": "prometheus", "until", "points",
    "error"}, columns to merge)``; ``(None, {})`` when not asked."""
    if since is None or not panel.prometheus_url:
        return None, {}
    starts = [float(g["t"][0]) for g in doc["gpus"] if len(g["t"])]
    until = min(starts) if starts else time.time()
    if since >= until - panel.sampler.interval:
        return None, {}
    client = PrometheusClient(panel.prometheus_url)
    try:
        columns = await older_history(
            client, panel.node_name, since, until, doc["fields"], gpus, max_points // 2, panel.sampler.interval
        )
    except PrometheusError as err:
        return {"source": "prometheus", "until": until, "points": 0, "error": str(err)}, {}
    points = max((len(c["t"]) for c in columns.values()), default=0)
    return {"source": "prometheus", "until": until, "points": points, "error": None}, columns
