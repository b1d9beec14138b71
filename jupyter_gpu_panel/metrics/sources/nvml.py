"""Real readings from NVML through nvidia-ml-py (``import pynvml``).

Every per-field call is wrapped so that a field the card does not support becomes
``None``; only "the GPU is gone" errors escape, so the sampler can mark that GPU.
"""

from __future__ import annotations

import os
import time
from types import ModuleType
from typing import Any, Callable, Optional, TypeVar

from ..readings import (
    GPU_OK,
    STATE_DRIVER_NOT_LOADED,
    STATE_ERROR,
    STATE_LIBRARY_MISSING,
    STATE_NO_DEVICES,
    STATE_OK,
    VENDOR_NVIDIA,
    DeviceInfo,
    GPUReading,
    ProcessReading,
)
from .base import SourceStatus

T = TypeVar("T")

#: Clock event ("throttle") reason bits, from nvml.h, in words a user understands.
THROTTLE_REASONS: tuple[tuple[int, str], ...] = (
    (0x001, "idle"),
    (0x002, "applications clock setting"),
    (0x004, "software power cap"),
    (0x008, "hardware slowdown"),
    (0x010, "sync boost"),
    (0x020, "software thermal slowdown"),
    (0x040, "hardware thermal slowdown"),
    (0x080, "power brake"),
    (0x100, "display clock setting"),
)


def decode_throttle_reasons(mask: Optional[int]) -> Optional[list[str]]:
    """Turn NVML's clock-event bit mask into words; ``[]`` means running unthrottled."""
    if mask is None:
        return None
    words = [word for bit, word in THROTTLE_REASONS if mask & bit]
    known = sum(bit for bit, _ in THROTTLE_REASONS)
    if mask & ~known:
        words.append(f"other (0x{mask & ~known:x})")
    return words


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def visible_device_filter(env: Optional[str]) -> Optional[list[str]]:
    """Parse ``CUDA_VISIBLE_DEVICES`` into index/UUID tokens; ``None`` means "all"."""
    if env is None:
        return None
    return [tok.strip() for tok in env.split(",") if tok.strip()]


