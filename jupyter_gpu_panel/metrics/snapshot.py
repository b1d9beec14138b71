"""Pure functions that turn sampler state into the API's JSON documents, for one audience.

On a shared machine the GPU processes of other users are shown as pid, user and memory only:
their command lines may carry secrets (``--db-password=...``, another server's token).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .readings import FAST_FIELDS, SLOW_FIELDS
from .sampler import Snapshot
from .sources.base import SourceStatus

#: Every per-GPU field a client may select; identity fields are always sent.
SELECTABLE_FIELDS: tuple[str, ...] = FAST_FIELDS + SLOW_FIELDS + ("processes",)
ALWAYS_SENT: tuple[str, ...] = ("index", "t", "state", "error")
#: Fields of another user's process that are never sent unless the server allows it.
PRIVATE_PROCESS_FIELDS: tuple[str, ...] = ("name", "command")

OwnerLookup = Callable[[int], Optional[dict[str, Any]]]


@dataclass(frozen=True)
class Audience:
    """Who reads a document: the server's user, and what the server lets them see of others.

    ``local``: the pids are this machine's (NVML); a replayed recording's processes belong to
    nobody here and are shown as recorded.
    """

    user: Optional[str]
    other_users: bool = True
    other_commands: bool = False
    local: bool = True

    def is_own(self, user: Optional[str]) -> bool:
        return user is not None and user == self.user

    def sees_process(self, user: Optional[str]) -> bool:
        """A process whose user cannot be read counts as another user's."""
        return not self.local or self.other_users or self.is_own(user)

    def process_view(self, proc: dict[str, Any]) -> Optional[dict[str, Any]]:
        """``proc`` as this audience may see it, or None when it is hidden."""
        if not self.local or self.is_own(proc.get("user")):
            return proc
        if not self.other_users:
            return None
        if not self.other_commands:
            for name in PRIVATE_PROCESS_FIELDS:
                proc[name] = None
        return proc


EVERYONE = Audience(user=None, other_users=True, other_commands=True, local=False)


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
