"""*Release cached memory* in a kernel: ``protocol.RELEASE_CODE`` runs ``release_cached`` there."""

from __future__ import annotations

import gc
import json
import sys
from typing import Any

from .protocol import RELEASED_PREFIX


def release_cached() -> None:
    """``torch.cuda.empty_cache()`` in this process, and what it gave back (the panel's *Release
    cached memory* on an idle kernel). Variables stay; only the allocator's unused blocks go.
    Prints one line the server reads (``protocol.RELEASED_PREFIX`` + JSON) and returns None, so
    IPython's display hook leaves the user's ``_`` and ``Out`` alone."""
    torch = sys.modules.get("torch")  # never import torch here: a kernel that did not, holds none
    report: dict[str, Any] = {"torch": torch is not None, "cuda": False, "reserved_before": 0, "reserved_after": 0}
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        devices = range(torch.cuda.device_count())
        report["cuda"] = True
        report["reserved_before"] = int(sum(torch.cuda.memory_reserved(d) for d in devices))
        report["allocated"] = int(sum(torch.cuda.memory_allocated(d) for d in devices))
        gc.collect()  # tensors only a reference cycle still holds go back to the cache first
        torch.cuda.empty_cache()
        report["reserved_after"] = int(sum(torch.cuda.memory_reserved(d) for d in devices))
        report["allocated_after"] = int(sum(torch.cuda.memory_allocated(d) for d in devices))
    print(RELEASED_PREFIX + json.dumps(report))
