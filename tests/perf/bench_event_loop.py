"""The event loop under load: history queries of a full hour while 200 clients stream.

    python tests/perf/bench_event_loop.py [--clients 200] [--queries 10] [--seconds 20]

Part 1 (in process): one ``GET history`` worth of work — a full hour of 8 GPUs and 16 processes
at 0.1 s ticks (36,000 rows each), downsampled to 4000 points and serialised — timed against
the peer it replaced, the per-bucket Python loop of the previous release, measured in the same run.

Part 2 (a real server): a ``jupyter server`` subprocess on the replay source whose history is
pre-filled with that hour; a second process holds 200 websocket clients streaming at 1 msg/s and
keeps 10 ``GET history?max_points=4000`` queries in flight at once. Inside the server, a probe
task measures the event loop's lag (how late a 5 ms sleep wakes up): p50/p99/max, plus the
latency of ``GET status`` (what every other client waits on) measured from outside.
Prints tables; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from jupyter_gpu_panel.api.base import json_parts  # noqa: E402 - after the path setup above
from jupyter_gpu_panel.metrics.history import GPU_MEAN_COLUMNS, History, Ring  # noqa: E402
from jupyter_gpu_panel.metrics.readings import HISTORY_FIELDS  # noqa: E402

TOKEN = "bench-loop-token"
GPUS, PROCS, HOUR, TICK = 8, 16, 3600.0, 0.1


def full_ring(rows: np.ndarray) -> Ring:
    """A ring holding exactly ``rows`` (written into both halves of the mirror, as appends would)."""
    ring = Ring(len(rows), rows.shape[1])
    ring.data[: len(rows)] = rows
    ring.data[len(rows) :] = rows
    ring.count = len(rows)
    return ring


def filled_history(now: float) -> History:
    """A full hour of 8 GPUs and 16 processes, written into the rings directly."""
    hist = History(HOUR, TICK)
    n = hist.capacity
    t = now - HOUR + TICK * np.arange(n)
    rng = np.random.default_rng(0)
    for g in range(GPUS):
        rows = np.empty((n, 1 + len(HISTORY_FIELDS)))
        rows[:, 0] = t
        rows[:, 1:] = rng.integers(0, 100, size=(n, len(HISTORY_FIELDS))).astype(float)
        rows[::97, 3] = np.nan  # a few missing readings, as a real card has
        hist._gpus[g] = full_ring(rows)
    for k in range(PROCS):
        ring = full_ring(np.column_stack((t, 2**30 + 2**20 * np.arange(n, dtype=float))))
        key = (k % GPUS, 10_000 + k)
        hist._procs[key] = ring
        hist._proc_last[key] = now + 10 * HOUR  # never expires during the run
    return hist


def loop_downsample(rows: np.ndarray, max_points: int, mean_columns=()) -> np.ndarray:
    """The peer: the previous release's per-bucket loop (kept here only to compare)."""
    n = len(rows)
    if max_points <= 0 or n <= max_points:
        return rows
    edges = np.linspace(0, n, max_points + 1).astype(int)
    out = np.empty((max_points, rows.shape[1]))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(max_points):
            chunk = rows[edges[k] : edges[k + 1]]
            out[k] = np.nanmax(chunk, axis=0)
            out[k, 0] = chunk[-1, 0]
            if mean_columns:
                out[k, list(mean_columns)] = np.nanmean(chunk[:, list(mean_columns)], axis=0)
    return out


def part1(repeats: int) -> None:
    hist = filled_history(time.time())

    def ours() -> int:
        return sum(len(p) for p in json_parts(hist.query(max_points=4000)))

    def peer() -> int:
        # the previous release: per-bucket loop, per-value cleaning, one json.dumps
        with hist._lock:
            gpu_rows = [r.ordered() for r in hist._gpus.values()]
            proc_rows = [r.ordered() for r in hist._procs.values()]
        doc = {"gpus": [], "processes": []}
        for rows in gpu_rows:
            rows = loop_downsample(rows, 4000, GPU_MEAN_COLUMNS)
            doc["gpus"].append(
                [[None if v != v else round(float(v), 3) for v in rows[:, c]] for c in range(rows.shape[1])]
            )
        for rows in proc_rows:
            rows = loop_downsample(rows, 4000)
            doc["processes"].append([[None if v != v else round(float(v), 3) for v in rows[:, c]] for c in range(2)])
        return len(json.dumps(doc))

    rows = []
    for name, fn in (("this release (vectorised, JSON by column)", ours), ("peer: previous per-bucket loop", peer)):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            size = fn()
            times.append((time.perf_counter() - t0) * 1000)
        rows.append((name, statistics.median(times), max(times), size))
    print("\nGET history work: 1 h x 8 GPUs + 16 processes at 0.1 s ticks -> 4000 points (ms)")
    print(f"{'implementation':<40} {'median':>8} {'max':>8} {'bytes':>10}")
    for name, med, mx, size in rows:
        print(f"{name:<40} {med:>8.1f} {mx:>8.1f} {size:>10,}")
    print(f"speed-up vs peer: {rows[1][1] / rows[0][1]:.0f}x")


