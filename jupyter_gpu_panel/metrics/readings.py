"""Typed readings: what a source returns and what the API serialises.

Every field a card may not support is ``None`` (``null`` in JSON), never an error.
Units are in the field names where they are not bytes, percent or MHz. The types are the same
for every vendor's source (``Source.vendor`` says whose GPUs it reads).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

#: Source states the API reports and the UI shows.
STATE_STARTING = "starting"  # the sampler thread has not opened the source yet
STATE_OK = "ok"
#: The vendor's management library (NVIDIA's NVML) is not installed. The value names NVML
#: because the REST contract (openapi.json SourceState) and the front end predate other vendors.
STATE_LIBRARY_MISSING = "nvml-missing"
STATE_DRIVER_NOT_LOADED = "driver-not-loaded"
STATE_NO_DEVICES = "no-devices"
STATE_ERROR = "error"

#: Per-GPU states.
GPU_OK = "ok"
GPU_LOST = "lost"  # fell off the bus (NVML's GpuIsLost)
GPU_UNRESPONSIVE = "unresponsive"  # a call hung past the deadline
GPU_ERROR = "error"

#: ``Source.vendor``: who made the GPUs a source reads.
VENDOR_NVIDIA = "nvidia"


@dataclass
class DeviceInfo:
    """Facts about a GPU that do not change while the server runs."""

    index: int
    name: Optional[str] = None
    uuid: Optional[str] = None
    pci_bus_id: Optional[str] = None
    memory_total: Optional[int] = None
    power_limit_mw: Optional[int] = None
    clock_sm_max: Optional[int] = None
    clock_mem_max: Optional[int] = None
    pcie_gen_max: Optional[int] = None
    pcie_width_max: Optional[int] = None
    mig_mode: Optional[bool] = None
    compute_capability: Optional[str] = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ProcessReading:
    """One process holding memory on one GPU."""

    pid: int
    gpu: int
    used: Optional[int] = None  # bytes; None when the driver hides it (no permission)
    type: str = "compute"  # compute | graphics
    name: Optional[str] = None
    command: Optional[str] = None
    user: Optional[str] = None
    #: Filled by ``kernels``: which Jupyter kernel/notebook owns this pid.
    owner: Optional[dict[str, Any]] = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GPUReading:
    """One GPU at one instant."""

    index: int
    t: float
    state: str = GPU_OK
    error: Optional[str] = None
    # fast fields: every tick
    util_gpu: Optional[int] = None
    util_mem: Optional[int] = None
    mem_total: Optional[int] = None
    mem_used: Optional[int] = None
    mem_free: Optional[int] = None
    mem_reserved: Optional[int] = None
    temp_c: Optional[int] = None
    power_mw: Optional[int] = None
    power_limit_mw: Optional[int] = None
    clock_sm: Optional[int] = None
    clock_mem: Optional[int] = None
    pstate: Optional[int] = None
    throttle_reasons: Optional[list[str]] = None
    fan_pct: Optional[int] = None
    # slow fields: their own cadence (PCIe throughput costs ~21 ms a call)
    pcie_tx_kbps: Optional[int] = None
    pcie_rx_kbps: Optional[int] = None
    pcie_gen: Optional[int] = None
    pcie_width: Optional[int] = None
    energy_mj: Optional[int] = None
    ecc_errors_volatile: Optional[int] = None
    nvlink_active: Optional[int] = None
    processes: list[ProcessReading] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: Numeric per-GPU fields kept in the history ring buffers, in column order.
HISTORY_FIELDS: tuple[str, ...] = (
    "util_gpu",
    "util_mem",
    "mem_used",
    "mem_total",
    "temp_c",
    "power_mw",
    "clock_sm",
    "clock_mem",
    "pcie_tx_kbps",
    "pcie_rx_kbps",
)

FAST_FIELDS: tuple[str, ...] = (
    "util_gpu",
    "util_mem",
    "mem_total",
    "mem_used",
    "mem_free",
    "mem_reserved",
    "temp_c",
    "power_mw",
    "power_limit_mw",
    "clock_sm",
    "clock_mem",
    "pstate",
    "throttle_reasons",
    "fan_pct",
)
SLOW_FIELDS: tuple[str, ...] = (
    "pcie_tx_kbps",
    "pcie_rx_kbps",
    "pcie_gen",
    "pcie_width",
    "energy_mj",
    "ecc_errors_volatile",
    "nvlink_active",
)
