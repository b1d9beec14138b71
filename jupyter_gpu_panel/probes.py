"""Server side of the in-kernel probe: find the probes' files and follow them.

Each probe writes ``probe-<pid>.json`` (who) and ``probe-<pid>.iters.jsonl`` (one line a
step) in the user's runtime directory; a ``ProbeFollower`` reads only the new bytes on
each poll, so following a long run costs what it grew since the last poll.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Optional

import psutil

from .jsonl import parse_lines
from .probe import PROBE_DIR_NAME, TRIAGE_STEPS, probe_file

log = logging.getLogger(__name__)

#: Steps kept per probe for the detector (a bounded window of the newest steps).
MAX_STEPS = 20_000


class ProbeFollower:
    def __init__(self, meta_path: Path) -> None:
        self.meta_path = meta_path
        self.meta_mtime = meta_path.stat().st_mtime
        self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        self.pid: int = int(self.meta["pid"])
        self.iters_path = probe_file(meta_path.parent, self.pid, "iters")
        self.cells_path = probe_file(meta_path.parent, self.pid, "cells")
        self.steps: deque[dict[str, Any]] = deque(maxlen=MAX_STEPS)
        self.cells: deque[dict[str, Any]] = deque(maxlen=2_000)
        self._offsets = {"iters": 0, "cells": 0}
        self._partial = {"iters": b"", "cells": b""}
        self.triage_request_path = probe_file(meta_path.parent, self.pid, "triage-request")
        self.triage_path = probe_file(meta_path.parent, self.pid, "triage")
        self.triage: dict[str, Any] | None = None
        self._triage_mtime: float | None = None

    def poll(self) -> int:
        """Read what was appended since the last poll; returns the number of new steps."""
        new = self._follow("iters", self.iters_path, self.steps)
        self._follow("cells", self.cells_path, self.cells)
        self._read_triage()
        return new

    def request_triage(self, steps: int = TRIAGE_STEPS, auto: bool = False) -> dict[str, Any]:
        """Ask the probe to record the allocation history of its next ``steps`` steps."""
        now = time.time()
        fd = os.open(self.triage_request_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps({"steps": steps, "t": now}))
        self.triage = {"state": "requested", "requested_at": now, "t": None, "steps": steps,
                       "message": None, "stacks": [], "error": None, "auto": auto}
        return self.triage

    def _read_triage(self) -> None:
        try:
            mtime = self.triage_path.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime == self._triage_mtime:
            return
        self._triage_mtime = mtime
        base = self.triage or {"requested_at": None, "auto": False}
        try:
            doc = json.loads(self.triage_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # replaced while reading: the next poll sees the whole file
        self.triage = {**base, **triage_result(doc)}


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
            "series": self.series(),
            "triage": self.triage,
        }

    def series(self, max_points: int = 600) -> dict[str, list[float]]:
        """Allocated and reserved per step for the panel's chart, thinned to ``max_points``."""
        steps = list(self.steps)
        stride = max(1, math.ceil(len(steps) / max_points))
        picked = steps[::stride]
        if steps and picked[-1] is not steps[-1]:
            picked.append(steps[-1])  # the chart ends where the forecast starts
        return {
            "step": [s.get("i") for s in picked],
            "allocated": [s.get("allocated") for s in picked],
            "reserved": [s.get("reserved") for s in picked],
        }


class Probes:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.followers: dict[int, ProbeFollower] = {}
        # probes whose process has ended, by (pid, meta mtime): their files stay (they are the
        # user's), but are neither followed nor read again
        self._ended: set[tuple[int, float]] = set()

    @classmethod
    def in_runtime_dir(cls, runtime_dir: str) -> "Probes":
        return cls(Path(runtime_dir) / PROBE_DIR_NAME)

    def poll(self) -> None:
        """Discover new probes and read new lines (blocking file I/O: run it in a thread)."""
        listed: set[int] = set()
        if self.dir.is_dir():
            for meta in self.dir.glob("probe-*.json"):
                try:
                    pid = int(meta.stem.split("-", 1)[1])
                except ValueError:
                    continue
                try:
                    mtime = meta.stat().st_mtime
                except OSError:
                    continue
                listed.add(pid)
                if (pid, mtime) in self._ended:
                    continue
                follower = self.followers.get(pid)
                # a rewritten meta file is a new probe (a restarted kernel may reuse the pid)
                if follower is None or mtime != follower.meta_mtime:
                    try:
                        self.followers[pid] = ProbeFollower(meta)
                    except (OSError, ValueError, KeyError):
                        log.debug("unreadable probe file %s", meta, exc_info=True)
                        continue
        for pid, follower in list(self.followers.items()):
            if pid not in listed:
                del self.followers[pid]  # its files were removed
                continue
            follower.poll()
            if not follower.alive:
                # a restarted kernel keeps its id: its old, ended probe must not stand in for the new one
                self._ended.add((pid, follower.meta_mtime))
                del self.followers[pid]

    def for_kernel(self, kernel_id: str, pids: list[int]) -> list[ProbeFollower]:
        return [f for f in self.followers.values() if f.meta.get("kernel_id") == kernel_id or f.pid in pids]

    def main_for_kernel(self, kernel_id: str, pids: list[int]) -> Optional[ProbeFollower]:
        """The kernel's probe that has seen the most steps (a kernel's torchrun ranks each have one)."""
        return max(self.for_kernel(kernel_id, pids), key=lambda f: len(f.steps), default=None)

    def reserved_by_kernel(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.followers.values():
            kid = f.meta.get("kernel_id")
            if kid and f.steps:  # poll keeps only probes whose process runs
                out[kid] = out.get(kid, 0) + int(f.steps[-1].get("reserved") or 0)
        return out


def triage_result(doc: dict[str, Any]) -> dict[str, Any]:
    """What the panel shows for a probe's ``triage.json``: the stacks that survive every step."""
    out: dict[str, Any] = {"t": doc.get("t"), "steps": int(doc.get("steps") or 0), "message": None, "stacks": [], "error": None}
    if doc.get("error"):
        return {**out, "state": "error", "error": str(doc["error"])}
    from . import leaks  # scipy: imported on first use

    code = doc.get("code") or {}
    found = leaks.triage_snapshot(doc, out["steps"], source_line=lambda f, n: code.get(f"{f}:{n}"))
    stacks = [{k: s[k] for k in ("where", "code", "bytes", "bytes_per_step", "count", "every_step")} for s in found["stacks"][:5]]
    message = found["message"] or f"Nothing allocated during {out['steps']} steps survived them."
    return {**out, "state": "done", "stacks": stacks, "message": message}
