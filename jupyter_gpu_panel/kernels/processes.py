"""What the system says about the processes behind the probes' pids, read once per process.

A process's real uid and start time do not change while it runs, so the psutil reads that the
probes' checks need (``probe_owner.ProcessFacts``: a few /proc reads and a parse of the boot
time each) are made once per process, not once per refresh. What does change is whether the
pid still names that process: each refresh (a *round*) checks that with one read of
``/proc/<pid>/stat``, whose start time (clock ticks since boot) tells the process from a later
one that reuses the pid, and whose parent pid the ownership walk needs anyway.

Not thread-safe: used on the tracker's probe-reading thread only (``Probes.poll`` begins a
round, ``ProbeOwners.assign`` reads the same round's answers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Union

import psutil

from .probe_owner import ProcessFacts, process_facts

#: /proc/<pid>/stat fields after the command name's closing parenthesis: state, ppid, ...
_PPID, _START = 1, 19  # fields 4 and 22 of proc(5), counted from field 3 (state)
_PROC = os.path.exists("/proc/self/stat")


@dataclass(frozen=True)
class Identity:
    """Which process a pid names now: ``start`` is equal for the same process only (clock ticks
    since boot on Linux, psutil's create time elsewhere); ``ppid`` its parent now."""

    start: Union[int, float]
    ppid: Optional[int]


def read_identity(pid: int) -> Optional[Identity]:
    """The process at ``pid`` now; None when there is none (or it cannot be read)."""
    if pid <= 0:
        return None
    if not _PROC:
        try:
            proc = psutil.Process(pid)
            return Identity(proc.create_time(), proc.ppid())
        except (psutil.Error, ValueError):
            return None
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    # the command name may hold spaces and parentheses: the fields start after the last ')'
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return Identity(int(fields[_START]), int(fields[_PPID]) or None)
    except (IndexError, ValueError):
        return None


class ProcessTable:
    """pid -> its ``Identity`` (checked once a round) and ``ProcessFacts`` (read once a process)."""

    def __init__(self) -> None:
        self._round = 0
        #: pid -> (round it was checked in, what it named then)
        self._seen: dict[int, tuple[int, Optional[Identity]]] = {}
        #: pid -> (the Identity the facts were read for, the facts)
        self._facts: dict[int, tuple[Identity, Optional[ProcessFacts]]] = {}
        #: psutil reads made (tests: a known process costs none)
        self.facts_read = 0

    def new_round(self) -> None:
        """The next refresh: every pid is checked again on first use; pids no one asked about in
        the last round are forgotten (the table holds what the probes and their ancestors need)."""
        keep = self._round
        self._round += 1
        self._seen = {pid: seen for pid, seen in self._seen.items() if seen[0] >= keep}
        self._facts = {pid: f for pid, f in self._facts.items() if pid in self._seen}

    def identity(self, pid: int) -> Optional[Identity]:
        seen = self._seen.get(pid)
        if seen is None or seen[0] != self._round:
            seen = self._seen[pid] = (self._round, read_identity(pid))
        return seen[1]

    def parent(self, pid: int) -> Optional[int]:
        ident = self.identity(pid)
        return ident.ppid if ident is not None else None

    def facts(self, pid: int) -> Optional[ProcessFacts]:
        """Owner and start time of the process at ``pid`` now (None: none): psutil's answer for
        this process, read when the pid first named it."""
        ident = self.identity(pid)
        if ident is None:
            return None
        known = self._facts.get(pid)
        if known is None or known[0].start != ident.start:
            self.facts_read += 1
            facts = process_facts(pid)
            # the process at pid ended (and maybe another took it) between the two reads: ask again next round
            if facts is None or read_identity(pid) != ident:
                self._seen.pop(pid, None)
                return facts
            known = self._facts[pid] = (ident, facts)
        return known[1]

    def alive(self, pid: int, started: float) -> bool:
        """A process of the probe's runs at ``pid``: one that existed when its meta was written
        (``started``), not a later one that reuses the pid (``ProbeFollower.alive``'s rule)."""
        facts = self.facts(pid)
        return facts is not None and facts.create_time <= started
