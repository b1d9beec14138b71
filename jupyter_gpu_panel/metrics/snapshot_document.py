"""The ``snapshot`` document (``GET snapshot``, the websocket's snapshot messages, the CLI's
``snapshot``) built from the sampler's state: pure functions, for one audience (``privacy``) and
the client's field selection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable, Optional

from .privacy import EVERYONE, Audience
from .readings import FAST_FIELDS, SLOW_FIELDS
from .sampler import Snapshot
from .sources.base import SourceStatus

#: Every per-GPU field a client may select; identity fields are always sent.
SELECTABLE_FIELDS: tuple[str, ...] = FAST_FIELDS + SLOW_FIELDS + ("processes",)
ALWAYS_SENT: tuple[str, ...] = ("index", "t", "state", "error")
#: pid -> the kernel that owns it, or None (the tracker's ``owner_of``)
OwnerLookup = Callable[[int], Optional[dict[str, Any]]]


def parse_fields(raw: Optional[Iterable[str]]) -> Optional[tuple[str, ...]]:
    """Validate a client's field selection; ``None`` means every field. Raises ValueError."""
    if raw is None:
        return None
    fields = tuple(dict.fromkeys(f.strip() for f in raw if f and f.strip()))
    unknown = [f for f in fields if f not in SELECTABLE_FIELDS]
    if unknown:
        shown = ", ".join(repr(f[:40]) for f in unknown[:5])
        raise ValueError(f"unknown field(s) {shown}; choose from {', '.join(SELECTABLE_FIELDS)}")
    return fields or None


def snapshot_json(
    status: SourceStatus,
    snap: Optional[Snapshot],
    fields: Optional[tuple[str, ...]] = None,
    owner_of: Optional[OwnerLookup] = None,
    audience: Audience = EVERYONE,
) -> dict[str, Any]:
    """The ``snapshot`` document as ``audience`` may see it."""
    gpus = []
    for reading in snap.gpus if snap else []:
        doc = reading.to_json()
        procs = []
        for proc in doc["processes"]:
            shown = audience.process_view(proc)
            if shown is None:
                continue
            if owner_of is not None:
                shown["owner"] = owner_of(shown["pid"])
            procs.append(shown)
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
