"""What the growth detector returns, and the array helpers every detector module shares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np


@dataclass
class Growth:
    """What the detector found in one series (positions are step indices or Unix seconds)."""

    leak: bool = False
    actionable: bool = False
    onset: Optional[float] = None  # position of the first reading of the current growth
    rate: float = 0.0  # bytes per position unit (per step, or per second)
    bytes_per_second: Optional[float] = None
    to_oom: Optional[float] = None  # position units (steps, or seconds)
    seconds_to_oom: Optional[float] = None
    level: Optional[float] = None  # bytes counted against the capacity now
    headroom: Optional[float] = None
    capacity: Optional[float] = None
    evidence: int = 0  # readings of the current growth regime
    required: Optional[float] = None  # readings needed at this urgency
    increments: int = 0
    growth: float = 0.0  # bytes the floor rose over the regime
    trend_p: Optional[float] = None
    reason: str = ""


# --------------------------------------------------------------------------- core


def _as_array(values: Iterable[Any]) -> np.ndarray:
    return np.asarray(
        [np.nan if v is None else v for v in values] if not isinstance(values, np.ndarray) else values, dtype=float
    )


def _clean(pos: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(pos) & np.isfinite(x)
    if not ok.all():
        pos, x = pos[ok], x[ok]
    if len(pos) > 1 and np.any(np.diff(pos) < 0):
        order = np.argsort(pos, kind="stable")
        pos, x = pos[order], x[order]
    return pos, x


def thin_indices(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` indices spread evenly over ``range(n)``, both ends kept."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))
