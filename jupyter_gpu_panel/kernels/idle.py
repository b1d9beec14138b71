"""Idle notebooks that sit on GPU memory: pure judgement, so it is tested without a kernel.

A kernel is an *idle holder* when its execution state has been idle for ``idle_after`` seconds
while its processes hold GPU memory. The usual cause is torch's caching allocator keeping what a
finished cell used: the probe's last reading (its last step, or the end of its last cell: a kernel
that loaded the probe and ran no loop has those) tells how much of it is cache (reserved - allocated),
which ``torch.cuda.empty_cache()`` gives back without losing a variable.
"""

from __future__ import annotations

from typing import Any, Optional

from ..memory.wording import human_bytes, human_seconds


def idle_view(
    execution_state: Optional[str],
    last_activity: Optional[float],
    holding: int,
    reading: Optional[dict[str, Any]],
    *,
    now: float,
    idle_after: float,
) -> dict[str, Any]:
    """``{"seconds", "holder", "cached", "message"}`` for one kernel's row."""
    seconds = max(0.0, now - last_activity) if execution_state == "idle" and last_activity else None
    cached = None
    if reading and reading.get("reserved") is not None:
        cached = max(0, int(reading["reserved"]) - int(reading.get("allocated") or 0))
    holder = False
    message = None
    if seconds is not None and seconds >= idle_after and holding > 0:
        holder = True
        message = f"Idle {human_seconds(seconds)}, holding {human_bytes(holding)}"
        if cached:
            message += f"; {human_bytes(min(cached, holding))} of it is torch's cache (Release cached memory frees it)"
        message += "."
    return {"seconds": seconds, "holder": holder, "cached": cached, "message": message}


def to_cull(kernels: list[dict[str, Any]], cull_after: float) -> list[str]:
    """Kernels to shut down: idle holders idle for ``cull_after`` s (0: never). A busy kernel never."""
    if cull_after <= 0:
        return []
    return [
        k["kernel_id"]
        for k in kernels
        if k["execution_state"] == "idle" and k["idle"]["holder"] and (k["idle"]["seconds"] or 0) >= cull_after
    ]
