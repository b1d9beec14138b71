"""Server side of the in-kernel probe: find the probes' files and follow them.

Each probe writes ``probe-<pid>.json`` (who) and ``probe-<pid>.iters.jsonl`` (one line a
step) in the user's runtime directory; a ``ProbeFollower`` reads only the new bytes on
each poll, so following a long run costs what it grew since the last poll.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from pathlib import Path
from typing import Any

import psutil

from .jsonl import parse_lines
from .probe import PROBE_DIR_NAME

log = logging.getLogger(__name__)

#: Steps kept per probe for the detector (a bounded window of the newest steps).
MAX_STEPS = 20_000


class ProbeFollower:
    def __init__(self, meta_path: Path) -> None:
        self.meta_path = meta_path
        self.meta_mtime = meta_path.stat().st_mtime
        self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        self.pid: int = int(self.meta["pid"])
        self.iters_path = meta_path.with_name(f"probe-{self.pid}.iters.jsonl")
        self.cells_path = meta_path.with_name(f"probe-{self.pid}.cells.jsonl")
        self.steps: deque[dict[str, Any]] = deque(maxlen=MAX_STEPS)
        self.cells: deque[dict[str, Any]] = deque(maxlen=2_000)
        self._offsets = {"iters": 0, "cells": 0}
        self._partial = {"iters": b"", "cells": b""}

    def poll(self) -> int:
        """Read what was appended since the last poll; returns the number of new steps."""
        new = self._follow("iters", self.iters_path, self.steps)
        self._follow("cells", self.cells_path, self.cells)
        return new

    def _follow(self, key: str, path: Path, into: deque) -> int:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return 0
        if size < self._offsets[key]:  # rotated: start over on the new file
            self._offsets[key] = 0
            self._partial[key] = b""
        if size == self._offsets[key]:
            return 0
        with path.open("rb") as fh:
            fh.seek(self._offsets[key])
            chunk = self._partial[key] + fh.read(size - self._offsets[key])
        self._offsets[key] = size
        lines = chunk.split(b"\n")
        self._partial[key] = lines.pop()  # a line still being written
        n = 0
        for rec in parse_lines(lines):
            into.append(rec)
            n += 1
        return n

    @property
    def alive(self) -> bool:
        try:
            return psutil.Process(self.pid).create_time() <= float(self.meta.get("started", math.inf))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    def summary(self) -> dict[str, Any]:
        last = self.steps[-1] if self.steps else None
        return {
            "pid": self.pid,
            "kernel_id": self.meta.get("kernel_id"),
            "device": self.meta.get("device"),
            "limit": self.meta.get("limit"),
            "steps": len(self.steps),
            "last": last,
            "alive": self.alive,
        }


class Probes:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.followers: dict[int, ProbeFollower] = {}

    @classmethod
    def in_runtime_dir(cls, runtime_dir: str) -> "Probes":
        return cls(Path(runtime_dir) / PROBE_DIR_NAME)

    def poll(self) -> None:
        """Discover new probes and read new lines (blocking file I/O: run it in a thread)."""
        if self.dir.is_dir():
            for meta in self.dir.glob("probe-*.json"):
                try:
                    pid = int(meta.stem.split("-", 1)[1])
                except ValueError:
                    continue
                follower = self.followers.get(pid)
                # a rewritten meta file is a new probe (a restarted kernel may reuse the pid)
                if follower is None or meta.stat().st_mtime != follower.meta_mtime:
                    try:
                        self.followers[pid] = ProbeFollower(meta)
                    except (OSError, ValueError, KeyError):
                        log.debug("unreadable probe file %s", meta, exc_info=True)
                        continue
        for follower in list(self.followers.values()):
            follower.poll()

    def for_kernel(self, kernel_id: str, pids: list[int]) -> list[ProbeFollower]:
        return [f for f in self.followers.values() if f.meta.get("kernel_id") == kernel_id or f.pid in pids]

    def reserved_by_kernel(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.followers.values():
            kid = f.meta.get("kernel_id")
            if kid and f.steps and f.alive:
                out[kid] = out.get(kid, 0) + int(f.steps[-1].get("reserved") or 0)
        return out
