"""``GET kernels`` and the actions on a kernel or a probed script from the panel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from tornado import web

from ..kernels.tracker import NotAScript
from ..memory.wording import human_bytes
from ..probe import protocol
from .base import BaseHandler
from .placement import restart_gpus

ACTIONS = ("interrupt", "restart", "shutdown", "probe", "triage", "release")
#: Largest pid a kernel may have (Linux's pid_max is at most 2**22).
MAX_PID = 2**22


class KernelsHandler(BaseHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        raw = self.get_argument("refresh", "0")
        if raw not in ("0", "1"):
            raise web.HTTPError(400, f"refresh must be 0 or 1, got {raw[:20]!r}")
        tracker = self.panel.tracker
        if raw == "1" or not tracker.refreshed:
            await tracker.refresh()
        body = tracker.doc_bytes  # encoded on the probe thread: a hundred probes make megabytes
        if body is None:
            self.write_json(tracker.doc)
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(body)


class KernelActionHandler(BaseHandler):
    @web.authenticated
    @authorized
    async def post(self, kernel_id: str, action: str) -> None:
        if action not in ACTIONS:
            raise web.HTTPError(400, f"unknown action {action[:40]!r}; choose from {', '.join(ACTIONS)}")
        km = self.kernel_manager
        if kernel_id not in km:
            raise web.HTTPError(404, f"no kernel {kernel_id}")
        # acting on a kernel is what the kernels API allows: ask the same authorizer
        if not await ensure_async(self.authorizer.is_authorized(self, self.current_user, "execute", "kernels")):
            raise web.HTTPError(403, "not allowed to act on kernels")
        if action == "triage":
            steps = await ask_triage(
                self, (409, "this kernel runs no memory probe: load it first (Track memory)"), kernel_id=kernel_id
            )
            self.write_json({"kernel_id": kernel_id, "action": action, "requested": True, "steps": steps}, status=202)
            return
        if action == "probe":
            result = await load_probe(km, kernel_id)
            self.write_json({"kernel_id": kernel_id, "action": action, **result})
            return
        if action == "release":
            result = await release_cached(self, kernel_id)
            self.write_json({"kernel_id": kernel_id, "action": action, **result})
            return
        gpus = None
        if action == "restart":
            # claimed before the placement is touched: a second click must not void the first's GPU choice
            with restart_claim(self, kernel_id):
                gpus = restart_gpus(self, kernel_id)  # Restart on GPU N; None: a plain restart
                try:
                    await restart_kernel(self, kernel_id)
                finally:
                    self.panel.placer.requests.pop(kernel_id, None)  # taken by the start, or void with a failed one
        elif action == "interrupt":
            # jupyter_client annotates the sync manager's None; the server's async manager returns a coroutine
            await ensure_async(km.interrupt_kernel(kernel_id))  # type: ignore[func-returns-value]
        else:
            await ensure_async(km.shutdown_kernel(kernel_id))
        moved = {"gpus": gpus} if gpus is not None else {}
        self.write_json({"kernel_id": kernel_id, "action": action, "ok": True, **moved})


#: ``handler.settings`` key of the kernel ids this server is restarting through the panel
RESTARTING = "gpu_panel_restarting"
RESTART_IN_PROGRESS = "restart in progress: this kernel is already restarting; wait for it to finish"


@contextmanager
def restart_claim(handler: BaseHandler, kernel_id: str) -> Iterator[None]:
    """Hold the kernel's restart, or 409 while one of it is under way.

    Two overlapping restarts (a double click) made jupyter_client start two kernel processes
    and fail the second request with an InvalidStateError (a 500). The set lives in the
    server's settings: one per server, shared by every request.
    """
    restarting: set[str] = handler.settings.setdefault(RESTARTING, set())
    if kernel_id in restarting:
        raise web.HTTPError(409, RESTART_IN_PROGRESS)
    restarting.add(kernel_id)
    try:
        yield
    finally:
        restarting.discard(kernel_id)


async def restart_kernel(handler: BaseHandler, kernel_id: str) -> None:
    try:
        await ensure_async(handler.kernel_manager.restart_kernel(kernel_id))
    except asyncio.InvalidStateError:  # a restart asked elsewhere (the notebook's own toolbar) overlapped
        raise web.HTTPError(409, RESTART_IN_PROGRESS) from None


class ProbeTriageHandler(BaseHandler):
    """``POST probes/{pid}/triage``: a script's probe (no kernel) records a few steps of allocations."""

    @web.authenticated
    @authorized
    async def post(self, pid: str) -> None:
        number = self.int_arg(pid, "pid", 1, MAX_PID)
        try:
            steps = await ask_triage(self, (404, f"no running memory probe with pid {number}"), pid=number)
        except NotAScript as exc:  # only a listed script: a kernel's probe, or a refused one, is not
            raise web.HTTPError(exc.status, str(exc)) from None
        self.write_json({"pid": number, "action": "triage", "requested": True, "steps": steps}, status=202)


