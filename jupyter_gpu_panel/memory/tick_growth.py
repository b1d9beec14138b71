"""NVML-only leak detection on the sampler's ticks (issue 19 item 1): a verdict in seconds.

The refresh path (``verdict.nvml_verdict`` on the history) needs ~10+ readings of growth and
runs every kernel refresh, so a kernel without the in-kernel probe was flagged 14-24 s after
its memory began to grow. Here every tick updates each GPU process's bounded state and the
verdict is re-made at once, with the evidence needed scaled by urgency as the probe path does
(``growth.required_evidence``): the sooner the device fills, the shorter the growth that is
enough. ``verdict.nvml_final_verdict`` puts this verdict and the refresh path's together
(the more urgent one), for the tracker (this judge fed by the sampler) and the CLI (a fresh
judge replaying the trace's samples) alike.

What a leak looks like in NVML ``used`` (the caching allocator's reserve plus the context):
the reserve rises in segments, steadily, and gives nothing back. A healthy run's reserve
grows too, but in a few large segments when a larger batch or a new shape appears, settles,
and drops at ``empty_cache``. So a window ending now is a leak when it:

* grew at least ``MIN_GROWTH`` (creep of lazily loaded kernels and workspaces stays below);
* gave (almost) nothing back inside it: a release (``empty_cache``) restarts the evidence,
  and the refill up to the peak before it is not evidence (the allocator re-reserving its
  working set after ``empty_cache`` rises fast, like a leak, for a few seconds);
* grew through at least ``MIN_EFFECTIVE`` increments' worth (participation ratio of the
  per-tick increments): one big allocation, or a reserve settling in a few segments, fails;
* grew in each part (about a second) of the window (steady, and still growing now): a burst of segments
  after ``empty_cache`` or a new batch size fails;
* lasted ``required_seconds(seconds to full)``, where "full" is the device's free memory
  (other processes count) at the window's rate.

Windows end now and start at fixed look-backs (``LOOKBACKS``), so a leak's onset between two
ticks is matched by some window that starts near it. Per process the state is a bounded ring
of per-tick prefix sums (``RING`` ticks): a tick costs O(len(LOOKBACKS) x log RING), whatever
the run's length. Growth slower than the ring can show is left to the refresh path.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

#: Growth below this is never called a leak here (as ``growth.NVML_MIN_GROWTH``).
MIN_GROWTH = 256 * 2**20
#: The window's growth must be carried by this many increments' worth ((sum d)^2 / sum d^2):
#: ``EFFECTIVE_PER_TICK`` of its ticks, within ``[MIN_EFFECTIVE, MAX_EFFECTIVE]``. At 1 s ticks
#: a leak gives one increment a tick, so 3.5 is all a 4 s window can show; at 0.1 s ticks a
#: process's warm-up (context, weights, optimizer state, first batches) grows in ~4 large
#: segments over a few seconds, which that bar would call steady.
MIN_EFFECTIVE = 3.5
MAX_EFFECTIVE = 8.0
EFFECTIVE_PER_TICK = 0.3
#: The window is cut into parts of about ``PART_SECONDS`` (3 to ``MAX_PARTS``, never more
#: than its ticks); each must grow at least ``MIN_PART_SHARE`` of an even part. A leak grows
#: all the time; a reserve that grows for new batch sizes does so in bursts with flat seconds
#: between them (at 1 s ticks it is otherwise one large increment a tick, like a leak).
PART_SECONDS = 1.0
MAX_PARTS = 8
MIN_PART_SHARE = 0.25
#: Memory given back inside the window may be at most this share of its growth (plus noise).
MAX_RELEASED_SHARE = 0.05
RELEASE_NOISE = 8 * 2**20
#: Seconds of growth needed: ``BASE + PER_DECADE * log10(seconds_to_full / 600)``, clipped.
#: A 256 MiB/s leak on a free 150 GiB card (full in ~10 min) needs 3 s, 64 MiB/s (~40 min)
#: ~5.4 s, a leak that takes a day ~11.7 s, and never under ``MIN_SECONDS``.
EVIDENCE_BASE = 3.0
EVIDENCE_PER_DECADE = 4.0
MIN_SECONDS = 2.0
MAX_SECONDS = 90.0
#: Windows judged each tick: seconds back from now.
LOOKBACKS = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0, 14.0, 17.0, 20.0,
             24.0, 28.0, 34.0, 40.0, 48.0, 56.0, 64.0, 80.0)  # fmt: skip
#: Ticks of state kept per process (trimmed in halves: amortised O(1) a tick).
RING = 1024
#: A process absent from the readings this long is forgotten.
FORGET_SECONDS = 30.0
#: A verdict is actionable when the device would fill within this many seconds.
ACTIONABLE_SECONDS = 24 * 3600.0


def required_seconds(seconds_to_full: float) -> float:
    """Seconds of steady growth needed before it is called a leak, at this urgency."""
    s = max(float(seconds_to_full), 1e-3)
    need = EVIDENCE_BASE + EVIDENCE_PER_DECADE * math.log10(s / 600.0)
    return float(min(MAX_SECONDS, max(MIN_SECONDS, need)))


@dataclass
class TickGrowth:
    """One GPU process's recent readings as prefix sums, one entry a tick (bounded)."""

    t: list[float] = field(default_factory=list)
    level: list[float] = field(default_factory=list)
    up: list[float] = field(default_factory=list)  # sum of increments so far
    up2: list[float] = field(default_factory=list)  # sum of squared increments
    down: list[float] = field(default_factory=list)  # sum of releases so far
    seen: float = 0.0
    #: the last release (``empty_cache``, freed tensors): no window reaches back past it, and
    #: growth up to the peak before it is a refill of what that cycle gave back, not evidence
    release_t: float = -math.inf
    refill_to: float = 0.0
    peak: float = 0.0
    verdict: Optional[dict[str, Any]] = None

    def update(self, t: float, used: float, device_free: Optional[float]) -> Optional[dict[str, Any]]:
        """Add one tick's reading and return the verdict (None: no leak seen now)."""
        self.seen = t
        if self.t and t <= self.t[-1]:
            return self.verdict  # a repeated or out-of-order tick adds nothing
        used = float(used)
        if self.t:
            d = used - self.level[-1]
            if d < -RELEASE_NOISE:
                self.release_t, self.refill_to, self.peak = float(t), self.peak, used
            self.up.append(self.up[-1] + max(d, 0.0))
            self.up2.append(self.up2[-1] + max(d, 0.0) ** 2)
            self.down.append(self.down[-1] + max(-d, 0.0))
        else:
            self.up.append(0.0)
            self.up2.append(0.0)
            self.down.append(0.0)
        self.peak = max(self.peak, used)
        self.t.append(float(t))
        self.level.append(used)
        if len(self.t) > 2 * RING:
            for col in (self.t, self.level, self.up, self.up2, self.down):
                del col[:RING]
        self.verdict = self._judge(device_free)
        return self.verdict

    def _at(self, when: float) -> int:
        """Index of the last tick at or before ``when`` (0 when none)."""
        return max(0, bisect_right(self.t, when) - 1)

    def _judge(self, device_free: Optional[float]) -> Optional[dict[str, Any]]:
        n = len(self.t)
        if n < 4:
            return None
        now, last = self.t[-1], n - 1
        # quick exit, most ticks of most processes: no growth over the shortest window
        if self.level[last] - self.level[self._at(now - LOOKBACKS[0])] <= 0:
            return None
        for back in LOOKBACKS:
            a = self._at(now - back)
            if now - self.t[a] < back * 0.75 and a == 0:
                break  # the ring does not reach that far back
            verdict = self._window(a, last, device_free)
            if verdict is not None:
                return verdict
        return None

    def _lv(self, i: int) -> float:
        """The level as evidence sees it: a refill below the last cycle's peak counts as flat."""
        return max(self.level[i], self.refill_to)

    def _window(self, a: int, b: int, device_free: Optional[float]) -> Optional[dict[str, Any]]:
        if self.t[a] < self.release_t:
            return None
        growth = self._lv(b) - self._lv(a)
        if growth < MIN_GROWTH:
            return None
        if self.down[b] - self.down[a] > MAX_RELEASED_SHARE * growth + RELEASE_NOISE:
            return None
        s1, s2 = self.up[b] - self.up[a], self.up2[b] - self.up2[a]
        effective = s1 * s1 / s2 if s2 > 0 else 0.0
        if effective < min(MAX_EFFECTIVE, max(MIN_EFFECTIVE, EFFECTIVE_PER_TICK * (b - a))):
            return None
        t0, t1 = self.t[a], self.t[b]
        span = t1 - t0
        if b - a < 3 or span <= 0:
            return None
        parts = min(b - a, max(3, min(MAX_PARTS, int(span / PART_SECONDS))))
        prev = a
        for i in range(1, parts + 1):
            mark = b if i == parts else self._at(t0 + span * i / parts)
            if self._lv(mark) - self._lv(prev) < MIN_PART_SHARE * growth / parts:
                return None
            prev = mark
        rate = growth / span
        free = None if device_free is None else max(0.0, float(device_free))
        to_full = math.inf if free is None else free / rate
        need = required_seconds(to_full)
        if span < need:
            return None
        return {
            "leak": True,
            "actionable": to_full <= ACTIONABLE_SECONDS,
            "onset_time": t0,
            "bytes_per_second": rate,
            "seconds_to_oom": None if free is None else to_full,
            "reason": f"grew {growth / 2**20:.0f} MiB in {span:.1f} s, steadily ({effective:.0f} increments' worth)",
            "evidence_seconds": span,
            "required_seconds": need,
            "evidence_ticks": b - a,
            "required_ticks": need * (b - a) / span,
            "headroom": free,
            "level": self.level[b],
            "growth": growth,
            "t": t1,
        }


