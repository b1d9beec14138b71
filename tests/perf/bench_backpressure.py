"""Backpressure: many stream clients, some never reading, while probes append.

    python tests/perf/bench_backpressure.py [--clients 200] [--stalled 20] [--probes 30]
        [--records 20000] [--seconds 120] [--stall-timeout 30]

Starts a real `jupyter server` subprocess (``--GPUPanel.source=replay``) whose runtime dir
holds ``--probes`` probe files of ``--records`` step records each, written for live
``sleep`` processes of ours and appended twice a second (scripts in the kernels document,
which then changes at every refresh). Then ``--clients`` stream clients connect: the
``--stalled`` ones complete the websocket handshake on a plain socket and never read; the
others read everything and check that snapshots (``t``) and kernels documents (``seq``)
arrive in order. Prints the server's RSS (psutil) before, at most while they are connected,
and after they closed; the stalled clients the server closed (its log); the readers' order.
Not a test: a table.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

TOKEN = "bench-token"
HEADERS = {"Authorization": f"token {TOKEN}"}
LIMIT = 85_520_809_984  # an H100's memory, as the probe's meta says it
HEAD = re.compile(rb'\{"type":"(\w+)","(?:seq":(\d+)|snapshot":\{"t":([0-9.]+))')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- probes: files as the in-kernel probe writes them, for processes we own ------------------


def record(i: int, leaking: bool) -> str:
    allocated = 2 * 2**30 + (i * 2**20 if leaking else (i % 7) * 2**20)
    return json.dumps({"i": i, "t": time.time(), "dt": 0.05, "loss": 1.0, "allocated": allocated,
                       "reserved": allocated + 2**30, "active": allocated, "inactive_split": 0,
                       "peak_allocated": allocated + 2**29, "alloc_retries": 0, "num_ooms": 0})  # fmt: skip


class Probes:
    def __init__(self, directory: Path, n: int, records: int) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.procs = [subprocess.Popen(["sleep", "100000"]) for _ in range(n)]
        time.sleep(0.2)  # the meta's start time is after the process's, as a real probe's is
        self.files: list[Path] = []
        self.next_i = records
        for k, proc in enumerate(self.procs):
            meta = {"pid": proc.pid, "device": 0, "limit": LIMIT, "started": time.time()}
            (directory / f"probe-{proc.pid}.json").write_text(json.dumps(meta))
            path = directory / f"probe-{proc.pid}.iters.jsonl"
            path.write_text("".join(record(i, k % 2 == 0) + "\n" for i in range(records)))
            self.files.append(path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._append, daemon=True)

    def _append(self) -> None:
        # twice a second, 10 steps a probe: 20 steps/s each, like a small training loop
        while not self._stop.wait(0.5):
            start = self.next_i
            self.next_i += 10
            for k, path in enumerate(self.files):
                with path.open("a") as f:
                    f.write("".join(record(i, k % 2 == 0) + "\n" for i in range(start, self.next_i)))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for proc in self.procs:
            proc.kill()
            proc.wait()


# -- clients ----------------------------------------------------------------------------------


class Reader:
    def __init__(self) -> None:
        self.messages = 0
        self.out_of_order = 0
        self.kernels_skipped = 0
        self.last: dict[str, float] = {}
        self.kernels_bytes = 0


async def read_all(url: str, reader: Reader, stop: asyncio.Event) -> None:
    ws = await websocket_connect(HTTPRequest(url, headers=HEADERS), max_message_size=64 * 2**20)
    try:
        while not stop.is_set():
            msg = await ws.read_message()
            if msg is None:
                break
            reader.messages += 1
            raw = msg if isinstance(msg, bytes) else msg.encode()
            m = HEAD.match(raw[:80])
            if m is None:
                continue
            kind = m.group(1).decode()
            value = float(m.group(2) or m.group(3))
            last = reader.last.get(kind)
            if last is not None and value <= last:
                reader.out_of_order += 1
            if kind == "kernels":
                reader.kernels_bytes = len(raw)
                if last is not None and value > last + 1:
                    reader.kernels_skipped += int(value - last - 1)
            reader.last[kind] = value
    finally:
        ws.close()  # cancelled too: an open socket nobody reads would be one more stalled client


async def stalled_client(port: int, path: str) -> socket.socket:
    """The handshake, then nothing: the socket is never read again."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: token {TOKEN}\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await loop.sock_recv(sock, 1)
        if not chunk:
            raise RuntimeError("handshake refused")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head[:100].decode(errors="replace"))
    return sock


def log_time(line: str) -> float | None:
    """The time of a server log line, ``[W 2026-12-03 07:57:10.123 ServerApp] ...``."""
    try:
        return datetime.strptime(" ".join(line.split()[1:3]), "%Y-%m-%d %H:%M:%S.%f").timestamp()
    except ValueError:
        return None


def rss_mb(proc: psutil.Process) -> float:
    return proc.memory_info().rss / 2**20


async def settle(proc: psutil.Process, seconds: float) -> float:
    """The median of one RSS reading a second."""
    samples = []
    for _ in range(int(seconds)):
        samples.append(rss_mb(proc))
        await asyncio.sleep(1)
    return statistics.median(samples)


