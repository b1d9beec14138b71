import json
import math

import numpy as np

from jupyter_gpu_panel.api.base import json_parts
from jupyter_gpu_panel.metrics.history import History, Ring, downsample
from jupyter_gpu_panel.metrics.readings import HISTORY_FIELDS, GPUReading, ProcessReading


def reading(t, used, util=50, procs=()):
    r = GPUReading(index=0, t=t, mem_used=used, mem_total=1000, util_gpu=util)
    r.processes = [ProcessReading(pid=p, gpu=0, used=u) for p, u in procs]
    return r


def test_ring_keeps_the_newest_rows_in_order():
    ring = Ring(3, 1)
    for v in range(5):
        ring.append([v])
    assert ring.ordered()[:, 0].tolist() == [2, 3, 4]


def served(doc):
    """A query as the API serves it (numpy columns written as JSON, NaN as null)."""
    return json.loads(b"".join(json_parts(doc)))


def test_history_is_bounded_and_states_its_bytes_per_gpu_hour():
    h = History(history_seconds=3600, interval=1.0)
    for t in range(5000):
        h.append([reading(float(t), t)])
    doc = served(h.query())
    assert len(doc["gpus"][0]["t"]) == 3600
    assert doc["gpus"][0]["t"][0] == 5000 - 3600
    # 3600 rows x (1 + fields) x 8 bytes, mirrored (each row kept twice): the documented bound
    assert h.nbytes == 2 * 3600 * (1 + len(HISTORY_FIELDS)) * 8


def test_missing_values_are_null_and_processes_expire():
    h = History(history_seconds=10, interval=1.0)
    h.append([reading(0.0, None, procs=[(7, 100)])])
    for t in range(1, 30):
        h.append([reading(float(t), 5)])
    doc = h.query()
    assert doc["processes"] == []  # pid 7 ended 29 s ago, beyond the 10 s history
    h2 = History(history_seconds=10, interval=1.0)
    h2.append([reading(0.0, None, procs=[(7, 100)])])
    doc = served(h2.query())
    assert doc["gpus"][0]["values"]["mem_used"] == [None]
    assert doc["processes"] == [{"gpu": 0, "pid": 7, "t": [0.0], "used": [100]}]


def test_downsample_keeps_memory_peaks_and_averages_rates():
    rows = np.array([[t, 10.0 if t != 5 else 99.0, t % 2 * 100.0] for t in range(10)])
    out = downsample(rows, 2, mean_columns=[2])
    assert out[:, 0].tolist() == [4.0, 9.0]
    assert out[:, 1].tolist() == [10.0, 99.0]  # the spike survives
    assert out[:, 2].tolist() == [40.0, 60.0]
    assert downsample(rows, 0) is rows and downsample(rows, 50) is rows


def test_query_since_and_gpu_filter():
    h = History(history_seconds=100, interval=1.0)
    for t in range(10):
        h.append([reading(float(t), t)])
    doc = served(h.query(since=6.5, fields=["mem_used"]))
    assert doc["gpus"][0]["t"] == [7.0, 8.0, 9.0]
    assert doc["gpus"][0]["values"] == {"mem_used": [7, 8, 9]}
    assert h.query(gpus=[3])["gpus"] == []
    assert not math.isnan(h.query()["gpus"][0]["values"]["util_gpu"][0])


def test_every_field_comes_back_as_itself():
    """The rings keep their columns in their own order (rates side by side): each field still
    answers with its own reading, raw and downsampled."""
    h = History(history_seconds=100, interval=1.0)
    for t in range(20):
        r = GPUReading(index=0, t=float(t), **{name: 1000 * (k + 1) + t for k, name in enumerate(HISTORY_FIELDS)})
        h.append([r])
    raw = served(h.query())["gpus"][0]["values"]
    assert {name: raw[name][-1] for name in HISTORY_FIELDS} == {
        name: 1000 * (k + 1) + 19 for k, name in enumerate(HISTORY_FIELDS)
    }
    two = served(h.query(max_points=2))["gpus"][0]["values"]
    for k, name in enumerate(HISTORY_FIELDS):
        base = 1000 * (k + 1)
        # memory levels keep the bucket's maximum, rates its mean
        want = [base + 9, base + 19] if name.startswith("mem_") else [base + 4.5, base + 14.5]
        assert two[name] == want, name


def test_vectorised_downsample_matches_the_bucket_definition():
    """Against a direct per-bucket computation on random data with missing readings: buckets of
    ceil(n / max_points) rows aligned to the newest row (1003 rows, 50 points: 21 per bucket)."""
    rng = np.random.default_rng(1)
    rows = rng.random((1003, 4)) * 100
    rows[:, 0] = np.arange(1003)
    rows[rng.random(1003) < 0.1, 2] = np.nan
    rows[1003 - 21 * 10 : 1003 - 21 * 9, 3] = np.nan  # a whole bucket missing in one column
    out = downsample(rows, 50, mean_columns=[3])
    assert len(out) == 48  # ceil(1003 / 21)
    edges = [0] + list(range(1003 - 21 * 47, 1004, 21))
    for k in range(48):
        chunk = rows[edges[k] : edges[k + 1]]
        assert out[k, 0] == chunk[-1, 0]
        assert out[k, 1] == chunk[:, 1].max()
        assert out[k, 2] == np.nanmax(chunk[:, 2])
        want = chunk[:, 3][~np.isnan(chunk[:, 3])]
        if len(want):
            assert math.isclose(out[k, 3], want.mean())
        else:
            assert math.isnan(out[k, 3])


async def test_history_queries_and_their_json_run_off_the_event_loop(jp_fetch, panel, monkeypatch):
    """Downsampling an hour of 8 GPUs and writing it as JSON grow with the data: neither may run on
    the tornado loop, where every other request and socket waits."""
    import threading

    from jupyter_gpu_panel.api import history

    seen = {}
    query, encode = panel.sampler.history.query, history.json_parts

    def spy_query(*args, **kwargs):
        seen["query"] = threading.current_thread()
        return query(*args, **kwargs)

    def spy_encode(doc):
        seen["encode"] = threading.current_thread()
        return encode(doc)

    monkeypatch.setattr(panel.sampler.history, "query", spy_query)
    monkeypatch.setattr(history, "json_parts", spy_encode)
    resp = await jp_fetch("api", "gpu-panel", "history", params={"max_points": "100"})
    assert resp.code == 200 and json.loads(resp.body)["gpus"]
    loop_thread = threading.main_thread()
    assert seen["query"] is not loop_thread and seen["encode"] is not loop_thread