class TickJudge:
    """Every GPU process's ``TickGrowth``, fed by the sampler after each tick (on its thread),
    or by ``replay`` with a recorded trace's samples (the CLI): the same code judges both.

    ``capacity`` (the CLI's ``--capacity``) is an upper bound on what a process can reach: its
    headroom is the device's free memory or ``capacity`` less its own use, the tighter.
    ``on_tick`` costs O(processes); ``verdict_for`` is read from other threads: it only reads
    the verdict dicts, which are replaced whole, never changed in place.
    """

    def __init__(self, capacity: Optional[float] = None) -> None:
        self.capacity = capacity
        self._procs: dict[tuple[int, int], TickGrowth] = {}

    def on_tick(self, snap: Any) -> None:
        t = float(snap.t)
        for gpu in snap.gpus:
            if getattr(gpu, "state", "ok") != "ok":
                continue
            procs = [(int(p.pid), float(p.used)) for p in gpu.processes if p.used is not None]
            self.feed(t, int(gpu.index), gpu.mem_total, gpu.mem_used, procs)
        self.forget(t)

    def feed(
        self,
        t: float,
        gpu: int,
        mem_total: Optional[float],
        mem_used: Optional[float],
        procs: Sequence[tuple[int, float]],
    ) -> None:
        """One GPU's readings at one tick: its size, its used memory (all processes), and
        ``(pid, used)`` of each of its processes."""
        free = None
        if mem_total is not None and mem_used is not None:
            free = float(mem_total) - float(mem_used)
        for pid, used in procs:
            state = self._procs.get((gpu, pid))
            if state is None:
                state = self._procs[(gpu, pid)] = TickGrowth()
            room = free
            if self.capacity is not None:
                room = self.capacity - used if room is None else min(room, self.capacity - used)
            state.update(t, used, room)

    def forget(self, t: float) -> None:
        """Drop the processes absent from the readings for ``FORGET_SECONDS``."""
        gone = [k for k, s in self._procs.items() if t - s.seen > FORGET_SECONDS]
        for k in gone:
            del self._procs[k]

    @classmethod
    def replay(cls, rows: Iterable[Mapping[str, Any]], capacity: Optional[float] = None) -> TickJudge:
        """A judge fed a recorded trace's samples (``*.nvml.jsonl`` rows: ``t``, ``mem_total``,
        ``mem_used``, ``procs``; one GPU), tick by tick as the sampler would have fed it."""
        judge = cls(capacity)
        for row in rows:
            if row.get("t") is None:
                continue
            t = float(row["t"])
            procs = [
                (int(p["pid"]), float(p["used"]))
                for p in row.get("procs") or []
                if isinstance(p, Mapping) and p.get("pid") is not None and p.get("used") is not None
            ]
            judge.feed(t, int(row.get("gpu") or 0), row.get("mem_total"), device_used_of(row), procs)
            judge.forget(t)
        return judge

    def verdict_for(self, pids: Any) -> Optional[dict[str, Any]]:
        """The most urgent per-tick verdict among these pids' processes (None: none leaks)."""
        wanted = set(pids)
        best: Optional[dict[str, Any]] = None
        for (gpu, pid), state in list(self._procs.items()):
            v = state.verdict
            if pid not in wanted or v is None:
                continue
            if best is None or more_urgent(v, best):
                best = {**v, "gpu": gpu, "pid": pid}
        return best


def device_used_of(row: Mapping[str, Any]) -> float:
    """A recorded sample's device use: ``mem_used``, or in older samples the processes' sum."""
    used = row.get("mem_used")
    if used is None:
        used = sum(p.get("used") or 0 for p in row.get("procs") or [] if isinstance(p, Mapping))
    return float(used)


def _urgency(v: Optional[dict[str, Any]]) -> float:
    """Seconds to full of an actionable verdict; infinity for anything else."""
    if not v or not v.get("actionable"):
        return math.inf
    s = v.get("seconds_to_oom")
    return float(s) if s is not None else 1e12


def more_urgent(new: Optional[dict[str, Any]], old: Optional[dict[str, Any]]) -> bool:
    """True when ``new`` is an actionable leak that fills sooner than ``old`` (or ``old`` is none)."""
    return _urgency(new) < _urgency(old)
