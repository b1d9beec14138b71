"""Names, commands and users of GPU processes, from psutil.

Looked up once per process (keyed by pid and start time, so a reused pid is not
mistaken for the old process) and cached: the sampler calls this every tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import psutil

from .readings import GPUReading

_Info = tuple[Optional[str], Optional[str], Optional[str]]


def describe_pid(pid: int) -> tuple[Optional[float], _Info]:
    """(start time, (name, command, user)) of a local process; Nones where hidden or gone."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            created = proc.create_time()
            name = proc.name()
            try:
                command = " ".join(proc.cmdline()) or None
            except (psutil.AccessDenied, psutil.ZombieProcess):
                command = None
            try:
                user = proc.username()
            except (psutil.AccessDenied, KeyError):
                user = None
        return created, (name, command, user)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None, (None, None, None)


class ProcessDescriber:
    def __init__(self, max_entries: int = 4096) -> None:
        self._cache: dict[int, tuple[Optional[float], _Info]] = {}
        self._max = max_entries

    def describe(self, gpus: Sequence[GPUReading]) -> None:
        live = set()
        for gpu in gpus:
            for proc in gpu.processes:
                live.add(proc.pid)
                cached = self._cache.get(proc.pid)
                if cached is None or not self._same_process(proc.pid, cached[0]):
                    cached = self._cache[proc.pid] = describe_pid(proc.pid)
                proc.name, proc.command, proc.user = cached[1]
        if len(self._cache) > self._max:
            self._cache = {pid: v for pid, v in self._cache.items() if pid in live}

    def user_of(self, pid: int) -> Optional[str]:
        """The user of a process seen on a GPU (None when unknown or never seen)."""
        cached = self._cache.get(pid)
        return None if cached is None else cached[1][2]

    @staticmethod
    def _same_process(pid: int, created: Optional[float]) -> bool:
        if created is None:
            return False
        try:
            return psutil.Process(pid).create_time() == created
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
