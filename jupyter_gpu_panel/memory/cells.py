"""Per-cell leaks: cells whose every re-run keeps more GPU memory (IPython's output history, stored tracebacks)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from ..probe import protocol as P


def analyze_cells(
    cells: Sequence[Mapping[str, Any]], *, min_runs: int = 3, min_bytes: float = 1 << 20
) -> Optional[dict[str, Any]]:
    """Cells that keep more memory after every run of the same cell.

    Re-running a cell that returns (or displays) a tensor keeps the old one alive through
    IPython's output history (``Out``, ``_``, ``__``); a cell that raises keeps its frames'
    tensors alive through the stored traceback. Records: ``{"cell", "allocated", ...}`` in
    execution order, optionally ``"error": bool``.
    """
    # what each run kept = allocated after it - allocated after the run before it (any cell)
    kept_by: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    prev: Optional[float] = None
    for rec in cells:
        cid, alloc = rec.get(P.CELL), rec.get(P.ALLOCATED)
        if alloc is None:
            continue
        if cid is not None:
            errors[str(cid)] += bool(rec.get(P.CELL_ERROR))
            if prev is not None:
                kept_by[str(cid)].append(float(alloc) - prev)
        prev = float(alloc)
    found: list[dict[str, Any]] = []
    for cid, kept in kept_by.items():
        # the first run may build what the notebook needs; the re-runs must not keep more
        reruns = np.asarray(kept[1:])
        if len(kept) >= min_runs - 1 and len(reruns) >= min_runs - 2 and len(reruns) and np.all(reruns >= min_bytes):
            found.append(
                {"cell": cid, "runs": len(kept), "bytes_per_run": float(np.median(reruns)), "errors": errors[cid]}
            )
    if not found:
        return {"leaking_cells": [], "message": None}
    found.sort(key=lambda c: -c["bytes_per_run"])
    top = found[0]
    cause = (
        "its stored tracebacks hold the failed run's tensors (clear them with `%tb` off: "
        "`import sys; sys.last_traceback = None`)"
        if top["errors"]
        else "IPython's output history (`Out`, `_`, `__`) keeps what each run returned"
    )
    return {
        "leaking_cells": found,
        "message": (
            f"Each run of cell {top['cell']} keeps {top['bytes_per_run'] / 2**20:.0f} MiB more GPU memory: "
            f"{cause}. `%reset -f out` frees the output history; end the cell with `;` or return no tensor."
        ),
    }


# --------------------------------------------------------------------------- triage
