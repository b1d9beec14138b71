"""*Release cached memory* in a kernel: ``protocol.RELEASE_CODE`` runs ``release_cached`` there."""

from __future__ import annotations

import gc
import json
import sys
from typing import Any

from . import protocol as P


def release_cached() -> None:
    """``torch.cuda.empty_cache()`` in this process, and what it gave back (the panel's *Release
    cached memory* on an idle kernel). Variables stay; only the allocator's unused blocks go.
    Prints one line the server reads (``protocol.RELEASED_PREFIX`` + JSON, ``RELEASE_*`` keys) and returns None, so
    IPython's display hook leaves the user's ``_`` and ``Out`` alone."""
    torch = sys.modules.get("torch")  # never import torch here: a kernel that did not, holds none
    report: dict[str, Any] = {
        P.RELEASE_TORCH: torch is not None,
        P.RELEASE_CUDA: False,
        P.RELEASE_RESERVED_BEFORE: 0,
        P.RELEASE_RESERVED_AFTER: 0,
    }
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        devices = range(torch.cuda.device_count())
        report[P.RELEASE_CUDA] = True
        report[P.RELEASE_RESERVED_BEFORE] = int(sum(torch.cuda.memory_reserved(d) for d in devices))
        report[P.RELEASE_ALLOCATED_BEFORE] = int(sum(torch.cuda.memory_allocated(d) for d in devices))
        gc.collect()  # tensors only a reference cycle still holds go back to the cache first
        torch.cuda.empty_cache()
        report[P.RELEASE_RESERVED_AFTER] = int(sum(torch.cuda.memory_reserved(d) for d in devices))
        report[P.RELEASE_ALLOCATED_AFTER] = int(sum(torch.cuda.memory_allocated(d) for d in devices))
    print(P.RELEASED_PREFIX + json.dumps(report))
