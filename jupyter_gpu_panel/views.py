"""Pure functions that turn sampler state into the API's JSON documents."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

from .readings import FAST_FIELDS, SLOW_FIELDS
from .sampler import Snapshot
from .sources.base import SourceStatus

#: Every per-GPU field a client may select; identity fields are always sent.
SELECTABLE_FIELDS: tuple[str, ...] = FAST_FIELDS + SLOW_FIELDS + ("processes",)
ALWAYS_SENT: tuple[str, ...] = ("index", "t", "state", "error")

OwnerLookup = Callable[[int], Optional[dict[str, Any]]]


def parse_fields(raw: Optional[Iterable[str]]) -> Optional[tuple[str, ...]]:
    """Validate a client's field selection; ``None`` means every field. Raises ValueError."""
    if raw is None:
        return None
    fields = tuple(dict.fromkeys(f.strip() for f in raw if f and f.strip()))
    unknown = [f for f in fields if f not in SELECTABLE_FIELDS]
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; choose from {', '.join(SELECTABLE_FIELDS)}")
    return fields or None


def snapshot_json(
    status: SourceStatus,
    snap: Optional[Snapshot],
    fields: Optional[tuple[str, ...]] = None,
    owner_of: Optional[OwnerLookup] = None,
    user_filter: Optional[str] = None,
) -> dict[str, Any]:
    """The ``snapshot`` document. ``user_filter``: keep only that user's processes."""
    gpus = []
    for reading in snap.gpus if snap else []:
        doc = reading.to_json()
        procs = []
        for proc in doc["processes"]:
            if user_filter is not None and proc.get("user") not in (None, user_filter):
                continue
            if owner_of is not None:
                proc["owner"] = owner_of(proc["pid"])
            procs.append(proc)
        doc["processes"] = procs
        if fields is not None:
            keep = set(ALWAYS_SENT) | set(fields)
            doc = {k: v for k, v in doc.items() if k in keep}
        gpus.append(doc)
    return {
        "t": snap.t if snap else None,
        "source": status.source,
        "state": status.state,
        "message": status.message,
        "gpus": gpus,
    }

