"""Reading Prometheus' answer series by series (``cluster/capped.py``), checked against the whole-body
decoder (``parse_vector``) on answers in Prometheus' own format, cut at every kind of boundary.
The capped download itself is tested against the real Prometheus in ``test_cluster.py``."""

from __future__ import annotations

import json

import pytest

from jupyter_gpu_panel.cluster.capped import Answer, read_vector
from jupyter_gpu_panel.cluster.view import reading
from jupyter_gpu_panel.metrics.prometheus_http import PrometheusError, parse_vector


def answer(n: int) -> bytes:
    """``n`` series as Prometheus writes a vector (compact JSON, values as strings, NaN among
    them), labels with multibyte characters so that chunks split them."""
    result = []
    for i in range(n):
        metric = {
            "__name__": "DCGM_FI_DEV_FB_USED",
            "Hostname": f"nœud-{i // 8}",
            "gpu": str(i % 8),
            "UUID": f"GPU-实验-{i}",
            "modelName": "NVIDIA H100 80GB HBM3",
            "job": "dcgm",
        }
        value = ["1024", "NaN", "2.5", "+Inf"][i % 4]
        result.append({"metric": metric, "value": [1764000000.5 + i, value]})
    doc = {"status": "success", "data": {"resultType": "vector", "result": result}}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def chunked(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def expected(body: bytes) -> list:
    return [reading(s.name, s.labels, s.value, s.t) for s in parse_vector(body)]


@pytest.mark.parametrize("size", [1, 3, 7, 64, 1000, 65536, 10**9])
def test_every_chunking_reads_what_the_whole_body_holds(size: int):
    body = answer(300)
    got = read_vector(Answer(chunked(body, size), cut=False), max_series=10_000)
    assert got.truncated is None and got.series == 300
    assert got.samples == expected(body)  # NaN and +Inf read, not kept: 150 samples
    assert len(got.samples) == 150


@pytest.mark.parametrize("size", [5, 4096])
def test_past_max_series_only_the_first_are_read(size: int):
    body = answer(300)
    got = read_vector(Answer(chunked(body, size), cut=False), max_series=40)
    assert (got.truncated, got.series) == ("series", 40)
    assert got.samples == expected(body)[:20]


def test_exactly_max_series_is_the_whole_answer():
    got = read_vector(Answer([answer(40)], cut=False), max_series=40)
    assert (got.truncated, got.series) == (None, 40)


@pytest.mark.parametrize("at", [200, 5_000, 20_001])
def test_a_cut_answer_keeps_its_whole_series_only(at: int):
    body = answer(300)
    got = read_vector(Answer(chunked(body[:at], 999), cut=True), max_series=10_000)
    assert got.truncated == "bytes" and got.series < 300
    assert got.samples == expected(body)[: len(got.samples)]
    assert got.series == body[:at].count(b'"metric"') - (0 if body[:at].endswith(b"]}") else 1)


def test_an_empty_vector():
    got = read_vector(Answer([b'{"status":"success","data":{"resultType":"vector","result":[]}}'], False), 5)
    assert (got.samples, got.series, got.truncated) == ([], 0, None)


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"status":"error","errorType":"bad_data","error":"parse error"}', "parse error"),
        (b"<html>proxy error</html>", "not JSON"),
        (b'{"status":"success","data":{"resultType":"matrix","result":[]}}', "not a vector"),
        (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":1,"value":[1,"2"]}]}}', "vector"),
        (answer(10)[:-40], "ended in the middle"),
        (b'{"status":"success","data":{"resultType":"vector","result":[\xff]}}', "UTF-8"),
    ],
    ids=["error", "not-json", "matrix", "bad-metric", "ends-early", "not-utf8"],
)
def test_a_bad_answer_is_a_prometheus_error(body: bytes, message: str):
    with pytest.raises(PrometheusError, match=message):
        read_vector(Answer(chunked(body, 16), cut=False), 100)
