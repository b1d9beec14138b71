"""Replays a recorded ``*.nvml.jsonl`` trace in real time, looping.

The format is ``trace_format``'s (the one ``jupyter-gpu-panel record`` writes and the
project's recorded H100 traces use).
Static facts (name, uuid, limits) come from a ``<trace>.device.json`` sidecar when
one exists; otherwise they are unknown (``null``), never invented.
"""

from __future__ import annotations

import bisect
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

from ..readings import STATE_ERROR, STATE_OK, VENDOR_NVIDIA, DeviceInfo, GPUReading, ProcessReading
from ..trace_format import READING_FIELDS, load_trace, sidecar_path
from .base import SourceStatus

#: The real H100 recording shipped in the package for the demo and binder.
DEMO_TRACE = "h100_two_procs.nvml.jsonl"


def demo_trace_path() -> Path:
    return Path(str(resources.files("jupyter_gpu_panel") / "data" / DEMO_TRACE))


class ReplaySource:
    """Plays a trace as if it were live: sample k is shown at ``start + (t_k - t_0)``."""

    name = "replay"
    vendor = VENDOR_NVIDIA  # the recording's, once open() read its sidecar (older ones say none: NVML's)
    local_pids = False  # recorded pids belong to another machine

    def __init__(self, path: Optional[Union[str, Path]] = None, clock: Any = time.time) -> None:
        self.path = Path(path) if path else demo_trace_path()
        self._clock = clock
        self._samples: dict[int, list[dict[str, Any]]] = {}
        self._offsets: dict[int, list[float]] = {}
        self._duration = 0.0
        self._start = 0.0
        self._static: list[dict[str, Any]] = []
        self.status = SourceStatus(source=self.name)

    def open(self) -> SourceStatus:
        try:
            self._samples = load_trace(self.path)
        except OSError as err:
            self.status = SourceStatus(self.name, STATE_ERROR, f"Cannot read the replay trace: {err}")
            return self.status
        if not self._samples:
            self.status = SourceStatus(self.name, STATE_ERROR, f"The replay trace {self.path.name} holds no samples.")
            return self.status
        t0 = min(s[0]["t"] for s in self._samples.values())
        t1 = max(s[-1]["t"] for s in self._samples.values())
        for gpu, samples in self._samples.items():
            self._offsets[gpu] = [s["t"] - t0 for s in samples]
        # one sample period past the last one, so the loop does not show two samples at once
        periods = [o[1] - o[0] for o in self._offsets.values() if len(o) > 1]
        self._duration = (t1 - t0) + (min(periods) if periods else 1.0)
        self._start = self._clock()
        static = self._load_sidecar()
        self.vendor = str(static.get("vendor") or VENDOR_NVIDIA)
        self.status = SourceStatus(
            source=self.name,
            state=STATE_OK,
            message=f"Replaying recorded data from {self.path.name} (not a live GPU).",
            driver_version=static.get("driver_version"),
            cuda_driver_version=static.get("cuda_driver_version"),
            library_version=static.get("nvml_version"),  # the sidecar keeps the REST contract's names
            extra={"replay_file": self.path.name, "replay_seconds": round(self._duration, 3)},
        )
        return self.status

    def _load_sidecar(self) -> dict[str, Any]:
        side = sidecar_path(self.path)
        if not side.exists():
            self._static = []
            return {}
        data = json.loads(side.read_text(encoding="utf-8"))
        devices = data.get("devices") or [data]
        self._static = devices
        return data

    def _static_for(self, index: int) -> dict[str, Any]:
        for dev in self._static:
            if int(dev.get("index", 0)) == index:
                return dev
        return {}

    def devices(self) -> list[DeviceInfo]:
        out = []
        for index in sorted(self._samples):
            static = self._static_for(index)
            out.append(
                DeviceInfo(
                    index=index,
                    name=static.get("name"),
                    uuid=static.get("uuid"),
                    pci_bus_id=static.get("pci_bus_id"),
                    memory_total=self._samples[index][0].get("mem_total"),
                    power_limit_mw=static.get("power_limit_mw"),
                    clock_sm_max=static.get("clock_sm_max"),
                    clock_mem_max=static.get("clock_mem_max"),
                )
            )
        return out

    def sample_at(self, index: int, now: float) -> dict[str, Any]:
        """The recorded sample that is "live" at wall-clock ``now``."""
        offsets = self._offsets[index]
        pos = (now - self._start) % self._duration
        k = max(0, bisect.bisect_right(offsets, pos) - 1)
        return self._samples[index][k]

    def read_fast(self, index: int) -> GPUReading:
        now = self._clock()
        rec = self.sample_at(index, now)
        static = self._static_for(index)
        reading = GPUReading(index=index, t=now)
        for name in READING_FIELDS:
            setattr(reading, name, rec.get(name))
        if reading.mem_total is not None and reading.mem_used is not None:
            reading.mem_free = reading.mem_total - reading.mem_used
        reading.power_limit_mw = static.get("power_limit_mw")
        reading.processes = [
            ProcessReading(pid=int(p["pid"]), gpu=index, used=p.get("used"), name="recorded process")
            for p in rec.get("procs") or []
        ]
        return reading

    def read_slow(self, index: int) -> dict[str, Any]:
        rec = self.sample_at(index, self._clock())
        return {k: rec[k] for k in ("pcie_tx_kbps", "pcie_rx_kbps", "pcie_gen", "pcie_width") if k in rec}

    def close(self) -> None:
        pass

    def is_lost_error(self, err: BaseException) -> bool:
        return False