async def run(args: argparse.Namespace, port: int, proc: psutil.Process) -> dict:
    base = f"http://127.0.0.1:{port}/api/gpu-panel"
    http = AsyncHTTPClient()
    t0 = time.monotonic()
    scripts = 0
    while time.monotonic() - t0 < 180:  # the tracker reads 30 x 20,000 records once, at start
        doc = json.loads((await http.fetch(f"{base}/kernels", headers=HEADERS, request_timeout=60)).body)
        scripts = len(doc["scripts"])
        if scripts >= args.probes:
            break
        await asyncio.sleep(2)
    # warm-up: a few clients for a while, so first-use allocations are not counted as growth
    warm_stop = asyncio.Event()
    warm = [asyncio.create_task(read_all(f"ws://127.0.0.1:{port}/api/gpu-panel/stream", Reader(), warm_stop))
            for _ in range(5)]  # fmt: skip
    await asyncio.sleep(10)
    warm_stop.set()
    for task in warm:
        task.cancel()
    await asyncio.sleep(3)
    before = await settle(proc, 10)

    stop = asyncio.Event()
    readers = [Reader() for _ in range(args.clients - args.stalled)]
    path = "/api/gpu-panel/stream"
    stalled = [await stalled_client(port, path) for _ in range(args.stalled)]
    stalled_at = time.time()
    tasks = [asyncio.create_task(read_all(f"ws://127.0.0.1:{port}{path}", r, stop)) for r in readers]
    proc.cpu_percent(None)
    samples = []
    t_start = time.monotonic()
    while time.monotonic() - t_start < args.seconds:
        samples.append(rss_mb(proc))
        await asyncio.sleep(1)
    cpu = proc.cpu_percent(None)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for sock in stalled:
        sock.close()
    await asyncio.sleep(5)
    after = await settle(proc, 15)
    return {
        "scripts": scripts,
        "stalled_at": stalled_at,
        "before": before,
        "peak": max(samples),
        "end": samples[-1],
        "after": after,
        "cpu": cpu,
        "messages": sum(r.messages for r in readers),
        "min_messages": min(r.messages for r in readers),
        "out_of_order": sum(r.out_of_order for r in readers),
        "kernels_skipped": sum(r.kernels_skipped for r in readers),
        "kernels_kb": max(r.kernels_bytes for r in readers) / 1024,
        "rss_series": samples,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--stalled", type=int, default=20)
    ap.add_argument("--probes", type=int, default=30)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--stall-timeout", type=float, default=30)
    args = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        probes = Probes(Path(tmp) / "gpu-panel", args.probes, args.records)
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=tmp, JUPYTER_CONFIG_DIR=tmp)
        log_path = Path(tmp) / "server.log"
        with log_path.open("w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={port}",
                 f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={tmp}",
                 "--ServerApp.jpserver_extensions={'jupyter_gpu_panel': True}", "--GPUPanel.source=replay",
                 f"--GPUPanel.stream_stall_timeout={args.stall_timeout}"],
                env=env, stdout=log, stderr=log,
            )  # fmt: skip
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.2)
            probes.start()
            r = asyncio.run(run(args, port, psutil.Process(server.pid)))
        finally:
            server.terminate()
            server.wait(10)
            probes.stop()
        closed = [line for line in log_path.read_text().splitlines() if "client too slow" in line]
    reasons = sorted({line.split("(", 1)[-1].rstrip(")") for line in closed})
    # "[W 2026-12-03 07:57:10.123 ServerApp] ...": seconds from the stalled clients' handshake
    after_s = sorted(t - r["stalled_at"] for t in map(log_time, closed) if t is not None)
    when = f", {after_s[0]:.0f}-{after_s[-1]:.0f} s after they connected" if after_s else ""
    print(
        f"\n{'clients':>7} {'stalled':>7} {'probes':>6} {'seconds':>7} {'kernels KB':>10} {'RSS before':>10} "
        f"{'peak':>6} {'growth':>6} {'after':>6} {'vs before':>9} {'CPU %':>6}"
    )
    print(
        f"{args.clients:>7} {args.stalled:>7} {r['scripts']:>6} {args.seconds:>7.0f} {r['kernels_kb']:>10.0f} "
        f"{r['before']:>10.1f} {r['peak']:>6.1f} {r['peak'] - r['before']:>+6.1f} {r['after']:>6.1f} "
        f"{r['after'] - r['before']:>+9.1f} {r['cpu']:>6.1f}"
    )
    print(
        f"\nreaders: {r['messages']} messages (fewest for one reader: {r['min_messages']}), "
        f"{r['out_of_order']} out of order, {r['kernels_skipped']} kernels versions skipped (latest-only)"
    )
    print(f"stalled clients closed by the server: {len(closed)} of {args.stalled}{when} ({'; '.join(reasons) or '-'})")
    print("RSS (MB) each 10 s while connected: " + " ".join(f"{x:.0f}" for x in r["rss_series"][::10]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
