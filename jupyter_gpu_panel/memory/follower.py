"""Server side of the in-kernel probe: find the probes' files and follow them, trusting none.

Each probe writes ``probe-<pid>.json`` (who) and ``probe-<pid>.iters.jsonl`` (one line a step)
in the user's runtime directory; a ``ProbeFollower`` reads only the new bytes on each poll, so
following a long run costs what it grew since the last poll. Every file is opened through
``safe_files`` (regular, ours, bounded) and every record validated once, here (``records``): a
FIFO, a symlink, a huge or malformed file is refused and counted, and never affects another
probe. Steps go into a ``probe_state.StepWindow`` (bounded numpy columns), and each probe keeps
its leak verdict with the window version it judged, so a probe whose files did not change
costs nothing to show. All of it is blocking file I/O and CPU work: the tracker runs it on its
one probe-reading thread, never on the event loop.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Optional

import orjson
import psutil

from ..kernels.probe_owner import ended_refusal
from ..kernels.processes import ProcessTable
from ..probe import protocol
from ..probe.protocol import MAX_LINE_BYTES, MAX_META_BYTES, MAX_READ_BYTES, MAX_TRIAGE_BYTES, probe_file
from .probe_state import StepWindow
from .records import valid_cell, valid_meta, valid_step
from .safe_files import UnsafeFile, private_dir_problem, read_range, read_small, write_new

log = logging.getLogger(__name__)

#: Steps kept per probe for the detector (a bounded window of the newest steps).
MAX_STEPS = 20_000
MAX_CELLS = 2_000
#: Lines parsed into dicts at a time: a file's first read holds 20,000 records, whose dicts
#: (~1 KB each) are only needed until they are columns; in chunks the server's memory does not
#: keep the high-water mark of a whole file's dicts.
PARSE_CHUNK = 1_000
#: Problems remembered for the API (newest last).
MAX_WARNINGS = 20


class LineFollower:
    """New complete lines of one append-only file, bounded in what it reads and holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.inode: Optional[int] = None
        self.partial = b""
        self.discarding = False  # inside an over-long line: drop bytes up to its end

    def read(self) -> list[bytes]:
        try:
            data, size, inode = read_range(self.path, self.offset, MAX_READ_BYTES)
        except FileNotFoundError:
            return []
        if inode != self.inode or size < self.offset:  # rotated or replaced: start over
            if self.inode is not None:
                self.offset, self.partial, self.discarding = 0, b"", False
                data, size, inode = read_range(self.path, 0, MAX_READ_BYTES)
            self.inode = inode
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()  # a line still being written
        if self.discarding and lines:
            lines.pop(0)  # the end of the over-long line
            self.discarding = False
        if len(self.partial) > MAX_LINE_BYTES:
            self.partial, self.discarding = b"", True
        return [line for line in lines if len(line) <= MAX_LINE_BYTES]


def parse_records(
    lines: list[bytes], validate: Callable[[Any], Optional[dict[str, Any]]]
) -> tuple[list[dict[str, Any]], int]:
    """Valid records among ``lines`` and the number of lines skipped as invalid.

    orjson: strict JSON (NaN and Infinity literals, lone surrogates and numbers out of range
    are errors, so such a line is skipped whole) and ~6x faster than ``json`` on a 20,000-line
    file read at start."""
    good, bad = [], 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            rec = validate(orjson.loads(line))
        except ValueError:  # orjson.JSONDecodeError, and too deep a nesting
            rec = None
        if rec is None:
            bad += 1
        else:
            good.append(rec)
    return good, bad


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: not a reading


