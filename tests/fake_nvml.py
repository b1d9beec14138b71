"""A fake ``pynvml`` at the NVML boundary, replaying a real H100's answers.

Its numbers are those of the H100 in tests/data/traces (``h100-probe.json`` and
``h100-nvidia-smi-q.xml``); its errors are nvidia-ml-py's own exception classes, so
the code under test cannot tell it from the library except by what a test switches
on: fields the card does not support (fan and NVLink are NotSupported on that H100),
a GPU that falls off the bus mid-run, a call that blocks for seconds, the library
missing, the driver not loaded.
"""

from __future__ import annotations

import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import pynvml as real

TRACES = Path(__file__).resolve().parent / "data" / "traces"

MiB = 1024 * 1024


def _mib(text: str) -> int:
    return int(re.match(r"(\d+)", text).group(1)) * MiB  # type: ignore[union-attr]


def h100_facts() -> dict[str, Any]:
    """The numbers a real NVML returned on the recorded H100."""
    probe = json.loads((TRACES / "h100-probe.json").read_text())
    gpu = ET.parse(TRACES / "h100-nvidia-smi-q.xml").getroot().find("gpu")
    assert gpu is not None
    fb = gpu.find("fb_memory_usage")
    assert fb is not None
    sample = probe["sample"]

    def text(path: str) -> str:
        node = gpu.find(path)
        assert node is not None and node.text is not None, path
        return node.text

    return {
        "name": sample["name"],
        "uuid": sample["uuid"],
        "pci_bus_id": text("pci/pci_bus_id"),
        "driver": probe["driver"],
        "nvml_version": probe["nvml_version"],
        "cuda_driver_version": probe["cuda_driver_version"],
        "mem_total": _mib(text("fb_memory_usage/total")),
        "mem_reserved": _mib(text("fb_memory_usage/reserved")),
        "mem_used": _mib(text("fb_memory_usage/used")),
        "mem_free": _mib(text("fb_memory_usage/free")),
        "temp_c": sample["temperature"],
        "power_mw": sample["power_usage"],
        "power_limit_mw": sample["power_limit"],
        "clock_sm": sample["clock_sm"],
        "clock_mem": sample["clock_mem"],
        "clock_sm_max": int(text("max_clocks/sm_clock").split()[0]),
        "clock_mem_max": int(text("max_clocks/mem_clock").split()[0]),
        "pstate": sample["pstate"],
        "throttle": sample["throttle"],
        "pcie_tx": sample["pcie_tx"],
        "pcie_gen": int(text("pci/pci_gpu_link_info/pcie_gen/current_link_gen")),
        "pcie_width": int(text("pci/pci_gpu_link_info/link_widths/current_link_width").rstrip("x")),
        "energy": sample["energy"],
        "ecc": sample["ecc_volatile"],
    }


def _err(code: int) -> real.NVMLError:
    return real.NVMLError(code)  # nvidia-ml-py maps the code to its subclass


