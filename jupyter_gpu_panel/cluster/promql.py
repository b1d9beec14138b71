"""The PromQL the cluster view asks: two instant queries, whatever the cluster's size."""

from __future__ import annotations

#: DCGM exporter field -> (our field, scale to base units)
DCGM_FIELDS: dict[str, tuple[str, float]] = {
    "DCGM_FI_DEV_GPU_UTIL": ("util", 0.01),  # percent -> ratio
    "DCGM_FI_DEV_FB_USED": ("mem_used", 2.0**20),  # MiB -> bytes
    "DCGM_FI_DEV_FB_FREE": ("mem_free", 2.0**20),
    "DCGM_FI_DEV_POWER_USAGE": ("power_w", 1.0),
    "DCGM_FI_DEV_GPU_TEMP": ("temp_c", 1.0),
    "DCGM_FI_DEV_SM_CLOCK": ("sm_clock_hz", 1e6),  # MHz -> Hz
}

#: this project's per-GPU series -> our field (already in base units)
OWN_GPU_FIELDS: dict[str, str] = {
    "jupyter_gpu_panel_utilization_ratio": "util",
    "jupyter_gpu_panel_memory_used_bytes": "mem_used",
    "jupyter_gpu_panel_memory_total_bytes": "mem_total",
    "jupyter_gpu_panel_power_watts": "power_w",
    "jupyter_gpu_panel_temperature_celsius": "temp_c",
    "jupyter_gpu_panel_sm_clock_hertz": "sm_clock_hz",
}

KERNEL_MEMORY = "jupyter_gpu_panel_kernel_memory_bytes"
KERNEL_LEAK = {
    "jupyter_gpu_panel_kernel_leak_actionable": "actionable",
    "jupyter_gpu_panel_kernel_seconds_to_oom": "seconds_to_oom",
    "jupyter_gpu_panel_kernel_leak_bytes_per_second": "bytes_per_second",
}
KERNEL_IDLE = "jupyter_gpu_panel_kernel_idle_seconds"

_NAMES = [*DCGM_FIELDS, *OWN_GPU_FIELDS, KERNEL_MEMORY, *KERNEL_LEAK, KERNEL_IDLE]

#: every value the view needs, in one query
VALUES = '{__name__=~"' + "|".join(_NAMES) + '"}'
#: when each GPU was last scraped (timestamp() drops the name; the labels identify the GPU)
SCRAPED = 'timestamp({__name__=~"DCGM_FI_DEV_FB_USED|jupyter_gpu_panel_memory_used_bytes"})'
