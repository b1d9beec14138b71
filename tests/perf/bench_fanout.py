"""Fan-out: N websocket clients on one server for S seconds.

    python tests/perf/bench_fanout.py [--clients 100] [--seconds 60] [--interval 1.0] [--source replay]

Starts a real `jupyter server` subprocess, connects N clients to the stream and prints
the server's CPU use (psutil, whole process), the delay from a tick (the snapshot's
timestamp) to its delivery (p50/p99), and NVML reads per tick (1 per GPU means the
clients share one sampler). Not a test: a table.
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

import psutil
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def client(url: str, delays: list[float], stop: float) -> int:
    ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {TOKEN}"}))
    n = 0
    while time.time() < stop:
        msg = await ws.read_message()
        if msg is None:
            break
        now = time.time()
        doc = json.loads(msg)
        if doc["type"] == "snapshot" and doc["snapshot"]["t"]:
            # the first message is the latest snapshot, sent at connect (up to a tick old by design)
            if n:
                delays.append(now - doc["snapshot"]["t"])
            n += 1
    ws.close()
    return n


async def run(args: argparse.Namespace, port: int, proc: psutil.Process) -> dict:
    base = f"http://127.0.0.1:{port}/api/gpu-panel"
    from tornado.httpclient import AsyncHTTPClient

    http = AsyncHTTPClient()
    status0 = json.loads((await http.fetch(f"{base}/status", headers={"Authorization": f"token {TOKEN}"})).body)
    delays: list[float] = []
    stop = time.time() + args.seconds
    proc.cpu_percent(None)
    t0 = time.time()
    counts = await asyncio.gather(
        *(client(f"ws://127.0.0.1:{port}/api/gpu-panel/stream", delays, stop) for _ in range(args.clients))
    )
    cpu = proc.cpu_percent(None)
    wall = time.time() - t0
    status1 = json.loads((await http.fetch(f"{base}/status", headers={"Authorization": f"token {TOKEN}"})).body)
    ticks = status1["sampler"]["ticks"] - status0["sampler"]["ticks"]
    reads = status1["sampler"]["reads"] - status0["sampler"]["reads"]
    delays.sort()
    return {
        "clients": args.clients,
        "seconds": round(wall, 1),
        "messages": sum(counts),
        "server_cpu_pct": cpu,
        "delay_p50_ms": statistics.median(delays) * 1000 if delays else None,
        "delay_p99_ms": delays[int(len(delays) * 0.99) - 1] * 1000 if delays else None,
        "ticks": ticks,
        "reads_per_tick": reads / ticks if ticks else None,
        "source": status1["source"],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--source", default="replay")
    args = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=tmp, JUPYTER_CONFIG_DIR=tmp)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--no-browser",
                "--allow-root",
                f"--port={port}",
                f"--ServerApp.token={TOKEN}",
                f"--ServerApp.root_dir={tmp}",
                "--ServerApp.jpserver_extensions={'jupyter_gpu_panel': True}",
                f"--GPUPanel.source={args.source}",
                f"--GPUPanel.interval={args.interval}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.2)
            time.sleep(1.5)
            result = asyncio.run(run(args, port, psutil.Process(server.pid)))
        finally:
            server.terminate()
            server.wait(10)
    print(
        f"\n{'clients':>8} {'seconds':>8} {'messages':>9} {'server CPU %':>13} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'reads/tick':>11}  source"
    )
    r = result
    print(
        f"{r['clients']:>8} {r['seconds']:>8} {r['messages']:>9} {r['server_cpu_pct']:>13.1f} "
        f"{r['delay_p50_ms']:>8.2f} {r['delay_p99_ms']:>8.2f} {r['reads_per_tick']:>11.2f}  {r['source']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