class FakeNVML:
    """Quacks like the ``pynvml`` module for the calls the nvml source makes."""

    def __init__(self, gpus: int = 1, init_error: Optional[int] = None) -> None:
        self.facts = h100_facts()
        self.gpus = gpus
        self.init_error = init_error
        self.not_supported: set[str] = {"nvmlDeviceGetFanSpeed", "nvmlDeviceGetNvLinkState"}
        self.lost: set[int] = set()  # indices that raise GpuIsLost from now on
        self.block: dict[int, float] = {}  # index -> seconds each fast call blocks
        self.processes: dict[int, list[tuple[int, int]]] = {}  # index -> [(pid, used)]
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        # constants and error classes are the real library's
        for name in dir(real):
            if name.startswith(("NVML_", "NVMLError", "nvmlMemory_v", "nvmlClocks")):
                setattr(self, name, getattr(real, name))

    # -- plumbing -----------------------------------------------------------------------
    def _call(self, name: str, handle: Optional[int] = None) -> None:
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1
        if handle is not None:
            if handle in self.lost:
                raise _err(real.NVML_ERROR_GPU_IS_LOST)
            if handle in self.block and name == "nvmlDeviceGetUtilizationRates":
                time.sleep(self.block[handle])
        if name in self.not_supported:
            raise _err(real.NVML_ERROR_NOT_SUPPORTED)

    def count(self, name: str) -> int:
        with self._lock:
            return self.calls.get(name, 0)

    # -- system ------------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        self._call("nvmlInit")
        if self.init_error is not None:
            raise _err(self.init_error)

    def nvmlShutdown(self) -> None:
        self._call("nvmlShutdown")

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.facts["driver"]

    def nvmlSystemGetNVMLVersion(self) -> str:
        return self.facts["nvml_version"]

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.facts["cuda_driver_version"]

    def nvmlDeviceGetCount(self) -> int:
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if not 0 <= index < self.gpus:
            raise _err(real.NVML_ERROR_INVALID_ARGUMENT)
        return index

    # -- static ----------------------------------------------------------------------------------
    def nvmlDeviceGetName(self, h: int) -> str:
        self._call("nvmlDeviceGetName", h)
        return self.facts["name"]

    def nvmlDeviceGetUUID(self, h: int) -> str:
        self._call("nvmlDeviceGetUUID", h)
        return self.facts["uuid"][:-1] + str(h)  # distinct per fake GPU

    def nvmlDeviceGetPciInfo(self, h: int) -> SimpleNamespace:
        self._call("nvmlDeviceGetPciInfo", h)
        return SimpleNamespace(busId=self.facts["pci_bus_id"])

    def nvmlDeviceGetMaxClockInfo(self, h: int, clock: int) -> int:
        self._call("nvmlDeviceGetMaxClockInfo", h)
        return self.facts["clock_sm_max"] if clock == real.NVML_CLOCK_SM else self.facts["clock_mem_max"]

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h: int) -> int:
        return self.facts["pcie_gen"]

    def nvmlDeviceGetMaxPcieLinkWidth(self, h: int) -> int:
        return self.facts["pcie_width"]

    def nvmlDeviceGetMigMode(self, h: int) -> list[int]:
        return [0, 0]

    def nvmlDeviceGetCudaComputeCapability(self, h: int) -> tuple[int, int]:
        return (9, 0)

    # -- fast ----------------------------------------------------------------------------------------
    def nvmlDeviceGetMemoryInfo(self, h: int, version: Optional[int] = None) -> SimpleNamespace:
        self._call("nvmlDeviceGetMemoryInfo", h)
        f = self.facts
        used = f["mem_used"] + sum(u for _, u in self.processes.get(h, []))
        if version is None:  # v1: the driver's reservation counts as used, as on real NVML
            return SimpleNamespace(
                total=f["mem_total"], used=used + f["mem_reserved"], free=f["mem_total"] - used - f["mem_reserved"]
            )
        return SimpleNamespace(
            total=f["mem_total"], used=used, free=f["mem_total"] - used - f["mem_reserved"], reserved=f["mem_reserved"]
        )

    def nvmlDeviceGetUtilizationRates(self, h: int) -> SimpleNamespace:
        self._call("nvmlDeviceGetUtilizationRates", h)
        return SimpleNamespace(gpu=0, memory=0)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        self._call("nvmlDeviceGetTemperature", h)
        return self.facts["temp_c"]

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        self._call("nvmlDeviceGetPowerUsage", h)
        return self.facts["power_mw"]

    def nvmlDeviceGetEnforcedPowerLimit(self, h: int) -> int:
        self._call("nvmlDeviceGetEnforcedPowerLimit", h)
        return self.facts["power_limit_mw"]

    def nvmlDeviceGetClockInfo(self, h: int, clock: int) -> int:
        self._call("nvmlDeviceGetClockInfo", h)
        return self.facts["clock_sm"] if clock == real.NVML_CLOCK_SM else self.facts["clock_mem"]

    def nvmlDeviceGetPerformanceState(self, h: int) -> int:
        self._call("nvmlDeviceGetPerformanceState", h)
        return self.facts["pstate"]

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: int) -> int:
        self._call("nvmlDeviceGetCurrentClocksEventReasons", h)
        return self.facts["throttle"]

    def nvmlDeviceGetFanSpeed(self, h: int) -> int:
        self._call("nvmlDeviceGetFanSpeed", h)
        return 0

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[SimpleNamespace]:
        self._call("nvmlDeviceGetComputeRunningProcesses", h)
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in self.processes.get(h, [])]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: int) -> list[SimpleNamespace]:
        self._call("nvmlDeviceGetGraphicsRunningProcesses", h)
        return []

    # -- slow ------------------------------------------------------------------------------------------
    def nvmlDeviceGetPcieThroughput(self, h: int, counter: int) -> int:
        self._call("nvmlDeviceGetPcieThroughput", h)
        return self.facts["pcie_tx"]

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: int) -> int:
        return self.facts["pcie_gen"]

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: int) -> int:
        return self.facts["pcie_width"]

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:
        self._call("nvmlDeviceGetTotalEnergyConsumption", h)
        return self.facts["energy"]

    def nvmlDeviceGetTotalEccErrors(self, h: int, kind: int, counter: int) -> int:
        self._call("nvmlDeviceGetTotalEccErrors", h)
        return self.facts["ecc"]

    def nvmlDeviceGetNvLinkState(self, h: int, link: int) -> int:
        self._call("nvmlDeviceGetNvLinkState", h)
        return 1
