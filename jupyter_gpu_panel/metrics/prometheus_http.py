"""A client of Prometheus' HTTP API: instant and range queries, asynchronously. (Not a GPU
``Source``: those are in ``sources/``; the exporter, which Prometheus scrapes, is ``exporter``.)

The cluster view and history older than the server's own buffer come from here; the browser
never talks to Prometheus. Requests are non-blocking (tornado's AsyncHTTPClient); decoding a
large answer runs in a worker thread, so nothing that grows with the cluster runs on the loop.
"""

from __future__ import annotations

import asyncio
import json
import math
import urllib.parse
from dataclasses import dataclass
from typing import Any, Optional

import orjson
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


class PrometheusError(Exception):
    """Prometheus could not be asked, or answered with an error: the message says which."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float
    t: float  # the sample's own timestamp (Unix seconds) when asked with timestamp(), else the query time


@dataclass(frozen=True)
class Series:
    name: str
    labels: dict[str, str]
    t: list[float]
    values: list[Optional[float]]


class PrometheusClient:
    def __init__(self, url: str, timeout: float = 5.0, bearer_token: str = "") -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}

    async def _get(self, path: str, params: dict[str, str]) -> bytes:
        query = urllib.parse.urlencode(params)
        request = HTTPRequest(
            f"{self.url}{path}?{query}",
            headers=self.headers,
            connect_timeout=self.timeout,
            request_timeout=self.timeout,
        )
        try:
            resp = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as err:
            if err.code == 599:  # tornado's code for "no HTTP answer": timeout, connection closed
                raise PrometheusError(f"cannot reach Prometheus at {self.url}: {err.message}") from None
            detail = ""
            if err.response is not None and err.response.body:
                try:
                    detail = str(json.loads(err.response.body).get("error", ""))[:300]
                except (ValueError, AttributeError):
                    detail = ""
            raise PrometheusError(f"Prometheus answered {err.code}{': ' + detail if detail else ''}") from None
        except OSError as err:  # refused, unreachable, DNS
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {err.strerror or err}") from None
        except asyncio.TimeoutError:
            raise PrometheusError(f"Prometheus at {self.url} did not answer within {self.timeout:.0f} s") from None
        return resp.body

    async def query(self, promql: str, at: Optional[float] = None) -> list[Sample]:
        """An instant query; only vector results."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        body = await self._get("/api/v1/query", params)
        # decoding a cluster's answer grows with the cluster: off the event loop
        return await asyncio.get_running_loop().run_in_executor(None, parse_vector, body)

    async def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{max(step, 0.001):.3f}"}
        body = await self._get("/api/v1/query_range", params)
        return await asyncio.get_running_loop().run_in_executor(None, parse_matrix, body)


def _data(body: bytes) -> Any:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise PrometheusError(f"Prometheus answered something that is not JSON: {err}") from None
    if not isinstance(doc, dict) or doc.get("status") != "success" or not isinstance(doc.get("data"), dict):
        raise PrometheusError(f"Prometheus error: {doc.get('error') if isinstance(doc, dict) else 'bad answer'}")
    return doc["data"]


def parse_vector(body: bytes) -> list[Sample]:
    data = _data(body)
    out = []
    try:
        for item in data.get("result", []) if data.get("resultType") == "vector" else []:
            labels = item["metric"]  # Prometheus' label values are strings: used as decoded, not copied
            if not isinstance(labels, dict):
                raise TypeError("metric is not an object")
            t, raw = item["value"]
            value = _number(raw)
            if value is not None:
                out.append(Sample(labels.pop("__name__", ""), labels, value, float(t)))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise PrometheusError(f"Prometheus answered a result that is not a vector: {err}") from None
    return out


def parse_matrix(body: bytes) -> list[Series]:
    data = _data(body)
    out = []
    try:
        for item in data.get("result", []):
            labels = {str(k): str(v) for k, v in item.get("metric", {}).items()}
            points = item.get("values", [])
            times = [float(t) for t, _ in points]
            out.append(Series(labels.pop("__name__", ""), labels, times, [_number(v) for _, v in points]))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise PrometheusError(f"Prometheus answered a result that is not a matrix: {err}") from None
    return out


def _number(raw: Any) -> Optional[float]:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
