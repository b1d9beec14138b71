"""Who reads a document, and what they may see of other users' GPU processes.

On a shared machine the GPU processes of other users are shown as pid, user and memory only:
their command lines may carry secrets (``--db-password=...``, another server's token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

#: Fields of another user's process that are never sent unless the server allows it.
PRIVATE_PROCESS_FIELDS: tuple[str, ...] = ("name", "command")


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
