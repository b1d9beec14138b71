"""Near-OOM from fragmentation: the allocator's pool near the limit while much of it is unallocated."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .series import _as_array


def fragmentation_check(
    allocated: Any,
    reserved: Any,
    capacity: Optional[float],
    *,
    retries: Any = None,
    near: float = 0.9,
    slack: float = 0.3,
) -> dict[str, Any]:
    """Near-OOM from fragmentation: the reserve close to the capacity while much less of it
    is allocated, and the allocator retrying (freeing its cache to satisfy a request).

    There, forecasts from ``allocated`` are badly wrong: the next large block fails although
    the sum of free bytes would hold it.
    """
    a = _as_array(allocated)
    r = _as_array(reserved)
    ok = np.isfinite(a) & np.isfinite(r)
    a, r = a[ok], r[ok]
    out: dict[str, Any] = {"fragmented": False, "message": None}
    if not len(r) or not capacity:
        return out
    res, alloc = float(r[-1]), float(a[-1])
    waste = (res - alloc) / res if res > 0 else 0.0
    rising = False
    if retries is not None:
        rr = _as_array(retries)
        rr = rr[np.isfinite(rr)]
        if len(rr) >= 2:
            window = rr[-min(len(rr), 200) :]
            rising = bool(window[-1] > window[0])
    out.update(
        reserved=res,
        allocated=alloc,
        capacity=float(capacity),
        reserved_share=res / float(capacity),
        unallocated_share=waste,
        retries_rising=rising,
    )
    if res >= near * float(capacity) and waste >= slack and (rising or retries is None):
        out["fragmented"] = True
        out["message"] = (
            f"Fragmentation: the allocator holds {res / 2**30:.1f} GiB of {float(capacity) / 2**30:.1f} GiB "
            f"but only {alloc / 2**30:.1f} GiB is allocated"
            + (", and it is retrying allocations" if rising else "")
            + ". An out-of-memory can come long before allocated memory reaches the limit; "
            "set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True before the process starts."
        )
    return out
