"""Cost of one ``/metrics`` scrape of this project's series: 8 GPUs and 50 kernels.

    python tests/perf/bench_scrape.py [--repeats 200]

The collector reads only what the sampler and the kernel tracker already hold (no NVML call,
no file read): here a sampler's snapshot of 8 GPUs and a kernels document of 50 kernels, each
with memory on a GPU and a leak verdict. Peer, in the same run: prometheus_client's own default
collectors (process, platform, garbage collector) that every Jupyter Server's /metrics serves.
Prints a table; not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry, gc_collector, generate_latest, platform_collector, process_collector  # noqa: E402  # noqa: E402

from jupyter_gpu_panel.metrics.exporter import PanelCollector  # noqa: E402
from jupyter_gpu_panel.metrics.privacy import Audience  # noqa: E402
from jupyter_gpu_panel.metrics.readings import DeviceInfo, GPUReading  # noqa: E402
from jupyter_gpu_panel.metrics.sampler import Snapshot  # noqa: E402
from jupyter_gpu_panel.metrics.sources.base import SourceStatus  # noqa: E402

GPUS, KERNELS = 8, 50


def fake_panel() -> SimpleNamespace:
    now = time.time()
    gpus = [
        GPUReading(index=i, t=now, util_gpu=87, util_mem=40, mem_used=60 * 2**30, mem_total=80 * 2**30,
                   power_mw=550_000, power_limit_mw=700_000, temp_c=61, clock_sm=1980, clock_mem=2619,
                   throttle_reasons=["sw power cap"])
        for i in range(GPUS)
    ]  # fmt: skip
    kernels = [
        {"kernel_id": f"{k:08x}-0000-4000-8000-000000000000", "notebook": f"user/nb{k}.ipynb", "user": "user",
         "memory": {str(k % GPUS): 4 * 2**30},
         "leak": {"leak": k % 5 == 0, "actionable": k % 5 == 0, "bytes_per_second": 2**20, "seconds_to_oom": 900.0}}
        for k in range(KERNELS)
    ]  # fmt: skip
    sampler = SimpleNamespace(
        devices=[DeviceInfo(index=i, name="NVIDIA H100 80GB HBM3", uuid=f"GPU-{i}") for i in range(GPUS)],
        snapshot=lambda: Snapshot(t=now, gpus=gpus),
        status=SourceStatus("nvml"),
    )
    return SimpleNamespace(
        sampler=sampler,
        tracker=SimpleNamespace(doc={"kernels": kernels, "scripts": []}),
        node_name="gpu-node-001",
        audience=lambda: Audience(user="user"),
    )


def timed(registry: CollectorRegistry, repeats: int) -> tuple[float, float, int]:
    generate_latest(registry)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        body = generate_latest(registry)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))], len(body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    ours = CollectorRegistry()
    collector = PanelCollector()
    collector.attach(fake_panel())  # type: ignore[arg-type]
    ours.register(collector)
    peer = CollectorRegistry()
    process_collector.ProcessCollector(registry=peer)
    platform_collector.PlatformCollector(registry=peer)
    gc_collector.GCCollector(registry=peer)
    rows = [("jupyter-gpu-panel: 8 GPUs, 50 kernels", *timed(ours, args.repeats)),
            ("peer: prometheus_client default collectors", *timed(peer, args.repeats))]  # fmt: skip
    print(f"\n/metrics scrape cost ({args.repeats} scrapes)")
    print(f"{'collector':<44} {'median ms':>10} {'p99 ms':>8} {'bytes':>8}")
    for name, med, p99, size in rows:
        print(f"{name:<44} {med:>10.3f} {p99:>8.3f} {size:>8,}")
    print(f"ours / peer: {rows[0][1] / rows[1][1]:.1f}x the default collectors' cost")


if __name__ == "__main__":
    main()
