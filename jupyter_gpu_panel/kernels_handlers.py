"""``GET kernels`` and the actions on a kernel from the panel."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from tornado import web

from .handlers import API, BaseHandler

ACTIONS = ("interrupt", "restart", "shutdown", "probe", "triage")
PROBE_CODE = "%load_ext jupyter_gpu_panel"


class KernelsHandler(BaseHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        tracker = self.panel.tracker
        tracker.start()  # idempotent; servers that never ran the start hook get it here
        if self.get_argument("refresh", "0") == "1" or not tracker.refreshed:
            await tracker.refresh()
        self.write_json(tracker.doc)


class KernelActionHandler(BaseHandler):
    @web.authenticated
    @authorized
    async def post(self, kernel_id: str, action: str) -> None:
        if action not in ACTIONS:
            raise web.HTTPError(400, f"unknown action {action!r}; choose from {', '.join(ACTIONS)}")
        km = self.kernel_manager
        if kernel_id not in km:
            raise web.HTTPError(404, f"no kernel {kernel_id}")
        # acting on a kernel is what the kernels API allows: ask the same authorizer
        if not await ensure_async(self.authorizer.is_authorized(self, self.current_user, "execute", "kernels")):
            raise web.HTTPError(403, "not allowed to act on kernels")
        if action == "interrupt":
            await ensure_async(km.interrupt_kernel(kernel_id))
        elif action == "restart":
            await ensure_async(km.restart_kernel(kernel_id))
        elif action == "shutdown":
            await ensure_async(km.shutdown_kernel(kernel_id))
        elif action == "triage":
            steps = await ask_triage(self, (409, "this kernel runs no memory probe: load it first (Track memory)"), kernel_id=kernel_id)
            self.write_json({"kernel_id": kernel_id, "action": action, "requested": True, "steps": steps}, status=202)
            return
        else:
            result = await load_probe(km, kernel_id)
            self.write_json({"kernel_id": kernel_id, "action": action, **result})
            return
        self.write_json({"kernel_id": kernel_id, "action": action, "ok": True})


class ProbeTriageHandler(BaseHandler):
    """``POST probes/{pid}/triage``: a script's probe (no kernel) records a few steps of allocations."""

    @web.authenticated
    @authorized
    async def post(self, pid: str) -> None:
        steps = await ask_triage(self, (404, f"no running memory probe with pid {pid}"), pid=int(pid))
        self.write_json({"pid": int(pid), "action": "triage", "requested": True, "steps": steps}, status=202)


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


async def load_probe(km: Any, kernel_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """Run ``%load_ext jupyter_gpu_panel`` in the kernel (silently, outside its history).

    A kernel busy in a training cell runs it when that cell ends: requests are queued.
    """
    kernel = km.get_kernel(kernel_id)
    busy = getattr(kernel, "execution_state", None) == "busy"
    client = kernel.client()
    client.start_channels()
    try:
        msg_id = client.execute(PROBE_CODE, silent=False, store_history=False)
        if busy:
            return {"ok": True, "queued": True, "message": "The kernel is busy: the probe starts when the running cell ends."}
        deadline = asyncio.get_running_loop().time() + timeout
        text = []
        while asyncio.get_running_loop().time() < deadline:
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
                break
        message = "".join(text).strip()
        return {"ok": "tracking GPU memory" in message, "queued": False, "message": message}
    finally:
        client.stop_channels()


def routes() -> list[tuple[str, Any]]:
    return [
        (rf"/{API}/kernels", KernelsHandler),
        (rf"/{API}/kernels/(?P<kernel_id>[\w-]+)/(?P<action>\w+)", KernelActionHandler),
        (rf"/{API}/probes/(?P<pid>\d+)/triage", ProbeTriageHandler),
    ]