class NvmlSource:
    """Reads every visible NVIDIA GPU through NVML."""

    name = "nvml"
    vendor = VENDOR_NVIDIA
    local_pids = True

    def __init__(self, visible_only: bool = False, nvml: Optional[ModuleType] = None) -> None:
        self._nvml_module = nvml
        self.visible_only = visible_only
        self.nvml: Any = None
        self._handles: list[Any] = []
        self._indices: list[int] = []
        self._devices: list[DeviceInfo] = []
        self._unsupported: set[tuple[str, str]] = set()
        self.status = SourceStatus(source=self.name)

    # -- lifecycle -------------------------------------------------------------
    def open(self) -> SourceStatus:
        # Any: pynvml ships no types, so its calls are untyped whether injected (tests) or imported
        nvml: Any = self._nvml_module
        try:
            if nvml is None:
                import pynvml

                nvml = pynvml
        except ImportError:
            self.status = SourceStatus(
                self.name, STATE_LIBRARY_MISSING, "The nvidia-ml-py package (module pynvml) is not installed."
            )
            return self.status
        self.nvml = nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as err:
            self.status = self._init_error(err)
            return self.status
        try:
            count = nvml.nvmlDeviceGetCount()
            handles = [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        except nvml.NVMLError as err:
            self.status = SourceStatus(self.name, STATE_ERROR, f"NVML could not list devices: {err}")
            return self.status
        handles = self._filter_visible(handles)
        self._indices = [i for i, _ in handles]
        self._handles = [h for _, h in handles]
        self._devices = [self._device_info(i, h) for i, h in handles]
        cuda = self._field(nvml.nvmlSystemGetCudaDriverVersion)
        self.status = SourceStatus(
            source=self.name,
            state=STATE_OK if handles else STATE_NO_DEVICES,
            message=None if handles else "NVML is loaded but found no NVIDIA GPU.",
            driver_version=_text(self._field(nvml.nvmlSystemGetDriverVersion)),
            cuda_driver_version=f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else None,
            library_version=_text(self._field(nvml.nvmlSystemGetNVMLVersion)),
        )
        return self.status

    def _init_error(self, err: Exception) -> SourceStatus:
        nvml = self.nvml
        value = getattr(err, "value", None)
        if value == nvml.NVML_ERROR_LIBRARY_NOT_FOUND:
            return SourceStatus(
                self.name,
                STATE_LIBRARY_MISSING,
                "The NVIDIA driver library (libnvidia-ml.so) was not found: no NVIDIA driver is installed here.",
            )
        if value == nvml.NVML_ERROR_DRIVER_NOT_LOADED:
            return SourceStatus(
                self.name,
                STATE_DRIVER_NOT_LOADED,
                "The NVIDIA driver is installed but not loaded (is the kernel module running?).",
            )
        return SourceStatus(self.name, STATE_ERROR, f"NVML failed to initialise: {err}")

    def _filter_visible(self, handles: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
        tokens = visible_device_filter(os.environ.get("CUDA_VISIBLE_DEVICES")) if self.visible_only else None
        if tokens is None:
            return handles
        kept = []
        for index, handle in handles:
            uuid = _text(self._field(self.nvml.nvmlDeviceGetUUID, handle)) or ""
            if any(tok == str(index) or (tok.startswith("GPU-") and uuid.startswith(tok)) for tok in tokens):
                kept.append((index, handle))
        return kept

    def close(self) -> None:
        if self.nvml is not None and self.status.state in (STATE_OK, STATE_NO_DEVICES):
            try:
                self.nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001 - shutting down; nothing to report to
                pass

    # -- helpers ----------------------------------------------------------------
    def _field(self, fn: Callable[..., T], *args: Any) -> Optional[T]:
        """Call one NVML query; unsupported or failing fields read as ``None``.

        ``GpuIsLost`` and ``Unknown`` propagate: they mean the device itself is gone.
        """
        key = (getattr(fn, "__name__", ""), repr(args))
        if key in self._unsupported:
            return None
        nvml = self.nvml
        try:
            return fn(*args)
        except nvml.NVMLError as err:
            value = getattr(err, "value", None)
            if value == nvml.NVML_ERROR_GPU_IS_LOST:
                raise
            if value == nvml.NVML_ERROR_NOT_SUPPORTED:
                # a card does not gain a feature at run time: stop paying for the exception
                self._unsupported.add(key)
            return None

    def _handle(self, index: int) -> Any:
        return self._handles[self._indices.index(index)]

    def _device_info(self, index: int, handle: Any) -> DeviceInfo:
        nvml, f = self.nvml, self._field
        mem = f(nvml.nvmlDeviceGetMemoryInfo, handle)
        pci = f(nvml.nvmlDeviceGetPciInfo, handle)
        mig = f(nvml.nvmlDeviceGetMigMode, handle)
        cc = f(nvml.nvmlDeviceGetCudaComputeCapability, handle)
        return DeviceInfo(
            index=index,
            name=_text(f(nvml.nvmlDeviceGetName, handle)),
            uuid=_text(f(nvml.nvmlDeviceGetUUID, handle)),
            pci_bus_id=_text(getattr(pci, "busId", None)),
            memory_total=getattr(mem, "total", None),
            power_limit_mw=f(nvml.nvmlDeviceGetEnforcedPowerLimit, handle),
            clock_sm_max=f(nvml.nvmlDeviceGetMaxClockInfo, handle, nvml.NVML_CLOCK_SM),
            clock_mem_max=f(nvml.nvmlDeviceGetMaxClockInfo, handle, nvml.NVML_CLOCK_MEM),
            pcie_gen_max=f(nvml.nvmlDeviceGetMaxPcieLinkGeneration, handle),
            pcie_width_max=f(nvml.nvmlDeviceGetMaxPcieLinkWidth, handle),
            mig_mode=bool(mig[0]) if mig else None,
            compute_capability=f"{cc[0]}.{cc[1]}" if cc else None,
        )

    # -- Source interface -----------------------------------------------------------
    def devices(self) -> list[DeviceInfo]:
        return list(self._devices)

    def read_fast(self, index: int) -> GPUReading:
        nvml, f = self.nvml, self._field
        h = self._handle(index)
        now = time.time()
        # v2 splits the driver's reservation out of "used", as nvidia-smi reports it; v1 is the
        # fallback for older drivers, where used = total - free includes the reservation
        mem = f(nvml.nvmlDeviceGetMemoryInfo, h, nvml.nvmlMemory_v2) or f(nvml.nvmlDeviceGetMemoryInfo, h)
        util = f(nvml.nvmlDeviceGetUtilizationRates, h)
        reasons_fn = (
            getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
            or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        )
        reading = GPUReading(
            index=index,
            t=now,
            state=GPU_OK,
            util_gpu=getattr(util, "gpu", None),
            util_mem=getattr(util, "memory", None),
            mem_total=getattr(mem, "total", None),
            mem_used=getattr(mem, "used", None),
            mem_free=getattr(mem, "free", None),
            mem_reserved=getattr(mem, "reserved", None),
            temp_c=f(nvml.nvmlDeviceGetTemperature, h, nvml.NVML_TEMPERATURE_GPU),
            power_mw=f(nvml.nvmlDeviceGetPowerUsage, h),
            power_limit_mw=f(nvml.nvmlDeviceGetEnforcedPowerLimit, h),
            clock_sm=f(nvml.nvmlDeviceGetClockInfo, h, nvml.NVML_CLOCK_SM),
            clock_mem=f(nvml.nvmlDeviceGetClockInfo, h, nvml.NVML_CLOCK_MEM),
            pstate=f(nvml.nvmlDeviceGetPerformanceState, h),
            throttle_reasons=decode_throttle_reasons(f(reasons_fn, h)),
            fan_pct=f(nvml.nvmlDeviceGetFanSpeed, h),
        )
        reading.processes = self._processes(index, h)
        return reading

    def _processes(self, index: int, h: Any) -> list[ProcessReading]:
        nvml, f = self.nvml, self._field
        found: dict[int, ProcessReading] = {}
        for kind, fn in (
            ("compute", nvml.nvmlDeviceGetComputeRunningProcesses),
            ("graphics", nvml.nvmlDeviceGetGraphicsRunningProcesses),
        ):
            for proc in f(fn, h) or []:
                used = getattr(proc, "usedGpuMemory", None)
                # NVML reports "not available" (no permission, or WDDM) as a sentinel.
                if used is not None and used >= (1 << 63):
                    used = None
                if proc.pid in found:
                    found[proc.pid].type = "compute+graphics"
                    continue
                found[proc.pid] = ProcessReading(pid=proc.pid, gpu=index, used=used, type=kind)
        return list(found.values())

    def read_slow(self, index: int) -> dict[str, Any]:
        """The expensive fields: PCIe throughput alone costs ~21 ms a call on an H100."""
        nvml, f = self.nvml, self._field
        h = self._handle(index)
        links = None
        for link in range(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18)):
            state = f(nvml.nvmlDeviceGetNvLinkState, h, link)
            if state is None:  # no such link (or no NVLink at all: remembered by _field)
                break
            links = (links or 0) + int(bool(state))
        return {
            "pcie_tx_kbps": f(nvml.nvmlDeviceGetPcieThroughput, h, nvml.NVML_PCIE_UTIL_TX_BYTES),
            "pcie_rx_kbps": f(nvml.nvmlDeviceGetPcieThroughput, h, nvml.NVML_PCIE_UTIL_RX_BYTES),
            "pcie_gen": f(nvml.nvmlDeviceGetCurrPcieLinkGeneration, h),
            "pcie_width": f(nvml.nvmlDeviceGetCurrPcieLinkWidth, h),
            "energy_mj": f(nvml.nvmlDeviceGetTotalEnergyConsumption, h),
            "ecc_errors_volatile": f(
                nvml.nvmlDeviceGetTotalEccErrors,
                h,
                nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                nvml.NVML_VOLATILE_ECC,
            ),
            "nvlink_active": links,
        }

    def is_lost_error(self, err: BaseException) -> bool:
        nvml = self.nvml
        return (
            nvml is not None
            and isinstance(err, nvml.NVMLError)
            and getattr(err, "value", None) == (nvml.NVML_ERROR_GPU_IS_LOST)
        )
