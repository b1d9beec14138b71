"""The one interface every metrics source implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from ..readings import STATE_OK, VENDOR_NVIDIA, DeviceInfo, GPUReading


@dataclass
class SourceStatus:
    """What a source found when it opened: the API reports it and the UI shows it."""

    source: str
    state: str = STATE_OK
    message: Optional[str] = None
    driver_version: Optional[str] = None
    cuda_driver_version: Optional[str] = None  # the CUDA version the driver supports (NVIDIA's)
    library_version: Optional[str] = None  # the vendor's management library (NVIDIA: NVML)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state == STATE_OK


def version_fields(status: SourceStatus, vendor: str) -> dict[str, Optional[str]]:
    """The versions as the REST contract (``Status``) and a recording's sidecar name them.

    Those names predate other vendors: ``nvml_version`` is NVML's, so another vendor's
    library version is not reported under it (null).
    """
    return {
        "driver_version": status.driver_version,
        "cuda_driver_version": status.cuda_driver_version,
        "nvml_version": status.library_version if vendor == VENDOR_NVIDIA else None,
    }


class Source(Protocol):
    """A source of GPU readings.

    ``read_fast`` and ``read_slow`` may block (NVML calls do) and are only called
    from the sampler's worker threads, never from the tornado event loop.
    """

    name: str
    #: Who made the GPUs it reads (``readings.VENDOR_*``).
    vendor: str
    #: True when reading pids belong to this host, so psutil may describe them.
    local_pids: bool

    def open(self) -> SourceStatus: ...

    def devices(self) -> list[DeviceInfo]: ...

    def read_fast(self, index: int) -> GPUReading: ...

    def read_slow(self, index: int) -> dict[str, Any]: ...

    def close(self) -> None: ...

    def is_lost_error(self, err: BaseException) -> bool:
        """True when ``err`` means the device fell off the bus and will not come back."""
        ...