class ProbeFollower:
    def __init__(self, meta_path: Path, pid: int) -> None:
        self.meta_path = meta_path
        self.pid = pid
        raw = read_small(meta_path, MAX_META_BYTES)
        try:
            doc = json.loads(raw, parse_constant=_no_constant)
        except (ValueError, RecursionError) as err:
            raise ValueError(f"not JSON: {err}") from None
        self.meta = valid_meta(doc, pid)
        self.meta_mtime = os.stat(meta_path, follow_symlinks=False).st_mtime
        directory = meta_path.parent
        self.steps = StepWindow(MAX_STEPS)
        self.cells: deque[dict[str, Any]] = deque(maxlen=MAX_CELLS)
        self.cells_seen = 0  # cell records ever read: the cells' version
        self._iters = LineFollower(probe_file(directory, pid, protocol.FILE_ITERS))
        self._cells = LineFollower(probe_file(directory, pid, protocol.FILE_CELLS))
        self.skipped = 0  # invalid records seen
        self.triage_request_path = probe_file(directory, pid, protocol.FILE_TRIAGE_REQUEST)
        self.triage_path = probe_file(directory, pid, protocol.FILE_TRIAGE)
        self.triage: Optional[dict[str, Any]] = None
        self._triage_mtime: Optional[float] = None
        #: the leak verdict on the window as of ``judged`` (its ``steps.version`` then; None: never)
        self.leak: Optional[dict[str, Any]] = None
        self.judged: Optional[int] = None
        self.judged_at = 0.0  # time.monotonic() of that judgement
        self.judge_error: Optional[str] = None  # the detector failed on these records: why
        #: ``alive`` as ``Probes.poll`` last found it (a psutil read a probe a poll, not two)
        self.seen_alive: Optional[bool] = None
        #: the tracker's cache of this probe's part of the kernels document, keyed by what was read
        self.view: Optional[tuple[Any, ...]] = None

    def poll(self) -> int:
        """Read what was appended since the last poll; returns the number of new steps."""
        lines = self._iters.read()
        new_steps = bad_steps = 0
        for start in range(0, len(lines), PARSE_CHUNK):
            records, bad = parse_records(lines[start : start + PARSE_CHUNK], valid_step)
            new_steps += self.steps.extend(records)
            bad_steps += bad
        cells, bad_cells = parse_records(self._cells.read(), valid_cell)
        self.cells.extend(cells)
        self.cells_seen += len(cells)
        if bad_steps or bad_cells:
            self.steps.skipped += bad_steps
            self.skipped += bad_steps + bad_cells
            log.warning("probe %s: skipped %d invalid record(s)", self.pid, bad_steps + bad_cells)
        self._read_triage()
        return new_steps

    @property
    def stale(self) -> bool:
        """Steps (or an OOM line) arrived since the verdict was made (or none was made yet)."""
        return self.judged != self.steps.version

    def judge(self) -> Optional[dict[str, Any]]:
        """The leak verdict on the steps in the window now (None with fewer than 3 iterations):
        ``verdict_from_records`` on those records, from the window's columns. Kept in ``leak``."""
        from .verdict import verdict_from_trace  # scipy on first use, not at server start

        self.leak = verdict_from_trace(self.steps.trace(), default_capacity=self.meta[protocol.META_LIMIT])
        self.judged, self.judged_at = self.steps.version, time.monotonic()
        return self.leak

    def request_triage(self, steps: Optional[int] = None, auto: bool = False) -> dict[str, Any]:
        """Ask the probe to record the allocation history of its next ``steps`` steps, or (None)
        for as long as the verdict's leak needs: until two of its growth increments were seen
        (``triage.triage_plan``: a leak every 25th step shows once in 25)."""
        from .triage import triage_plan

        now = time.time()
        if steps is None:
            trace = self.steps.trace()
            request: dict[str, Any] = triage_plan(self.leak, trace.steps, trace.allocated)
        else:
            request = {protocol.REQUEST_STEPS: steps}
        request[protocol.REQUEST_TIME] = now
        write_new(self.triage_request_path, json.dumps(request).encode())
        self.triage = {
            "state": "requested",
            "requested_at": now,
            "t": None,
            "steps": request[protocol.REQUEST_STEPS],
            "message": None,
            "stacks": [],
            "error": None,
            "recording": None,
            "auto": auto,
        }
        return self.triage

    def _read_triage(self) -> None:
        try:
            mtime = os.stat(self.triage_path, follow_symlinks=False).st_mtime
        except FileNotFoundError:
            return
        if mtime == self._triage_mtime:
            return
        self._triage_mtime = mtime
        base = self.triage or {"requested_at": None, "auto": False}
        try:
            doc = json.loads(read_small(self.triage_path, MAX_TRIAGE_BYTES))
            from .triage import triage_result  # scipy-free, but only needed here

            result = triage_result(doc)
        except (OSError, ValueError, RecursionError, TypeError, AttributeError, KeyError) as err:
            result = {
                "state": "error",
                "t": None,
                "steps": 0,
                "message": None,
                "stacks": [],
                "error": f"unreadable triage result: {err}"[:300],
                "recording": None,
            }
        self.triage = {**base, **result}

    @property
    def alive(self) -> bool:
        try:
            return psutil.Process(self.pid).create_time() <= float(self.meta.get(protocol.META_STARTED, math.inf))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    def last_reading(self) -> Optional[dict[str, Any]]:
        """The probe's newest allocator reading: its last step, or the end of its last cell when
        that came later (an idle kernel that loaded the probe and ran no loop has only those)."""
        step = self.steps.last
        cell = self.cells[-1] if self.cells else None
        if cell is None or cell.get(protocol.RESERVED) is None:
            return step
        if step is None or float(cell.get(protocol.TIME) or 0.0) >= float(step.get(protocol.TIME) or 0.0):
            return cell
        return step

    def summary(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "kernel_id": self.meta[protocol.META_KERNEL_ID],
            "device": self.meta[protocol.META_DEVICE],
            "limit": self.meta[protocol.META_LIMIT],
            "steps": len(self.steps),
            "skipped": self.skipped,
            "last": self.steps.last,
            "alive": self.alive if self.seen_alive is None else self.seen_alive,
            "series": self.steps.series_columns(),  # arrays: the tracker encodes them with orjson
            "triage": self.triage,
        }

    def series(self, max_points: int = 600) -> dict[str, list[Any]]:
        """Allocated and reserved per step for the panel's chart, thinned to ``max_points``."""
        return self.steps.series(max_points)


