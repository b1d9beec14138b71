"""Reference GPU peaks and the small pure formulas the benchmark notebooks use.

The functions marked "embedded" are copied verbatim into every generated
notebook with ``inspect.getsource`` so a handed-out notebook needs nothing but
torch, while the package keeps one tested definition.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

PEAKS_FILE = Path(__file__).with_name("gpu_peaks.json")


@lru_cache(maxsize=1)
def load_peaks() -> list[dict[str, Any]]:
    """Rows of the shipped reference table (datasheet + measured-achievable, with sources)."""
    with PEAKS_FILE.open(encoding="utf-8") as f:
        return list(json.load(f)["rows"])


# --- embedded in notebooks -------------------------------------------------


def match_gpu(name, total_memory_bytes, rows):
    """Pick the reference row for a card from its torch name and memory size.

    Patterns must appear as whole tokens (so "A10" does not match "A100" and
    "L4" does not match "L40S"); memory bounds separate e.g. A100 40 GB from
    80 GB, which share a name prefix on some drivers. First match wins.
    """
    if not name:
        return None
    mem_gb = (total_memory_bytes or 0) / 1e9
    for row in rows:
        hit = any(
            re.search(r"(?<![A-Za-z0-9])" + re.escape(p) + r"(?![A-Za-z0-9])", name, re.IGNORECASE)
            for p in row["match"]
        )
        if not hit or any(x.lower() in name.lower() for x in row.get("exclude") or []):
            continue
        if row.get("min_mem_gb") is not None and mem_gb < row["min_mem_gb"]:
            continue
        if row.get("max_mem_gb") is not None and mem_gb > row["max_mem_gb"]:
            continue
        return row
    return None


def percent_of(value, reference):
    """value as a percentage of reference, or None when either is unknown."""
    if value is None or not reference:
        return None
    return 100.0 * value / reference


def allreduce_busbw(nbytes, seconds, world_size):
    """nccl-tests bus bandwidth of an all-reduce, in GB/s.

    algbw = bytes / time; busbw = algbw * 2 (n - 1) / n, the traffic each link
    carries in a ring all-reduce, so the figure is comparable with link speed
    whatever the number of GPUs.
    """
    if seconds <= 0 or world_size < 1:
        raise ValueError("seconds must be > 0 and world_size >= 1")
    algbw = nbytes / seconds / 1e9
    return algbw * 2.0 * (world_size - 1) / world_size


def scaling_efficiency(throughput_n, throughput_1, n):
    """Multi-GPU scaling efficiency: throughput(N) / (N x throughput(1)); 1.0 is perfect."""
    if not throughput_1 or n < 1:
        return None
    return throughput_n / (n * throughput_1)


def matmul_tflops(m, n, k, seconds):
    """TFLOP/s of an (m x k) @ (k x n) product: 2 m n k flops (one multiply + one add each)."""
    return 2.0 * m * n * k / seconds / 1e12


def median(values):
    """Median of a non-empty sequence (robust to the odd slow repeat, unlike the mean)."""
    s = sorted(values)
    if not s:
        raise ValueError("median of an empty sequence")
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else 0.5 * (s[mid - 1] + s[mid])


EMBEDDED = (match_gpu, percent_of, allreduce_busbw, scaling_efficiency, matmul_tflops, median)


def reference_for(name: str, total_memory_bytes: Optional[int]) -> Optional[dict[str, Any]]:
    """Typed convenience wrapper over :func:`match_gpu` with the shipped table."""
    return match_gpu(name, total_memory_bytes, load_peaks())
