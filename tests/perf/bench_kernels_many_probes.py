"""Many busy probes on one server: what ``GET kernels?refresh=1`` costs (issue 17, part 1).

    python tests/perf/bench_kernels_many_probes.py [--probes 100] [--records 20000] [--seconds 60]
        [--idle-seconds 30] [--before REF]

Starts a real `jupyter server` subprocess (``--GPUPanel.source=replay``, a private runtime dir)
beside ``--probes`` probed "scripts": each a live ``sleep`` process of ours with a probe meta
file and ``--records`` step records pre-written, then one writer process appends a record to
every probe file twice a second. Measured, in this order:

* warm-up: seconds until one ``GET kernels?refresh=1`` lists every probe (at most ``--warmup``);
* idle: the server's CPU (psutil ``cpu_times``, % of one core) over ``--idle-seconds`` with no
  client connected: only the tracker's own periodic refresh runs;
* client: ``GET kernels?refresh=1`` every 0.5 s (back to back when slower) for ``--seconds``:
  median and max latency, the fewest probes one answer listed, the answer's size;
* RSS: the server's resident memory, largest seen and at the end.

``--before REF`` runs the same against a ``git worktree`` of REF (its package first on
PYTHONPATH) and prints both rows. Not a test: a table; the 2-core machine's other work shows
up in the figures, so say what else ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

import psutil
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

TOKEN = "bench-token"
ROOT = Path(__file__).resolve().parents[2]
GiB, MiB = 2**30, 2**20
LIMIT = 80 * GiB
#: per-probe patterns (allocated bytes at step i): a leak, a plateau, a sawtooth, a slow leak
PATTERNS = {
    "leak": lambda i: 2 * GiB + i * MiB,
    "plateau": lambda i: 3 * GiB,
    "sawtooth": lambda i: 2 * GiB + (i % 50) * 4 * MiB,
    "slow_leak": lambda i: 4 * GiB + (i // 10) * 64 * 1024,
}

WRITER = r"""
import json, sys, time
files = json.loads(sys.argv[1]); period = float(sys.argv[2])
GiB, MiB = 2**30, 2**20
pat = {"leak": lambda i: 2*GiB + i*MiB, "plateau": lambda i: 3*GiB,
       "sawtooth": lambda i: 2*GiB + (i % 50)*4*MiB, "slow_leak": lambda i: 4*GiB + (i//10)*64*1024}
handles = [(open(path, "a"), pat[name], start) for path, name, start in files]
i = 0
while True:
    t0 = time.time()
    for fh, alloc, start in handles:
        a = alloc(start + i)
        fh.write(json.dumps({"i": start + i, "kind": "step", "iter": start + i, "opt": 0, "t": t0,
            "dt": period, "allocated": a, "reserved": a + 512*MiB, "active": a, "inactive_split": MiB,
            "peak_allocated": a + 256*MiB, "alloc_retries": 0, "num_ooms": 0, "limit": 80*GiB,
            "free": 60*GiB, "device": 0}) + "\n")
        fh.flush()
    i += 1
    time.sleep(max(0.0, period - (time.time() - t0)))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record(i: int, t: float, allocated: int) -> str:
    """One step record as the probe writes it (``probe/protocol.py``'s fields)."""
    return json.dumps(
        {
            "i": i,
            "kind": "step",
            "iter": i,
            "opt": 0,
            "t": t,
            "dt": 0.5,
            "allocated": allocated,
            "reserved": allocated + 512 * MiB,
            "active": allocated,
            "inactive_split": MiB,
            "peak_allocated": allocated + 256 * MiB,
            "alloc_retries": 0,
            "num_ooms": 0,
            "limit": LIMIT,
            "free": 60 * GiB,
            "device": 0,
        }  # fmt: skip
    )


def write_probes(probe_dir: Path, n: int, records: int) -> tuple[list[subprocess.Popen], list[Any]]:
    """``n`` live ``sleep`` processes, each with a meta file and ``records`` pre-written steps."""
    t0 = time.time() - records * 0.5
    bodies = {
        name: "".join(record(i, t0 + i * 0.5, alloc(i)) + "\n" for i in range(records))
        for name, alloc in PATTERNS.items()
    }
    sleepers, files = [], []
    names = list(PATTERNS)
    for k in range(n):
        proc = subprocess.Popen(["sleep", "100000"])
        sleepers.append(proc)
        name = names[k % len(names)]
        meta = {"pid": proc.pid, "kernel_id": None, "device": 0, "limit": LIMIT, "started": time.time() + 1,
                "argv": ["train.py", f"--run={k}"], "rank": None, "torch": "2.5.0"}  # fmt: skip
        iters = probe_dir / f"probe-{proc.pid}.iters.jsonl"
        iters.write_text(bodies[name])
        (probe_dir / f"probe-{proc.pid}.json").write_text(json.dumps(meta))
        files.append([str(iters), name, records])
    return sleepers, files


class Sampler(threading.Thread):
    """The server's RSS once a second (largest and last)."""

    def __init__(self, proc: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.proc, self.peak, self.last, self.stop = proc, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            try:
                self.last = self.proc.memory_info().rss
            except psutil.NoSuchProcess:
                return
            self.peak = max(self.peak, self.last)


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


async def get_kernels(http: AsyncHTTPClient, base: str) -> tuple[float, Optional[dict[str, Any]], int]:
    t0 = time.perf_counter()
    try:
        resp = await http.fetch(
            f"{base}/kernels?refresh=1", headers={"Authorization": f"token {TOKEN}"}, request_timeout=60
        )
    except HTTPClientError as err:
        return time.perf_counter() - t0, None, err.code
    return time.perf_counter() - t0, json.loads(resp.body), len(resp.body)


async def measure(args: argparse.Namespace, port: int, server: psutil.Process, n: int) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}/api/gpu-panel"
    http = AsyncHTTPClient()
    rss = Sampler(server)
    rss.start()
    t0 = time.time()
    listed = 0
    while time.time() - t0 < args.warmup:  # the first reads of every probe's 20,000 records
        _lat, doc, _size = await get_kernels(http, base)
        listed = len(doc["scripts"]) if doc else 0
        if listed == n:
            break
        await asyncio.sleep(1.0)
    warmup = time.time() - t0
    await asyncio.sleep(5.0)  # settle: no request in flight
    c0, w0 = cpu_seconds(server), time.time()
    await asyncio.sleep(args.idle_seconds)
    idle_cpu = 100.0 * (cpu_seconds(server) - c0) / (time.time() - w0)
    lat, counts, sizes, errors = [], [], [], 0
    stop = time.time() + args.seconds
    while time.time() < stop:
        began = time.time()
        seconds, doc, size = await get_kernels(http, base)
        lat.append(seconds)
        if doc is None:
            errors += 1
        else:
            counts.append(len(doc["scripts"]))
            sizes.append(size)
        await asyncio.sleep(max(0.0, 0.5 - (time.time() - began)))
    rss.stop.set()
    return {
        "warmup_s": warmup,
        "warm_listed": listed,
        "idle_cpu_pct": idle_cpu,
        "requests": len(lat),
        "median_ms": 1000 * statistics.median(lat),
        "max_ms": 1000 * max(lat),
        "listed_min": min(counts) if counts else 0,
        "errors": errors,
        "doc_kb": statistics.median(sizes) / 1024 if sizes else 0,
        "rss_peak_mb": rss.peak / MiB,
        "rss_end_mb": rss.last / MiB,
    }


def run_once(args: argparse.Namespace, label: str, pythonpath: Optional[str]) -> dict[str, Any]:
    port = free_port()
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-probes-") as tmp:
        probe_dir = Path(tmp) / "gpu-panel"
        probe_dir.mkdir(mode=0o700)
        sleepers, files = write_probes(probe_dir, args.probes, args.records)
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=tmp, JUPYTER_CONFIG_DIR=tmp, JUPYTER_DATA_DIR=tmp)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
        writer = subprocess.Popen([sys.executable, "-c", WRITER, json.dumps(files), "0.5"])
        log = open(Path(args.server_log) / f"{label.split()[0]}.log", "w") if args.server_log else None
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
                "--GPUPanel.source=replay",
            ],  # fmt: skip
            env=env,
            cwd=tmp,
            stdout=log or subprocess.DEVNULL,
            stderr=log or subprocess.DEVNULL,
        )
        try:
            for _ in range(150):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.2)
            result = asyncio.run(measure(args, port, psutil.Process(server.pid), args.probes))
        finally:
            server.terminate()
            server.wait(20)
            writer.kill()
            writer.wait()
            for proc in sleepers:
                proc.kill()
                proc.wait()
            if log is not None:
                log.close()
    # the 1-minute load average of the machine before and after: other work on it shows here
    return {"code": label, **result, "load": f"{load0:.1f}-{os.getloadavg()[0]:.1f}"}