class Probes:
    """Every probe in the directory. Not thread-safe: one thread polls (the tracker's)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.followers: dict[int, ProbeFollower] = {}
        # probes whose process has ended, by (pid, meta mtime): their files stay (they are the
        # user's), but are neither followed nor read again
        self._ended: set[tuple[int, float]] = set()
        # files refused, by (name, mtime): not retried until they change
        self._refused: dict[str, float] = {}
        self.warnings: deque[str] = deque(maxlen=MAX_WARNINGS)
        #: pid -> kernel id (None: a script) of the probes accepted by ``kernels.probe_owner``
        #: after the last poll; a probe absent here (refused, or not judged yet) is shown nowhere
        self.owners: dict[int, Optional[str]] = {}
        #: the processes behind the pids: psutil read once per process, one /proc read a poll
        self.processes = ProcessTable()

    @classmethod
    def in_runtime_dir(cls, runtime_dir: str) -> Probes:
        return cls(Path(runtime_dir) / protocol.PROBE_DIR_NAME)

    def warn(self, message: str) -> None:
        log.warning("memory probes: %s", message)
        if message not in self.warnings:
            self.warnings.append(message)

    def poll(self) -> None:
        """Discover new probes and read new lines (blocking file I/O: run it in a thread)."""
        self.processes.new_round()
        problem = private_dir_problem(self.dir)
        if problem:
            self.warn(f"probe files ignored: {problem}")
            self.followers.clear()
            return
        listed: set[int] = set()
        try:
            entries = list(os.scandir(self.dir))
        except (FileNotFoundError, NotADirectoryError):
            entries = []
        for entry in entries:
            pid = protocol.pid_of_meta_name(entry.name)
            if pid is None:
                continue
            try:
                mtime = entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            listed.add(pid)
            if (pid, mtime) in self._ended or self._refused.get(entry.name) == mtime:
                continue
            follower = self.followers.get(pid)
            # a rewritten meta file is a new probe (a restarted kernel may reuse the pid)
            if follower is None or mtime != follower.meta_mtime:
                try:
                    self.followers[pid] = ProbeFollower(Path(entry.path), pid)
                except (OSError, ValueError) as err:
                    self._refused[entry.name] = mtime
                    self.followers.pop(pid, None)
                    self.warn(f"{entry.name} refused: {_why(err)}")
        for pid, follower in list(self.followers.items()):
            if pid not in listed:
                del self.followers[pid]  # its files were removed
                continue
            try:
                follower.poll()
            except (OSError, ValueError) as err:  # one probe's bad file never stops the others
                self.warn(f"probe {pid}: {_why(err)}")
            follower.seen_alive = self.processes.alive(pid, float(follower.meta.get(protocol.META_STARTED, math.inf)))
            if not follower.seen_alive:
                why = ended_refusal(pid, follower.meta)  # a process still at that pid is not the probe's
                if why is not None:
                    self.warn(f"{follower.meta_path.name} refused: {why}")
                # a restarted kernel keeps its id: its old, ended probe must not stand in for the new one
                self._ended.add((pid, follower.meta_mtime))
                del self.followers[pid]

    def for_kernel(self, kernel_id: str) -> list[ProbeFollower]:
        """The kernel's probes: those whose process is the kernel's or its descendant (``owners``),
        never one that only says so in its meta."""
        owners = self.owners
        return [f for pid, f in list(self.followers.items()) if pid in owners and owners[pid] == kernel_id]

    def main_for_kernel(self, kernel_id: str) -> Optional[ProbeFollower]:
        """The kernel's probe that has seen the most steps (a kernel's torchrun ranks each have one)."""
        return max(self.for_kernel(kernel_id), key=lambda f: len(f.steps), default=None)

    def scripts(self) -> list[ProbeFollower]:
        """Accepted probes in no kernel (a script, a torchrun rank started from a terminal)."""
        owners = self.owners
        return [f for pid, f in list(self.followers.items()) if pid in owners and owners[pid] is None]

    def reserved_by_kernel(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in list(self.followers.values()):  # read from the loop while the probe thread polls
            kid = self.owners.get(f.pid)  # the kernel its process is part of, not what its meta says
            if kid and f.steps:  # poll keeps only probes whose process runs
                out[kid] = out.get(kid, 0) + int((f.steps.last or {}).get(protocol.RESERVED) or 0)
        return out


def _why(err: BaseException) -> str:
    if isinstance(err, UnsafeFile):
        return err.strerror or "refused"
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return str(err)[:200]