async def ask_triage(handler: BaseHandler, missing: tuple[int, str], **target: Any) -> int:
    """Have the tracker ask a probe for a triage; the steps it will record. ``missing``: the
    status and message when there is no such probe."""
    try:
        triage = await handler.panel.tracker.request_triage(**target)
    except LookupError:
        raise web.HTTPError(*missing) from None
    except OSError as exc:
        raise web.HTTPError(409, f"cannot reach the probe: {exc.strerror or exc}") from None
    return int(triage["steps"])


async def run_in_kernel(km: Any, kernel_id: str, code: str, timeout: float = 10.0) -> tuple[bool, str]:
    """Run ``code`` in the kernel (outside its history); (finished in time, its printed output).
    A busy kernel runs it when its cell ends: (False, "") comes back at once then."""
    kernel = km.get_kernel(kernel_id)
    client = kernel.client()
    client.start_channels()
    try:
        if getattr(kernel, "execution_state", None) == "busy":
            client.execute(code, silent=False, store_history=False)
            return False, ""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # iopub is a subscription: until it is connected the kernel's output and its "idle" are
        # lost (a kernel just restarted answers before the socket joins). Ready = a kernel_info
        # answer seen on iopub, so what the code prints next is not missed.
        try:
            await ensure_async(client.wait_for_ready(timeout=timeout))
        except RuntimeError:  # not ready in time, or it died
            return False, ""
        msg_id = client.execute(code, silent=False, store_history=False)
        text = []
        while loop.time() < deadline:
            try:
                msg = await ensure_async(client.get_iopub_msg(timeout=1))
            except Exception:  # noqa: BLE001 - queue.Empty: keep waiting until the deadline
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                text.append(msg["content"].get("text", ""))
            elif kind == "error":
                text.append(f"{msg['content'].get('ename')}: {msg['content'].get('evalue')}")
            elif kind == "status" and msg["content"].get("execution_state") == "idle":
                return True, "".join(text).strip()
        return False, "".join(text).strip()
    finally:
        client.stop_channels()


async def load_probe(km: Any, kernel_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """Start the probe in the kernel; the kernel's answer. A busy kernel starts it when its cell ends."""
    busy = getattr(km.get_kernel(kernel_id), "execution_state", None) == "busy"
    done, message = await run_in_kernel(km, kernel_id, protocol.LOAD_CODE, timeout)
    if busy:
        return {
            "ok": True,
            "queued": True,
            "message": "The kernel is busy: the probe starts when the running cell ends.",
        }
    if not done and not message:
        message = f"The kernel did not answer within {timeout:.0f} s."
    return {"ok": protocol.load_succeeded(message), "queued": False, "message": message}


async def release_cached(handler: BaseHandler, kernel_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """*Release cached memory* in an idle kernel: torch's cache emptied, the variables kept; what the
    kernel's allocator gave back, and what NVML shows for the kernel's processes before and after."""
    km = handler.kernel_manager
    if getattr(km.get_kernel(kernel_id), "execution_state", None) == "busy":
        raise web.HTTPError(409, "the kernel is busy: release its cached memory when its cell has ended")
    tracker = handler.panel.tracker
    before = tracker.kernel_gpu_memory(kernel_id)
    tracker.own_activity_starts(kernel_id)  # the release is ours: it must not reset the idle time
    done, output = await run_in_kernel(km, kernel_id, protocol.RELEASE_CODE, timeout)
    tracker.own_activity_ends(kernel_id)
    line = next((x for x in output.splitlines() if x.startswith(protocol.RELEASED_PREFIX)), None)
    if not done or line is None:
        return {"ok": False, "message": output or f"The kernel did not answer within {timeout:.0f} s."}
    report = json.loads(line[len(protocol.RELEASED_PREFIX) :])
    await asyncio.sleep(2 * handler.panel.sampler.interval)  # NVML sees the change on a later tick
    after = tracker.kernel_gpu_memory(kernel_id)
    freed = max(0, report[protocol.RELEASE_RESERVED_BEFORE] - report[protocol.RELEASE_RESERVED_AFTER])
    if not report[protocol.RELEASE_TORCH]:
        message = "This kernel has not imported torch: there is no torch cache to release."
    elif not report[protocol.RELEASE_CUDA]:
        message = "torch in this kernel has not used a GPU: nothing to release."
    else:
        # what stays cached sits in segments that also hold live tensors: torch cannot return it
        stuck = max(0, report[protocol.RELEASE_RESERVED_AFTER] - report.get(protocol.RELEASE_ALLOCATED_AFTER, 0))
        message = (
            f"Released {human_bytes(freed)} of torch's cached GPU memory; the kernel's variables are kept."
            if freed
            else "Nothing could be released."
        )
        if stuck >= 64 * 2**20:
            message += (
                f" {human_bytes(stuck)} stays cached in blocks that share their segments with live tensors "
                "(fragmentation): only Restart gives that back."
            )
    return {"ok": True, "message": message, "freed": freed, "nvml_before": before, "nvml_after": after, **report}
