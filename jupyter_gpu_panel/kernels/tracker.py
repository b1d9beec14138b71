"""Per-kernel GPU view: attribution + probe readings + leak verdicts, refreshed periodically.

The ``kernels`` endpoint serves the last refresh; the refresh runs on the event loop every
``period`` seconds. psutil work runs in the default executor; everything that touches the
probe files (polling, building the view, triage requests) runs on the tracker's one
probe-reading thread, which is what keeps two readers from taking the same lines: no lock is
held across I/O, and a refresh that waits on that thread too long answers with the last view.

A refresh costs what changed: each follower reads only new bytes into its step window, a
probe with nothing new keeps its part of the document (``probe_view``), where each probe goes
is decided once per process (``probe_owner.ProbeOwners``, ``processes.ProcessTable``: one
/proc read a probe a refresh), requests arriving during a refresh share views rather than
queue them (``refresh``), and leak verdicts are re-made for the
probes with new steps, stalest first, within a budget of seconds a refresh (a probe never
judged yet always is, and one stale probe at least): ``JUDGE_BUDGET`` for the periodic refresh,
which keeps verdicts fresh, ``REQUEST_JUDGE_BUDGET`` for a refresh a request asks for, so its
answer does not wait on the detector and clients asking often do not multiply its cost. With
a hundred busy probes a verdict is then up to tens of seconds old; its ``current_step`` says
which step it judged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

import numpy as np
import orjson
from jupyter_core.utils import ensure_async

from ..memory.follower import ProbeFollower, Probes
from ..memory.tick_growth import TickJudge
from ..memory.verdict import nvml_final_verdict
from .attribution import Attribution
from .idle import idle_view, to_cull
from .probe_owner import ProbeOwners
from .probe_view import ProbeViews

log = logging.getLogger(__name__)

#: Kernel messages this long after the panel's own execution still count as that execution.
OWN_ACTIVITY_GRACE = 2.0
#: Seconds a refresh waits for the probe files before answering with the last view.
PROBE_IO_TIMEOUT = 5.0
#: Seconds of re-judging (2-20 ms a probe of 20,000 steps) the periodic refresh may spend on
#: probes with new steps: at most ~2.5 % of a core every 2 s, a few probes each time.
JUDGE_BUDGET = 0.05
#: ... and a refresh a request asks for (``GET kernels?refresh=1``).
REQUEST_JUDGE_BUDGET = 0.01


class KernelTracker:
    def __init__(
        self,
        serverapp: Any,
        sampler: Any,
        probes: Probes,
        period: float = 2.0,
        triage_on_alarm: bool = True,
        idle_after: float = 900.0,
        cull_after: float = 0.0,
    ) -> None:
        self.serverapp = serverapp
        self.idle_after = idle_after
        self.cull_after = cull_after
        #: kernels shut down for sitting idle on GPU memory (newest last, bounded)
        self.culled: list[dict[str, Any]] = []
        self._culling: set[str] = set()
        #: kernel id -> (the user's last activity before the panel ran code there, ours ended by)
        self._own_activity: dict[str, tuple[float, float]] = {}
        self.sampler = sampler
        self.probes = probes
        self.attribution = Attribution(serverapp, sampler, probes)
        #: NVML verdicts re-made every sampler tick, on the sampler thread (O(processes) a tick):
        #: a fast leak is flagged in seconds, not after the refresh path's ten readings
        self.ticks = TickJudge()
        if hasattr(sampler, "add_listener"):
            sampler.add_listener(self.ticks.on_tick)
        #: which probe goes to which kernel (or is a script, or is refused), decided after each poll
        self.probe_owners = ProbeOwners(self.attribution.kernels_of, self.attribution.kernel_set)
        self.period = period
        self.doc: dict[str, Any] = {
            "kernels": [],
            "scripts": [],
            "pid_namespace": "host",
            "probe_warnings": [],
            "culled": [],
        }
        self._task: Optional[asyncio.Task[None]] = None
        self._probe_io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpu-panel-probes")
        self.refreshed = False
        #: called on the event loop with the new document when a refresh changed it
        self.on_change: Optional[Callable[[dict[str, Any]], None]] = None
        #: (kernel id, kernel pid) -> the row's ``placement`` (the placer's view; reads /proc)
        self.placement_view: Optional[Callable[[str, Optional[int]], dict[str, Any]]] = None
        #: ``doc`` encoded (``encode_doc``), made on the probe thread with it (None: not at hand)
        self.doc_bytes: Optional[bytes] = None
        self._pushed: Optional[bytes] = b""  # the encoding last handed to ``on_change``
        #: seconds of re-judging a refresh may spend: asked by a request, and the periodic one
        self.judge_budget = REQUEST_JUDGE_BUDGET
        self.periodic_judge_budget = JUDGE_BUDGET
        #: the view being made now: a request arriving meanwhile waits for it (``refresh``)
        self._viewing: Optional[asyncio.Future[Optional[float]]] = None
        #: set when a request waits on the running refresh: its re-judging stops at the next probe
        self._hurry = threading.Event()
        #: each probe's part of the document and its verdict, re-judged within a budget
        self.views = ProbeViews(probes, triage_on_alarm, self._hurry)
        self._encoded: Optional[tuple[dict[str, Any], bytes]] = None  # the last build's, on the probe thread

    async def _on_probe_thread(self, fn: Any, *args: Any) -> Any:
        future = asyncio.wrap_future(self._probe_io.submit(fn, *args))
        return await asyncio.wait_for(asyncio.shield(future), timeout=PROBE_IO_TIMEOUT)

    async def request_triage(self, *, kernel_id: Optional[str] = None, pid: Optional[int] = None) -> dict[str, Any]:
        """Ask a probe (the kernel's, or the script's with that pid) to record a few steps of
        allocation history. Raises ``LookupError`` when there is no such running probe."""
        await self.attribution.refresh()  # a kernel started since the last refresh owns its probe too
        try:
            return await self._on_probe_thread(self._request_triage, kernel_id, pid)
        except asyncio.TimeoutError:
            raise OSError(0, "the probe files did not answer in time") from None

    def _request_triage(self, kernel_id: Optional[str], pid: Optional[int]) -> dict[str, Any]:
        self.probes.poll()  # drops ended probes
        self.probe_owners.assign(self.probes)
        if kernel_id is not None:
            probe = self.probes.main_for_kernel(kernel_id)
        else:
            probe = self._script(pid)
        if probe is None:
            raise LookupError(kernel_id if kernel_id is not None else pid)
        return probe.request_triage()

    def _script(self, pid: Optional[int]) -> Optional[ProbeFollower]:
        """The listed script with that pid; ``NotAScript`` for a kernel's or a refused probe."""
        owners = self.probes.owners
        if pid in self.probe_owners.refused:
            raise NotAScript(404, f"the memory probe file of pid {pid} is refused: {self.probe_owners.refused[pid]}")
        if pid in owners and owners[pid] is not None:
            raise NotAScript(409, f"pid {pid} runs kernel {owners[pid]}'s memory probe: ask that kernel's triage")
        return self.probes.followers.get(pid) if pid in owners else None

    def own_activity_starts(self, kernel_id: str) -> None:
        """The panel runs code in an idle kernel (Release cached memory): remember when the user
        last used it, so the kernel's idle time goes on from there."""
        ref = self.attribution.state.kernels.get(kernel_id)
        if ref is not None and ref.last_activity is not None:
            self._own_activity[kernel_id] = (ref.last_activity, math.inf)

    def own_activity_ends(self, kernel_id: str) -> None:
        if kernel_id in self._own_activity:
            self._own_activity[kernel_id] = (self._own_activity[kernel_id][0], time.time() + OWN_ACTIVITY_GRACE)

    def _user_last_activity(self, kernel_id: str, last_activity: Optional[float]) -> Optional[float]:
        """``last_activity`` without the panel's own executions in it."""
        own = self._own_activity.get(kernel_id)
        if own is None or last_activity is None:
            return last_activity
        before, until = own
        if last_activity <= until:
            return before
        del self._own_activity[kernel_id]  # the user ran something since
        return last_activity

    def kernel_gpu_memory(self, kernel_id: str) -> int:
        """Bytes NVML shows for the kernel's processes now (its pids as last attributed)."""
        pids = set(self.attribution.pids_of(kernel_id))
        snap = self.sampler.snapshot()
        return sum(p.used or 0 for g in (snap.gpus if snap else []) for p in g.processes if p.pid in pids)

    def owner_of(self, pid: int) -> Optional[dict[str, Any]]:
        return self.attribution.owner_of(pid)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._viewing is not None:
            self._viewing.cancel()
        self._probe_io.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh(self.periodic_judge_budget)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kernel tracking refresh failed")
            await asyncio.sleep(self.period)

    async def refresh(self, judge_budget: Optional[float] = None) -> dict[str, Any]:
        """A new view; ``judge_budget``: seconds it may spend re-judging probes with new steps
        (default: a request's, ``judge_budget``).

        Views are shared: a call while one is being made (the periodic refresh's, or another
        client's) waits for it, and answers it when it read the probe files after the call
        began; otherwise (it read them earlier: "now" would not hold) the calls that waited
        share the next view, rather than each queueing a read of every probe on the probe
        thread. A view someone waits for re-judges no further probe, so the wait is short.
        Culling and the push to websockets stay with the call that made the view."""
        asked = time.monotonic()
        while self._viewing is not None and not self._viewing.done():
            self._hurry.set()
            read_at = await asyncio.shield(self._viewing)  # a client going away does not cancel it
            if read_at is not None and read_at >= asked:
                return self.doc
        self._hurry.clear()
        task = self._viewing = asyncio.ensure_future(self._view(judge_budget))
        task.add_done_callback(_retrieved)  # its waiters have the error; none left: no "never retrieved"
        await asyncio.shield(task)
        culled = self.culled
        await self._cull()
        if self.culled is not culled:  # a kernel was shut down: the document says so
            self.doc_bytes = self._encoded = None  # _cull changed the document in place
            try:
                self.doc_bytes = await self._on_probe_thread(encode_doc, self.doc)
            except asyncio.TimeoutError:
                pass
        if self.doc_bytes != self._pushed:
            self._pushed = self.doc_bytes
            if self.on_change is not None:
                self.on_change(self.doc)
        return self.doc

    async def _view(self, judge_budget: Optional[float]) -> Optional[float]:
        """``doc`` and ``doc_bytes`` made anew (kept as they were when the probe thread is too
        slow); returns when (``time.monotonic``) it began reading the probe files (None: it did not)."""
        state = await self.attribution.refresh()
        budget = self.judge_budget if judge_budget is None else judge_budget
        read_at = None
        try:
            self.doc, self.doc_bytes, read_at = await self._on_probe_thread(self._build_encoded, state, budget)
        except asyncio.TimeoutError:
            log.warning("kernel view: the probe files took over %.0f s; serving the last view", PROBE_IO_TIMEOUT)
        self.refreshed = True
        return read_at

    async def _cull(self) -> None:
        """``cull_idle_gpu_kernels_after``: shut down idle holders past it; never a busy kernel."""
        km = self.serverapp.kernel_manager
        for kid in to_cull(self.doc["kernels"], self.cull_after):
            kernel = km.get_kernel(kid) if kid in km else None
            if kernel is None or kid in self._culling or getattr(kernel, "execution_state", None) != "idle":
                continue  # gone, already being shut down by a concurrent refresh, or awake again
            self._culling.add(kid)
            row = next(k for k in self.doc["kernels"] if k["kernel_id"] == kid)
            held = sum(row["memory"].values())
            log.warning(
                "culling kernel %s (%s): idle %.0f s while holding %d bytes of GPU memory",
                kid, row["notebook"], row["idle"]["seconds"], held,
            )  # fmt: skip
            try:
                await ensure_async(km.shutdown_kernel(kid))
            finally:
                self._culling.discard(kid)
            entry = {"kernel_id": kid, "notebook": row["notebook"], "t": time.time(),
                     "idle_seconds": row["idle"]["seconds"], "memory": held}  # fmt: skip
            self.culled = [*self.culled, entry][-20:]
        self.doc["culled"] = list(self.culled)

    def _build_encoded(self, state: Any, judge_budget: float) -> tuple[dict[str, Any], bytes, float]:
        """The new document, its encoding and when the probe files were read: a hundred probes'
        charts are megabytes of JSON, encoded here on the probe thread rather than on the event
        loop; an unchanged document is answered with its encoding as it was."""
        read_at = time.monotonic()
        self._read_probes(state, judge_budget)
        doc = self._build(state)
        last = self._encoded
        if last is None or not same(doc, last[0]):
            last = self._encoded = (doc, encode_doc(doc))
        return (*last, read_at)

    def _read_probes(self, state: Any, judge_budget: float) -> None:
        """The refresh's steps before the view: read the probe files, match probes to owners,
        re-judge, then ask newly alarmed probes for a triage (the one file this writes)."""
        self.probes.poll()
        self.probe_owners.assign(self.probes)
        self.views.judge_stale(judge_budget)
        shown = [self.probes.main_for_kernel(kid) for kid in state.kernels]
        self.views.auto_triage([*shown, *self.probes.scripts()])

    def _build(self, state: Any) -> dict[str, Any]:
        """The read view from what ``_read_probes`` left on the followers; writes no file."""
        capacity = {d.index: d.memory_total for d in self.sampler.devices}
        snap = self.sampler.snapshot()
        kernels = []
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
            history, leak = self._kernel_history(series, capacity, snap, pids)
            main = self.probes.main_for_kernel(kid)
            probe = None
            if main is not None:
                probe, steps_leak = self.views.view(main)
                leak = steps_leak or leak  # per-step readings beat NVML's coarse reserve
            idle = idle_view(
                ref.execution_state,
                self._user_last_activity(kid, ref.last_activity),
                sum(memory.values()),
                main.last_reading() if main is not None else None,
                now=time.time(),
                idle_after=self.idle_after,
            )
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
                    "idle": idle,
                    "placement": self.placement_view(kid, state.kernel_pids.get(kid))
                    if self.placement_view is not None
                    else None,
                }
            )
        return {
            "kernels": kernels,
            "scripts": self.views.scripts(self.attribution.owner_of),
            "pid_namespace": state.pid_namespace,
            "probe_warnings": list(self.probes.warnings),
            "culled": list(self.culled),
        }

    def _kernel_history(
        self, series: dict[tuple[int, int], Any], capacity: dict[int, Optional[int]], snap: Any, pids: Any
    ) -> tuple[dict[str, Any], Optional[dict[str, Any]]]:
        """The kernel's GPU memory over time (its processes summed on the sampler's time grid) and
        its NVML verdict: ``memory.verdict.nvml_final_verdict``, the CLI's own, on that series and
        the per-tick judge's verdict on its pids, with the device's total and used memory at the
        latest tick, so other processes on the card shorten the forecast."""
        if not series:
            return {"t": [], "used": []}, None
        # every process series shares the sampler's tick times; sum on the union of them
        times = np.unique(np.concatenate([rows[:, 0] for rows in series.values()]))
        total = np.zeros(len(times))
        for rows in series.values():
            pos = np.searchsorted(times, rows[:, 0])
            total[pos] += np.nan_to_num(rows[:, 1])
        gpu = next(iter(series))[0]
        reading = next((g for g in snap.gpus if g.index == gpu), None) if snap else None
        card = (reading.mem_total if reading is not None else None) or capacity.get(gpu)
        used = reading.mem_used if reading is not None else None
        leak = nvml_final_verdict(times, total, total=card, device_used=used, tick=self.ticks.verdict_for(pids))
        step = max(1, len(times) // 600)  # the panel's chart needs no more than ~600 points
        return {"t": times[::step].tolist(), "used": total[::step].astype(int).tolist()}, leak


class NotAScript(Exception):
    """A triage asked by pid of a probe that is not a listed script; ``status``: 404 or 409."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def same(doc: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two documents are equal; cheap, since unchanged probes' parts are the same objects
    in both (an array somewhere, whose ``==`` is elementwise, counts as a change)."""
    try:
        return bool(doc == other)
    except (ValueError, TypeError):
        return False


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def encode_doc(doc: dict[str, Any]) -> bytes:
    """The kernels document as the API writes it (``api.base.strict_json``: NaN and infinities as null)."""
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
