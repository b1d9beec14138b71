"""Which GPU(s) a starting kernel gets: pure logic, no server, no NVML.

``choose`` takes what the sampler last read of each GPU (``Candidate``), the policy and how
many GPUs a kernel gets, and answers with a ``Choice``: the GPUs (empty: placement falls
back to ``off``, the kernel sees every GPU) and a reason a person can read. ``Reservations``
remembers the choices of kernels still starting, so that kernels started at the same moment
do not all pick the GPU that looked freest before any of them allocated anything.

The wiring (reading the sampler, the kernels' pids, writing the kernel's environment) is in
``kernels.placer``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

POLICIES: tuple[str, ...] = ("off", "most-free-memory", "least-utilized", "spread")
#: Seconds a choice stays reserved when the kernel's process never shows on its GPU (a kernel
#: that does not use the GPU at all, or one that takes long to import torch).
RESERVATION_SECONDS = 60.0
#: Throttle reasons (as ``metrics.sources.nvml`` words them) that mean the GPU is too hot.
THERMAL_WORDS = ("software thermal slowdown", "hardware thermal slowdown")


@dataclass(frozen=True)
class Candidate:
    """One GPU as the sampler last read it, plus what placement itself knows about it."""

    index: int
    state: str = "ok"  # readings.GPU_OK | lost | unresponsive | error
    mem_free: Optional[int] = None
    mem_total: Optional[int] = None
    util_avg: Optional[float] = None  # percent, mean over the last minute of history
    holders: int = 0  # distinct kernels and other processes holding memory on it
    ecc_errors: Optional[int] = None  # volatile uncorrected ECC errors
    throttle_reasons: tuple[str, ...] = ()
    reserved: int = 0  # starting kernels that chose it and have not shown on it yet


@dataclass
class Choice:
    gpus: list[int] = field(default_factory=list)
    reason: str = ""

    @property
    def placed(self) -> bool:
        return bool(self.gpus)


def problem(gpu: Candidate) -> Optional[str]:
    """Why a kernel should not be put on this GPU; None when it is fit."""
    if gpu.state != "ok":
        return {
            "lost": "lost (fell off the bus)",
            "unresponsive": "unresponsive (NVML calls hang)",
        }.get(gpu.state, f"in state {gpu.state!r}")
    if gpu.ecc_errors:
        return f"{gpu.ecc_errors} uncorrected ECC error(s) since the driver loaded"
    hot = [w for w in gpu.throttle_reasons if w in THERMAL_WORDS]
    if hot:
        return f"throttled by temperature ({', '.join(hot)})"
    return None


def _sort_key(policy: str, gpu: Candidate) -> tuple[float, ...]:
    free = float(gpu.mem_free or 0)
    if policy == "least-utilized":
        return (gpu.reserved, gpu.util_avg if gpu.util_avg is not None else 0.0, -free, gpu.index)
    if policy == "spread":
        return (gpu.holders + gpu.reserved, -free, gpu.index)
    # most-free-memory: a GPU that a starting kernel reserved counts as taken until that kernel
    # shows on it, whatever its free memory now (the kernel has not allocated anything yet)
    return (gpu.reserved, -free, gpu.index)


def choose(candidates: Sequence[Candidate], policy: str, count: int = 1) -> Choice:
    """The ``count`` best GPUs under ``policy``; none (fall back to off) with the reason why."""
    if policy not in POLICIES:
        raise ValueError(f"unknown placement policy {policy!r}; choose from {', '.join(POLICIES)}")
    if policy == "off":
        return Choice([], "placement is off: the kernel sees every GPU")
    if not candidates:
        return Choice([], "no GPU readings yet: the kernel sees every GPU")
    if count > len(candidates):
        return Choice([], f"{count} GPUs per kernel asked, this node has {len(candidates)}: the kernel sees every GPU")
    fit = [g for g in candidates if problem(g) is None]
    avoided = [f"GPU {g.index} {problem(g)}" for g in candidates if problem(g) is not None]
    if len(fit) < count:
        why = "; ".join(avoided)
        return Choice([], f"{len(fit)} fit GPU(s) for {count} per kernel ({why}): the kernel sees every GPU")
    ranked = sorted(fit, key=lambda g: _sort_key(policy, g))
    chosen = ranked[:count]
    reason = f"{policy}: " + ", ".join(_describe(policy, g) for g in chosen)
    if avoided:
        reason += f" (avoided: {'; '.join(avoided)})"
    return Choice(sorted(g.index for g in chosen), reason)


def _describe(policy: str, gpu: Candidate) -> str:
    gib = (gpu.mem_free or 0) / 2**30
    parts = [f"GPU {gpu.index}", f"{gib:.1f} GiB free"]
    if policy == "least-utilized":
        busy = "utilization unknown" if gpu.util_avg is None else f"{gpu.util_avg:.0f}% busy over the last minute"
        parts.append(busy)
    if policy == "spread":
        parts.append(f"{gpu.holders} holder(s)")
    if gpu.reserved:
        parts.append(f"{gpu.reserved} kernel(s) still starting there")
    return " ".join(parts[:1]) + " (" + ", ".join(parts[1:]) + ")"


def check_request(gpus: object, states: Mapping[int, str]) -> list[int]:
    """A person's explicit choice (``{"gpus": [..]}``) checked against the node's GPUs
    (index -> state); ValueError naming the problem. Unlike ``choose``, only a GPU that cannot
    run anything (lost) is refused: a hot or ECC-marked GPU is the person's call."""
    if not isinstance(gpus, list) or not gpus:
        raise ValueError("gpus must be a non-empty list of GPU indices")
    out: list[int] = []
    for i, value in enumerate(gpus):
        # bool is an int in Python; 2.0 is not an index either
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"gpus[{i}] must be an integer GPU index, got {str(value)[:40]!r}")
        out.append(value)
    if len(out) > len(states):
        raise ValueError(f"{len(out)} GPUs asked for, this node has {len(states)}")
    if len(set(out)) != len(out):
        raise ValueError("gpus lists a GPU twice")
    for index in out:
        if index not in states:
            have = ", ".join(str(k) for k in sorted(states)) or "none"
            raise ValueError(f"GPU {index} does not exist on this node (GPUs: {have})")
        if states[index] == "lost":
            raise ValueError(f"GPU {index} is lost (fell off the bus)")
    return sorted(out)


