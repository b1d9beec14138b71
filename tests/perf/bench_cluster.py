"""``GET cluster`` at 100 nodes x 8 GPUs, through a real Prometheus.

    python tests/perf/bench_cluster.py [--requests 30]

Debian's Prometheus scrapes the recorded exposition of 100 nodes x 8 GPUs (DCGM series plus this
project's per-kernel series, tests/data/cluster/); a real ``jupyter server`` with the panel asks it
(``cluster_refresh=0``: every request goes to Prometheus, nothing cached). Peer, in the same run:
the two PromQL queries alone, sent straight to Prometheus by the same client — what any view of
this cluster must pay. Prints a table; not a test.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from jupyter_gpu_panel.cluster import promql  # noqa: E402

from servers import Exposition, start_jupyter_server, start_prometheus, wait_until  # noqa: E402

SCALE = ROOT / "tests" / "data" / "cluster" / "dcgm-100x8.prom.gz"


def timed(fn, n: int) -> tuple[float, float, int]:
    fn()
    times, size = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        size = len(fn())
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=30)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    text = gzip.decompress(SCALE.read_bytes()).decode()
    exporter = Exposition(lambda: text).start()
    prom = start_prometheus(
        work / "prom", [{"job_name": "dcgm", "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}]
    )
    server = None
    try:
        wait_until(lambda: len(prom.query("DCGM_FI_DEV_FB_USED")) == 800, 60, "800 GPUs in Prometheus")
        server = start_jupyter_server(
            work / "jupyter", "--GPUPanel.source=replay", f"--GPUPanel.prometheus_url={prom.url}",
            "--GPUPanel.cluster_refresh=0",
        )  # fmt: skip
        req = urllib.request.Request(
            server.url + "api/gpu-panel/cluster", headers={"Authorization": f"token {server.token}"}
        )

        def ours() -> bytes:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.read()

        def peer() -> bytes:
            out = b""
            for q in (promql.VALUES, promql.SCRAPED):
                with urllib.request.urlopen(prom.url + "api/v1/query?" + urllib.parse.urlencode({"query": q})) as r:
                    out += r.read()
            return out

        rows = [("GET cluster (Prometheus asked every time)", *timed(ours, args.requests)),
                ("peer: the same PromQL straight to Prometheus", *timed(peer, args.requests))]  # fmt: skip
        print(f"\nGET cluster, 100 nodes x 8 GPUs, {args.requests} requests, nothing cached")
        print(f"{'what':<46} {'median ms':>10} {'p95 ms':>8} {'bytes':>10}")
        for name, med, p95, size in rows:
            print(f"{name:<46} {med:>10.1f} {p95:>8.1f} {size:>10,}")
        print(
            f"our share on top of Prometheus: {rows[0][1] - rows[1][1]:.1f} ms "
            f"({rows[0][1] / rows[1][1]:.1f}x the queries alone)"
        )
    finally:
        if server is not None:
            server.stop()
        prom.stop()
        exporter.stop()


if __name__ == "__main__":
    main()
