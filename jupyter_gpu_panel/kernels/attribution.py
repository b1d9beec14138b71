"""Which kernel, notebook and user hold each GPU process.

``attribute`` is pure: given the GPU pids, the kernels' pids and a parent lookup, it
walks each GPU process up its process tree (DataLoader workers and subprocesses count
toward their kernel). ``Attribution`` gathers those inputs from the server (kernel and
session managers on the event loop, psutil in a worker thread) and keeps the answer
for the API.

Inside a container NVML may report host pids that do not exist in our pid namespace;
then no GPU pid can be walked. We detect that (none of the GPU pids exist here) and say
so (``pid_namespace: "mismatch"``), and fall back to the probes, which know their own
kernel: a probed kernel is matched to the GPU process whose memory is closest to the
probe's reserved bytes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import psutil
from jupyter_core.utils import ensure_async

log = logging.getLogger(__name__)

MAX_DEPTH = 32


@dataclass
class KernelRef:
    kernel_id: str
    kernel_name: Optional[str] = None
    notebook: Optional[str] = None
    execution_state: Optional[str] = None
    user: Optional[str] = None
    last_activity: Optional[float] = None  # Unix seconds of the kernel's last message

    def owner(self, via_pid: Optional[int] = None) -> dict[str, Any]:
        return {
            "kind": "kernel",
            "kernel_id": self.kernel_id,
            "kernel_name": self.kernel_name,
            "notebook": self.notebook,
            "user": self.user,
            "via_pid": via_pid,
        }


def attribute(
    gpu_pids: Iterable[int],
    kernel_pids: Mapping[int, KernelRef],
    parent_of: Callable[[int], Optional[int]],
    terminal_pids: Iterable[int] = (),
) -> dict[int, dict[str, Any]]:
    """Owner of each GPU pid: the nearest kernel (or terminal) among its ancestors, else a plain process."""
    terminals = set(terminal_pids)
    owners: dict[int, dict[str, Any]] = {}
    for pid in gpu_pids:
        owner: dict[str, Any] = {"kind": "process"}
        current: Optional[int] = pid
        for _ in range(MAX_DEPTH):
            if current is None or current <= 1:
                break
            if current in kernel_pids:
                owner = kernel_pids[current].owner(via_pid=None if current == pid else current)
                break
            if current in terminals:
                owner = {"kind": "terminal", "via_pid": current}
                break
            current = parent_of(current)
        owners[pid] = owner
    return owners


def match_by_memory(unmatched: Mapping[int, int], probes: Mapping[str, int], tolerance: float = 0.25) -> dict[int, str]:
    """Container fallback: GPU pid -> kernel id, pairing each probe's reserved bytes with the
    GPU process whose NVML memory (reserve + CUDA context) is closest, within ``tolerance``."""
    out: dict[int, str] = {}
    free = dict(unmatched)
    for kernel_id, reserved in sorted(probes.items(), key=lambda kv: -kv[1]):
        if not free:
            break
        pid, used = min(free.items(), key=lambda kv: abs(kv[1] - reserved))
        if reserved > 0 and abs(used - reserved) <= tolerance * max(used, reserved) + 600 * 2**20:
            out[pid] = kernel_id
            del free[pid]
    return out


def parent_pid(pid: int) -> Optional[int]:
    try:
        return psutil.Process(pid).ppid()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def pids_exist(pids: Iterable[int]) -> bool:
    return any(psutil.pid_exists(p) for p in pids)


@dataclass
class AttributionState:
    owners: dict[int, dict[str, Any]] = field(default_factory=dict)
    kernels: dict[str, KernelRef] = field(default_factory=dict)
    kernel_pids: dict[str, int] = field(default_factory=dict)
    pid_namespace: str = "host"


class Attribution:
    """Refreshed every few seconds on the event loop; psutil work runs in a thread."""

    def __init__(self, serverapp: Any, sampler: Any, probes: Any = None) -> None:
        self.serverapp = serverapp
        self.sampler = sampler
        self.probes = probes
        self.state = AttributionState()

    def owner_of(self, pid: int) -> Optional[dict[str, Any]]:
        return self.state.owners.get(pid)

    async def _kernels(self) -> dict[str, KernelRef]:
        km = self.serverapp.kernel_manager
        sessions: dict[str, str] = {}
        try:
            for s in await ensure_async(self.serverapp.session_manager.list_sessions()):
                kernel = s.get("kernel") or {}
                if kernel.get("id"):
                    sessions[kernel["id"]] = s.get("path")
        except Exception:
            log.debug("listing sessions failed", exc_info=True)
        user = getattr(getattr(self.serverapp, "identity_provider", None), "user", None)
        out = {}
        for kid in list(km.list_kernel_ids()):
            kernel = km.get_kernel(kid)
            out[kid] = KernelRef(
                kernel_id=kid,
                kernel_name=getattr(kernel, "kernel_name", None),
                notebook=sessions.get(kid),
                execution_state=getattr(kernel, "execution_state", None),
                last_activity=_timestamp(getattr(kernel, "last_activity", None)),
                user=getattr(user, "username", None) or _username(),
            )
        return out

    def _kernel_pids(self) -> dict[str, int]:
        km = self.serverapp.kernel_manager
        out = {}
        for kid in list(km.list_kernel_ids()):
            kernel = km.get_kernel(kid)
            pid = getattr(getattr(kernel, "provisioner", None), "pid", None)
            if pid is None:
                pid = getattr(getattr(kernel, "kernel", None), "pid", None)
            if isinstance(pid, int):
                out[kid] = pid
        return out

    def _terminal_pids(self) -> list[int]:
        tm = self.serverapp.web_app.settings.get("terminal_manager")
        pids = []
        for term in getattr(tm, "terminals", {}).values() if tm is not None else []:
            pid = getattr(getattr(term, "ptyproc", None), "pid", None)
            if isinstance(pid, int):
                pids.append(pid)
        return pids

    async def refresh(self) -> AttributionState:
        kernels = await self._kernels()
        kernel_pids = self._kernel_pids()
        terminals = self._terminal_pids()
        snap = self.sampler.snapshot()
        gpu_used: dict[int, int] = {}
        for gpu in snap.gpus if snap else []:
            for p in gpu.processes:
                gpu_used[p.pid] = gpu_used.get(p.pid, 0) + (p.used or 0)
        by_pid = {pid: kernels[kid] for kid, pid in kernel_pids.items() if kid in kernels}
        local = self.sampler.source.local_pids
        loop = asyncio.get_running_loop()

        def work() -> tuple[dict[int, dict[str, Any]], str]:
            if not gpu_used or not local:
                return {}, "host"
            if not pids_exist(gpu_used):
                return {}, "mismatch"
            return attribute(gpu_used, by_pid, parent_pid, terminals), "host"

        owners, namespace = await loop.run_in_executor(None, work)
        if namespace == "mismatch" and self.probes is not None:
            reserved = self.probes.reserved_by_kernel()
            for pid, kid in match_by_memory(gpu_used, reserved).items():
                if kid in kernels:
                    owners[pid] = {**kernels[kid].owner(), "matched_by": "memory"}
        self.state = AttributionState(owners, kernels, kernel_pids, namespace)
        return self.state

    def kernel_set(self) -> tuple[str, frozenset[tuple[str, int]]]:
        """What ``kernels_of``'s answers depend on besides the process tree: the kernels and their
        pids as of the last refresh (``ProbeOwners`` decides again when it changes)."""
        state = self.state
        return state.pid_namespace, frozenset((k, p) for k, p in state.kernel_pids.items() if k in state.kernels)

    def kernels_of(
        self, pids: Iterable[int], parent_of: Optional[Callable[[int], Optional[int]]] = None
    ) -> dict[int, Optional[str]]:
        """The kernel each pid is part of (the kernel's process or a descendant), None for none:
        the GPU pids' walk of the last refresh where it covered the pid, the same walk otherwise
        (through ``parent_of``: the caller's cached /proc reads; psutil by default)."""
        state = self.state
        walked = state.owners if state.pid_namespace == "host" else {}  # mismatch: host pids, not ours
        by_pid = {pid: state.kernels[kid] for kid, pid in state.kernel_pids.items() if kid in state.kernels}
        out: dict[int, Optional[str]] = {}
        rest = []
        for pid in pids:
            owner = walked.get(pid)
            if owner is not None and "matched_by" not in owner:
                out[pid] = owner.get("kernel_id")
            else:
                rest.append(pid)
        parents: dict[int, Optional[int]] = {}

        def memo_parent(pid: int) -> Optional[int]:
            # a hundred scripts started from one shell share their ancestors: each is read once
            # a call (~50 us a /proc read), not once for every pid whose walk passes through it
            if pid not in parents:
                parents[pid] = parent_pid(pid)
            return parents[pid]

        for pid, owner in attribute(rest, by_pid, parent_of or memo_parent).items():
            out[pid] = owner.get("kernel_id")
        return out

    def pids_of(self, kernel_id: str) -> list[int]:
        return sorted(pid for pid, o in self.state.owners.items() if o.get("kernel_id") == kernel_id)


def _username() -> Optional[str]:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return os.environ.get("USER")


def _timestamp(value: Any) -> Optional[float]:
    """jupyter_server keeps ``last_activity`` as a timezone-aware datetime."""
    try:
        return float(value.timestamp()) if value is not None else None
    except (AttributeError, TypeError, ValueError, OverflowError):
        return None