def worktree(ref: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="gpu-panel-before-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), ref], check=True)
    return path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", type=int, default=100)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--idle-seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=180, help="seconds to wait for every probe to be listed")
    ap.add_argument("--before", help="also run a git worktree of this ref (the code before), as the peer")
    ap.add_argument("--server-log", help="a folder: keep each server's output there (this.log, before.log)")
    args = ap.parse_args()
    rows = [run_once(args, "this tree", None)]
    if args.before:
        tree = worktree(args.before)
        try:
            rows.append(run_once(args, f"before ({args.before})", str(tree)))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
            shutil.rmtree(tree.parent, ignore_errors=True)
    print(
        f"\n{args.probes} probes x {args.records} records, each appended twice a second; "
        f"{os.cpu_count()} CPUs; idle {args.idle_seconds:.0f} s, client {args.seconds:.0f} s"
    )
    print(
        f"{'code':<22} {'warm-up s':>9} {'idle CPU %':>10} {'GET median ms':>13} {'GET max ms':>10} "
        f"{'requests':>8} {'listed (min)':>12} {'errors':>6} {'doc KB':>7} {'RSS peak MB':>11} {'RSS end MB':>10} "
        f"{'load avg':>9}"
    )
    for r in rows:
        print(
            f"{r['code']:<22} {r['warmup_s']:>9.1f} {r['idle_cpu_pct']:>10.1f} {r['median_ms']:>13.1f} "
            f"{r['max_ms']:>10.1f} {r['requests']:>8} {r['listed_min']:>5}/{args.probes:<6} {r['errors']:>6} "
            f"{r['doc_kb']:>7.0f} {r['rss_peak_mb']:>11.0f} {r['rss_end_mb']:>10.0f} {r['load']:>9}"
        )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
