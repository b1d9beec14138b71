"""Where a probe's readings may appear: a kernel's row, the scripts list, or nowhere.

A probe file is written into the user's runtime directory by code the user runs, so what it
says about itself is a claim, not a fact: any process may write ``"kernel_id": K2`` or name
another user's pid. What decides is the process behind the pid, as the system sees it:

- it must be the server user's own live process, not pid 1, and no newer than the probe's
  meta (a pid whose process started after the meta was written is a reused pid);
- it belongs to a kernel only if it is that kernel's process or one of its descendants (the
  process tree attribution walks); a meta that names a kernel the process is not part of is
  refused rather than trusted;
- an accepted probe in no kernel is a script.

``decide`` is pure (facts in, answer out); ``process_facts`` is its only psutil read.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Callable, Optional

import psutil

from ..probe import protocol as P


@dataclass(frozen=True)
class ProcessFacts:
    """What the system says about the process behind a probe's pid."""

    uid: int  # real uid: the user who started it (a setuid program keeps its caller's)
    create_time: float  # Unix seconds (psutil's create_time)


@dataclass(frozen=True)
class Attachment:
    """Where a probe goes: ``kernel_id`` (None: a script), or ``refused`` with the reason."""

    kernel_id: Optional[str] = None
    refused: Optional[str] = None

    @property
    def is_script(self) -> bool:
        return self.refused is None and self.kernel_id is None


def server_uid() -> int:
    return os.getuid()


def process_facts(pid: int) -> Optional[ProcessFacts]:
    """The pid's owner and start time; None when no such process can be read."""
    try:
        proc = psutil.Process(pid)
        return ProcessFacts(uid=proc.uids().real, create_time=proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ValueError):
        return None


def process_refusal(pid: int, meta: dict[str, Any], facts: Optional[ProcessFacts], uid: int) -> Optional[str]:
    """Why the process behind ``pid`` cannot be this probe's (None when it can)."""
    if pid <= 1:
        return "pid 1 is the system's init process, never a probe's"
    if facts is None:
        return f"no process {pid} is running"
    if facts.uid != uid:
        return f"pid {pid} is another user's process (uid {facts.uid})"
    started = meta.get(P.META_STARTED)
    if isinstance(started, (int, float)) and facts.create_time > started:
        # same comparison as ProbeFollower.alive: the meta predates the process now at that pid
        return f"pid {pid} is a process started after the probe's meta was written (a reused pid)"
    return None


def ended_refusal(pid: int, meta: dict[str, Any]) -> Optional[str]:
    """A probe no longer alive: why, when a process still runs at its pid (a reused pid, or
    pid 1 or another user's); None when its process simply ended (nothing to say)."""
    facts = process_facts(pid)
    if facts is None:
        return None
    return process_refusal(pid, meta, facts, server_uid())


def decide(
    pid: int,
    meta: dict[str, Any],
    kernel_of_pid: Optional[str],
    facts: Optional[ProcessFacts],
    uid: int,
) -> Attachment:
    """Where the probe of ``pid`` (its validated ``meta``) goes.

    ``kernel_of_pid``: the kernel whose process is ``pid`` or one of its ancestors (None: no
    kernel's); ``facts``: the process as the system sees it; ``uid``: the server's user.
    """
    why = process_refusal(pid, meta, facts, uid)
    if why is not None:
        return Attachment(refused=why)
    claimed = meta.get(P.META_KERNEL_ID)
    if claimed is not None and claimed != kernel_of_pid:
        return Attachment(refused=f"it names kernel {claimed}, but pid {pid} is not that kernel's process or its child")
    return Attachment(kernel_id=kernel_of_pid)


class ProbeOwners:
    """Decides, after each poll of the probe files, which followed probe goes where.

    Runs on the tracker's probe-reading thread (reads /proc, no file I/O of the probes). The
    answer is left in ``probes.owners`` (pid -> kernel id, None for a script; refused probes are
    absent), which is what ``Probes.for_kernel`` and ``Probes.scripts`` select by.

    A decision is kept while what it was made of holds: the same process at the pid (its start
    time, and its parent, from the round's ``ProcessTable`` check), the same meta file, and the
    same kernels (``kernel_set``). A process's owner and start time never change, and its
    ancestry only when a parent exits (the pid's own parent is in the key; a grandparent's exit
    is not seen until the kernels change). So a refresh re-decides only new probes, reused
    pids and everything when a kernel starts or stops, instead of walking a hundred processes'
    trees each time.
    """

    def __init__(self, kernels_of: Any, kernel_set: Optional[Callable[[], Hashable]] = None) -> None:
        #: (pids, parent lookup) -> the kernel each is part of (``Attribution.kernels_of``)
        self.kernels_of = kernels_of
        #: the kernels the decisions depend on, comparable (``Attribution.kernel_set``)
        self.kernel_set = kernel_set or (lambda: None)
        #: pid -> why its probe is refused, as of the last ``assign``
        self.refused: dict[int, str] = {}
        # refusals already warned about, by (pid, meta mtime, reason): said once, not every refresh
        self._said: set[tuple[int, float, str]] = set()
        # pid -> (what the decision was made of, the decision), for the probes followed
        self._decided: dict[int, tuple[Hashable, Attachment]] = {}
        self._kernels: Hashable = None
        #: pids decided afresh by the last ``assign`` (tests: a known process is not re-decided)
        self.decided_now: list[int] = []

    def assign(self, probes: Any) -> None:
        followers = dict(probes.followers)
        table = probes.processes
        kernels_now = self.kernel_set()
        if kernels_now != self._kernels:
            self._decided, self._kernels = {}, kernels_now
        keys = {pid: (table.identity(pid), follower.meta_mtime) for pid, follower in followers.items()}
        fresh = [pid for pid in followers if pid not in self._decided or self._decided[pid][0] != keys[pid]]
        kernels = self.kernels_of(fresh, table.parent) if fresh else {}
        uid = server_uid()
        decided: dict[int, tuple[Hashable, Attachment]] = {}
        owners: dict[int, Optional[str]] = {}
        refused: dict[int, str] = {}
        said: set[tuple[int, float, str]] = set()
        for pid, follower in followers.items():
            if pid in self._decided and self._decided[pid][0] == keys[pid]:
                decided[pid] = self._decided[pid]
            else:
                facts = table.facts(pid)
                # a pid that could not be read while it names a process: decided again next time
                made_of = keys[pid] if facts is not None or keys[pid][0] is None else None
                decided[pid] = (made_of, decide(pid, follower.meta, kernels.get(pid), facts, uid))
            answer = decided[pid][1]
            if answer.refused is None:
                owners[pid] = answer.kernel_id
                continue
            refused[pid] = answer.refused
            key = (pid, follower.meta_mtime, answer.refused)
            if key not in self._said:
                probes.warn(f"probe-{pid}.json refused: {answer.refused}")
            said.add(key)
        self._said = said  # only the probes still followed: bounded by the directory
        self._decided = decided  # likewise
        self.decided_now = fresh
        self.refused = refused
        probes.owners = owners