# -- part 2: the real server ---------------------------------------------------------------------


def serve(port: int, seconds: float) -> None:
    """Server process: a real ServerApp with the extension, history pre-filled, lag probe."""
    from jupyter_server.serverapp import ServerApp
    from tornado.ioloop import IOLoop

    tmp = tempfile.mkdtemp()
    app = ServerApp()
    app.initialize(
        argv=[
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--ServerApp.token={TOKEN}",
            "--no-browser",
            "--allow-root",
            f"--ServerApp.root_dir={tmp}",
            "--ServerApp.jpserver_extensions={'jupyter_gpu_panel': True}",
            "--GPUPanel.source=replay",
            f"--GPUPanel.interval={TICK}",
            "--ServerApp.log_level=ERROR",
        ]
    )
    panel = app.extension_manager.extension_points["jupyter_gpu_panel"].app
    panel.sampler.history = filled_history(time.time())
    lags: list[float] = []

    async def probe() -> None:
        await asyncio.sleep(2.0)  # clients connect
        print("READY", flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.monotonic()
            await asyncio.sleep(0.005)
            lags.append((time.monotonic() - t0 - 0.005) * 1000)
        print(json.dumps({"lag_ms": lags}), flush=True)
        IOLoop.current().stop()

    IOLoop.current().add_callback(lambda: asyncio.ensure_future(probe()))
    app.start()


async def load(port: int, clients: int, queries: int, seconds: float, out: dict) -> None:
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest
    from tornado.websocket import websocket_connect

    base = f"127.0.0.1:{port}/api/gpu-panel"
    headers = {"Authorization": f"token {TOKEN}"}
    AsyncHTTPClient.configure(None, max_clients=queries + 4)
    http = AsyncHTTPClient()
    socks = []
    for _ in range(clients):
        ws = await websocket_connect(HTTPRequest(f"ws://{base}/stream", headers=headers))
        ws.write_message(json.dumps({"interval": 1}))
        socks.append(ws)
    received = [0]

    async def drain(ws) -> None:
        while await ws.read_message() is not None:
            received[0] += 1

    drains = [asyncio.ensure_future(drain(ws)) for ws in socks]
    end = time.monotonic() + seconds
    history_ms: list[float] = []
    status_ms: list[float] = []

    async def history_worker() -> None:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            resp = await http.fetch(f"http://{base}/history?max_points=4000", headers=headers, request_timeout=60)
            assert resp.code == 200
            history_ms.append((time.perf_counter() - t0) * 1000)

    async def status_worker() -> None:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            await http.fetch(f"http://{base}/status", headers=headers)
            status_ms.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.05)

    await asyncio.gather(*(history_worker() for _ in range(queries)), status_worker())
    for ws in socks:
        ws.close()
    for d in drains:
        d.cancel()
    out.update(history_ms=history_ms, status_ms=status_ms, ws_messages=received[0])


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def part2(clients: int, queries: int, seconds: float) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--seconds", str(seconds + 4)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(1.5)
    out: dict = {}
    try:
        for _ in range(60):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.25)
        asyncio.run(load(port, clients, queries, seconds, out))
        lines = [line for line in server.stdout if line.startswith("{")]  # type: ignore[union-attr]
        lag = json.loads(lines[-1])["lag_ms"]
    finally:
        server.kill()
        server.wait()
    print(
        f"\nReal server, {clients} websocket clients at 1 msg/s + {queries} concurrent full-hour history queries, "
        f"{seconds:.0f} s"
    )
    print(f"{'measure':<44} {'p50':>8} {'p99':>8} {'max':>8} {'n':>7}")
    for name, values in (
        ("event-loop lag inside the server (ms)", lag),
        ("GET history?max_points=4000, client (ms)", out["history_ms"]),
        ("GET status while that runs, client (ms)", out["status_ms"]),
    ):
        print(f"{name:<44} {pct(values, 50):>8.1f} {pct(values, 99):>8.1f} {max(values):>8.1f} {len(values):>7}")
    print(f"websocket messages delivered: {out['ws_messages']:,}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve, args.seconds)
        return
    part1(args.repeats)
    part2(args.clients, args.queries, args.seconds)


if __name__ == "__main__":
    main()