def visible_devices(gpus: Iterable[int]) -> str:
    """``CUDA_VISIBLE_DEVICES`` for NVML indices (NVML numbers GPUs in PCI bus order, hence the
    ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` that goes with it)."""
    return ",".join(str(i) for i in gpus)


@dataclass
class Reservation:
    gpus: list[int]
    since: float
    pid: Optional[int] = None  # the kernel's process, once launched


class Reservations:
    """Choices of kernels still starting. Dropped when the kernel's process shows on a chosen
    GPU (its own memory now counts) or after ``ttl`` seconds. Used on the event loop only."""

    def __init__(self, ttl: float = RESERVATION_SECONDS) -> None:
        self.ttl = ttl
        self.held: dict[str, Reservation] = {}

    def reserve(self, kernel_id: str, gpus: Sequence[int], now: float) -> None:
        self.held[kernel_id] = Reservation(list(gpus), now)

    def launched(self, kernel_id: str, pid: Optional[int]) -> None:
        if kernel_id in self.held:
            self.held[kernel_id].pid = pid

    def release(self, kernel_id: str) -> None:
        self.held.pop(kernel_id, None)

    def settle(self, on_gpu: Mapping[int, set[int]], kernel_pids: Mapping[str, set[int]], now: float) -> None:
        """Drop expired reservations and those whose kernel shows on a GPU it reserved.
        ``on_gpu``: GPU index -> pids NVML lists there; ``kernel_pids``: kernel id -> its pids
        (the kernel process and the children it started)."""
        for kid, r in list(self.held.items()):
            pids = set(kernel_pids.get(kid, ()))
            if r.pid is not None:
                pids.add(r.pid)
            if now - r.since >= self.ttl or any(pids & on_gpu.get(g, set()) for g in r.gpus):
                del self.held[kid]

    def counts(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for r in self.held.values():
            for g in r.gpus:
                out[g] = out.get(g, 0) + 1
        return out
