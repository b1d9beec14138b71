"""An instant query whose answer is capped in series and bytes, and read without stalling the loop.

A 200,000-series answer (63 MB) made ``GET cluster`` take 8.9 s, and its one ``orjson.loads``
held the GIL for 1.24 s: a worker thread did not help, the event loop waited all along. Here the
download stops at ``max_bytes``, and the answer is read series by series (the standard library's
C scanner, a few microseconds each) in a worker thread, so the loop gets the GIL back within a
switch interval; reading stops at ``max_series``. What was left out is said in ``Capped``.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import math
import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Optional

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httputil import HTTPInputError

from ..metrics.prometheus_http import PrometheusClient, PrometheusError
from .view import Reading, reading

#: where the series start, in Prometheus' answer (``{"status":"success","data":{"resultType":
#: "vector","result":[...]}}``; VictoriaMetrics and Thanos add keys, never before this one)
_RESULT = re.compile(r'"result"\s*:\s*\[')
_SUCCESS = re.compile(r'"status"\s*:\s*"success"')
_VECTOR = re.compile(r'"resultType"\s*:\s*"vector"')
_SPACE = re.compile(r"\s*")
#: text before the series, at most (the status, the result type and what a proxy adds)
MAX_HEAD = 64 * 1024
#: one series' JSON, at most (labels and a value: a few hundred bytes in practice)
MAX_SERIES_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Capped:
    samples: list[Reading]
    #: series read (a series whose value is not a finite number is read, not kept)
    series: int
    #: None: the whole answer; "series": more than max_series; "bytes": longer than max_bytes
    truncated: Optional[str] = None


class _Enough(HTTPInputError):
    """Raised by the streaming callback past ``max_bytes``: tornado closes the connection without
    logging a traceback (only an HTTPInputError passes its delegate's exception logging)."""


@dataclass
class Answer:
    """An answer as it came, in chunks; ``cut``: the download stopped at ``max_bytes``."""

    chunks: list[bytes]
    cut: bool


async def fetch_capped(client: PrometheusClient, promql: str, max_bytes: int) -> Answer:
    """An instant query's answer, at most ``max_bytes`` bytes of it. Read it with ``read_vector``
    in a worker thread."""
    chunks: list[bytes] = []
    size = 0
    cut = False

    def on_chunk(chunk: bytes) -> None:
        nonlocal size, cut
        room = max_bytes - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            size, cut = max_bytes, True
            raise _Enough(f"stopped reading Prometheus' answer at {max_bytes} bytes (cluster_max_bytes)")
        chunks.append(chunk)
        size += len(chunk)

    request = HTTPRequest(
        f"{client.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}",
        headers=client.headers,
        connect_timeout=client.timeout,
        request_timeout=client.timeout,
        streaming_callback=on_chunk,
    )
    try:
        await AsyncHTTPClient().fetch(request)
    except HTTPClientError as err:
        if not cut:  # a closed connection after the cut is the cut
            raise _error(client, err, chunks) from None
    except OSError as err:  # refused, unreachable, DNS
        raise PrometheusError(f"cannot reach Prometheus at {client.url}: {err.strerror or err}") from None
    except asyncio.TimeoutError:
        raise PrometheusError(f"Prometheus at {client.url} did not answer within {client.timeout:.0f} s") from None
    return Answer(chunks, cut)


def _error(client: PrometheusClient, err: HTTPClientError, chunks: list[bytes]) -> PrometheusError:
    if err.code == 599:  # tornado's code for "no HTTP answer": timeout, connection closed
        return PrometheusError(f"cannot reach Prometheus at {client.url}: {err.message}")
    detail = ""
    body = b"".join(chunks[:4])[:MAX_HEAD]  # an error answer is small: its first chunks hold it
    try:
        detail = str(json.loads(body).get("error", ""))[:300]
    except (ValueError, AttributeError):
        detail = ""
    return PrometheusError(f"Prometheus answered {err.code}{': ' + detail if detail else ''}")


def read_vector(answer: Answer, max_series: int) -> Capped:
    """The samples of a vector answer, at most ``max_series``; each keeps the labels the view
    reads (``view.LABELS``). A series the cut left part-read is dropped. Its work grows with the
    answer: call it in a worker thread. Each step (a chunk decoded, a series scanned) is short,
    and the GIL is offered to the event loop after each chunk."""
    chunks, cut = answer.chunks, answer.cut
    decoder = codecs.getincrementaldecoder("utf-8")()
    scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # the C scanner: one value at an index
    samples: list[Reading] = []
    series = 0
    text, at = "", 0
    started = ended = False
    expect_item = True
    try:
        for chunk in chunks:
            time.sleep(0)  # releases the GIL: a waiting event loop runs now, not at the next switch
            text = text[at:] + decoder.decode(chunk)
            at = 0
            if not started:
                head = _RESULT.search(text)
                if head is None:
                    if len(text) > MAX_HEAD:
                        raise PrometheusError("Prometheus answered something that is not a vector")
                    continue
                _check_head(text[: head.start()])
                started, at = True, head.end()
            while True:
                at = _SPACE.match(text, at).end()  # type: ignore[union-attr]  # \s* always matches
                if at >= len(text):
                    break  # the next chunk
                if not expect_item:
                    if text[at] == "]":
                        ended = True
                        break
                    if text[at] != ",":
                        raise PrometheusError(
                            "Prometheus answered a result that is not a vector: no ',' between series"
                        )
                    at += 1
                    expect_item = True
                    continue
                if text[at] == "]" and series == 0:
                    ended = True
                    break
                try:
                    item, end = scan(text, at)
                except (StopIteration, ValueError):  # its end is in a later chunk (or it is broken)
                    if len(text) - at > MAX_SERIES_BYTES:
                        raise PrometheusError("Prometheus answered a series of more than 1 MiB") from None
                    break
                if series >= max_series:
                    return Capped(samples, series, "series")
                series += 1
                sample = _sample(item)
                if sample is not None:
                    samples.append(sample)
                at, expect_item = end, False
            if ended:
                return Capped(samples, series)
    except UnicodeDecodeError:
        raise PrometheusError("Prometheus answered something that is not UTF-8") from None
    if not started and not cut:
        return Capped(_small_answer(text), 0)
    if cut:
        return Capped(samples, series, "bytes")
    raise PrometheusError("Prometheus' answer ended in the middle of its series")


def _check_head(head: str) -> None:
    if not _SUCCESS.search(head):
        raise PrometheusError(f"Prometheus error: {head[:300]}")
    if not _VECTOR.search(head):
        raise PrometheusError("Prometheus answered a result that is not a vector")


def _small_answer(text: str) -> list[Reading]:
    """A whole answer (at most ``MAX_HEAD`` characters) with no series list: an error, or not a
    vector."""
    try:
        doc = json.loads(text or "null")
    except ValueError as err:
        raise PrometheusError(f"Prometheus answered something that is not JSON: {err}") from None
    if not isinstance(doc, dict) or doc.get("status") != "success":
        raise PrometheusError(f"Prometheus error: {doc.get('error') if isinstance(doc, dict) else 'bad answer'}")
    raise PrometheusError("Prometheus answered a result that is not a vector")


def _sample(item: Any) -> Optional[Reading]:
    try:
        metric = item["metric"]
        if not isinstance(metric, dict):
            raise TypeError("metric is not an object")
        t, raw = item["value"]
        when = float(t)
        name = str(metric.get("__name__", ""))
    except (KeyError, TypeError, ValueError) as err:
        raise PrometheusError(f"Prometheus answered a result that is not a vector: {err!r}"[:300]) from None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None  # not a number: no reading, as for NaN
    if not math.isfinite(value):
        return None
    return reading(name, metric, value, when)


def release(items: list[Any]) -> None:
    """Empty a large list one item at a time: freed at once, its objects are deallocated in one
    step that holds the GIL; one by one, the event loop gets its turn in between."""
    while items:
        items.pop()
