"""Per-kernel GPU view: attribution + probe readings + leak verdicts, refreshed periodically.

The ``kernels`` endpoint serves the last refresh; the refresh runs on the event loop
every ``period`` seconds and pushes its file and psutil work into a thread.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

import numpy as np

from .kernels import Attribution
from .probes import ProbeFollower, Probes
from .wording import leak_message

log = logging.getLogger(__name__)



def steps_report(follower: ProbeFollower) -> Optional[dict[str, Any]]:
    """Leak verdict on a probe's per-step readings."""
    steps = list(follower.steps)
    if len(steps) < 3:
        return None
    idx = np.array([s["i"] for s in steps], dtype=float)
    alloc = np.array([s.get("allocated") or 0 for s in steps], dtype=float)
    reserved = np.array([s.get("reserved") or 0 for s in steps], dtype=float)
    t = np.array([s.get("t") or 0 for s in steps], dtype=float)
    limit = follower.meta.get("limit") or steps[-1].get("limit")
    from . import leaks  # scipy: imported on first use, not at server start

    report = leaks.analyze_steps(idx, alloc, reserved=reserved, capacity=limit, t=t).to_json()
    report["source"] = "steps"
    report["current_step"] = int(idx[-1])
    report["message"] = leak_message(report)
    report["forecast"] = forecast_line(report, "step", float(idx[-1]), report.get("steps_to_oom"))
    return report


def forecast_line(report: dict[str, Any], axis: str, now: float, to_oom: Optional[float]) -> Optional[dict[str, Any]]:
    """The chart's dashed line: from the memory counted against the limit now to the limit at
    the forecast OOM, on the chart's x axis (steps, or Unix seconds)."""
    level, capacity = report.get("level"), report.get("capacity")
    if not report.get("actionable") or to_oom is None or level is None or not capacity:
        return None
    return {"axis": axis, "x0": now, "y0": float(level), "x1": now + float(to_oom), "y1": float(capacity)}


def nvml_report(t: np.ndarray, used: np.ndarray, capacity: Optional[float]) -> Optional[dict[str, Any]]:
    """Leak verdict on NVML's per-process memory over time (no probe needed)."""
    if len(t) < 10 or not capacity:
        return None
    from . import leaks

    report = leaks.analyze_time(t, used, capacity=capacity).to_json()
    report["source"] = "nvml"
    report["message"] = leak_message(report)
    report["forecast"] = forecast_line(report, "time", float(t[-1]), report.get("seconds_to_oom"))
    return report


class KernelTracker:
    def __init__(self, serverapp: Any, sampler: Any, probes: Probes, period: float = 2.0, triage_on_alarm: bool = True) -> None:
        self.sampler = sampler
        self.probes = probes
        self.triage_on_alarm = triage_on_alarm
        self.attribution = Attribution(serverapp, sampler, probes)
        self.period = period
        self.doc: dict[str, Any] = {"kernels": [], "pid_namespace": "host"}
        self._task: Optional[asyncio.Task[None]] = None
        self._lock: Optional[asyncio.Lock] = None
        self.refreshed = False

    def _serial(self) -> asyncio.Lock:
        # refreshes (periodic, and on request) and triage requests all read the probes'
        # files and advance their followers: one at a time. Created on first use, in the loop.
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def request_triage(self, *, kernel_id: Optional[str] = None, pid: Optional[int] = None) -> dict[str, Any]:
        """Ask a probe (the kernel's, or the script's with that pid) to record a few steps of
        allocation history. Raises ``LookupError`` when there is no such running probe."""
        async with self._serial():
            return await asyncio.get_running_loop().run_in_executor(None, self._request_triage, kernel_id, pid)

    def _request_triage(self, kernel_id: Optional[str], pid: Optional[int]) -> dict[str, Any]:
        self.probes.poll()  # drops ended probes
        if kernel_id is not None:
            probe = self.probes.main_for_kernel(kernel_id, self.attribution.pids_of(kernel_id))
        else:
            probe = self.probes.followers.get(pid) if pid is not None else None
        if probe is None:
            raise LookupError(kernel_id if kernel_id is not None else pid)
        return probe.request_triage()

    def owner_of(self, pid: int) -> Optional[dict[str, Any]]:
        return self.attribution.owner_of(pid)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep tracking; the API serves the last good view
                log.exception("kernel tracking refresh failed")
            await asyncio.sleep(self.period)

    async def refresh(self) -> dict[str, Any]:
        async with self._serial():
            state = await self.attribution.refresh()
            loop = asyncio.get_running_loop()
            self.doc = await loop.run_in_executor(None, self._build, state)
            self.refreshed = True
            return self.doc

    def _build(self, state: Any) -> dict[str, Any]:
        self.probes.poll()
        capacity = {d.index: d.memory_total for d in self.sampler.devices}
        snap = self.sampler.snapshot()
        kernels = []
        attached: set[int] = set()
        for kid, ref in state.kernels.items():
            pids = self.attribution.pids_of(kid)
            memory: dict[str, int] = {}
            series: dict[tuple[int, int], Any] = {}
            for gpu in snap.gpus if snap else []:
                for p in gpu.processes:
                    if p.pid in pids:
                        memory[str(gpu.index)] = memory.get(str(gpu.index), 0) + (p.used or 0)
                        rows = self.sampler.history.process_series(gpu.index, p.pid)
                        if rows is not None and len(rows):
                            series[(gpu.index, p.pid)] = rows
            history, leak = self._kernel_history(series, capacity)
            all_pids = pids + [state.kernel_pids.get(kid, -1)]
            attached.update(f.pid for f in self.probes.for_kernel(kid, all_pids))
            main = self.probes.main_for_kernel(kid, all_pids)
            probe = None
            if main is not None:
                probe, steps_leak = self._probe_view(main)
                leak = steps_leak or leak  # per-step readings beat NVML's coarse reserve
            kernels.append(
                {
                    "kernel_id": kid,
                    "kernel_name": ref.kernel_name,
                    "notebook": ref.notebook,
                    "execution_state": ref.execution_state,
                    "user": ref.user,
                    "pid": state.kernel_pids.get(kid),
                    "pids": pids,
                    "memory": memory,
                    "history": history,
                    "probe": probe,
                    "leak": leak,
                }
            )
        # probes in no kernel: scripts and torchrun ranks that called probe.start() (poll has
        # already dropped those whose process ended)
        scripts = []
        for f in sorted(self.probes.followers.values(), key=lambda f: f.pid):
            if f.pid in attached:
                continue
            probe, leak = self._probe_view(f)
            scripts.append({"pid": f.pid, "argv": list(f.meta.get("argv") or []), "rank": f.meta.get("rank"),
                            "owner": self.attribution.owner_of(f.pid), "probe": probe, "leak": leak})
        return {"kernels": kernels, "scripts": scripts, "pid_namespace": state.pid_namespace}

    def _probe_view(self, main: ProbeFollower) -> tuple[dict[str, Any], Optional[dict[str, Any]]]:
        """A probe's summary and its per-step leak verdict; asks for a triage on the first alarm."""
        leak = steps_report(main)
        if leak is not None and self.triage_on_alarm and leak["actionable"] and main.triage is None:
            # once per probe: the allocation history of a few steps names the line
            try:
                main.request_triage(auto=True)
            except OSError:
                log.warning("cannot ask probe %s for a triage", main.pid, exc_info=True)
        probe = main.summary()
        probe["cells"] = leaks_per_cell(main)
        probe["fragmentation"] = fragmentation(main)
        return probe, leak

    def _kernel_history(
        self, series: dict[tuple[int, int], Any], capacity: dict[int, Optional[int]]
    ) -> tuple[dict[str, Any], Optional[dict[str, Any]]]:
        """The kernel's GPU memory over time (its processes summed on the sampler's time grid)."""
        if not series:
            return {"t": [], "used": []}, None
        # every process series shares the sampler's tick times; sum on the union of them
        times = np.unique(np.concatenate([rows[:, 0] for rows in series.values()]))
        total = np.zeros(len(times))
        for rows in series.values():
            pos = np.searchsorted(times, rows[:, 0])
            total[pos] += np.nan_to_num(rows[:, 1])
        gpu = next(iter(series))[0]
        leak = nvml_report(times, total, capacity.get(gpu))
        step = max(1, len(times) // 600)  # the panel's chart needs no more than ~600 points
        return {"t": times[::step].tolist(), "used": total[::step].astype(int).tolist()}, leak


def leaks_per_cell(follower: ProbeFollower) -> Optional[dict[str, Any]]:
    cells = list(follower.cells)
    if len(cells) < 3:
        return None
    from . import leaks

    fn = getattr(leaks, "analyze_cells", None)
    return fn(cells) if fn is not None else None


def fragmentation(follower: ProbeFollower) -> Optional[dict[str, Any]]:
    steps = list(follower.steps)
    if not steps:
        return None
    from . import leaks

    fn = getattr(leaks, "analyze_fragmentation", None)
    limit = follower.meta.get("limit")
    return fn(steps, limit) if fn is not None else None
