"""Placement wired into the server: the one place that reads the sampler for ``placement``,
writes a starting kernel's ``CUDA_VISIBLE_DEVICES``, and remembers where each kernel went.

The provisioner (``kernels.provisioner``) calls ``Placer.place`` with the kernel's final
environment (the server's, the session's and the kernelspec's ``env`` merged), just before
the process is launched. Nothing here calls NVML: GPU readings are the sampler's latest
snapshot and its history, both read off the event loop by the sampler thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from importlib.metadata import EntryPoint
from typing import Any, Optional

import numpy as np
import psutil

from .placement import Candidate, Choice, Reservations, check_request, choose, problem, visible_devices

log = logging.getLogger(__name__)

PROVISIONER_NAME = "gpu-panel-provisioner"
PROVISIONER_VALUE = "jupyter_gpu_panel.kernels.provisioner:GPUPanelProvisioner"
PROVISIONER_GROUP = "jupyter_client.kernel_provisioners"
#: Seconds of history the "least-utilized" policy averages.
UTIL_WINDOW = 60.0

_active: Optional[Placer] = None


def active_placer() -> Optional[Placer]:
    """The running server's placer (one GPUPanel per server); None outside a server."""
    return _active


class Placer:
    def __init__(self, panel: Any, policy: str = "off", count: int = 1) -> None:
        self.panel = panel
        self.policy = policy
        self.count = max(1, int(count))
        self.reservations = Reservations()
        #: kernel id -> where the kernel went and why (source: placement | request | outside | off)
        self.records: dict[str, dict[str, Any]] = {}
        #: kernel id -> GPUs asked for its next start (Restart on GPU N)
        self.requests: dict[str, list[int]] = {}
        self._environ: dict[int, Optional[dict[str, str]]] = {}  # pid -> its start environment
        self._environ_lock = threading.Lock()
        self._previous_default: Optional[str] = None

    # -- install as the default provisioner ------------------------------------------------
    def install(self, kernel_manager: Any) -> None:
        """Become the active placer; make the panel's provisioner the default one when nobody
        chose another (a kernelspec naming its own provisioner keeps it)."""
        global _active
        from jupyter_client.provisioning.factory import KernelProvisionerFactory

        _active = self
        # the factory reads the server's config (c.KernelProvisionerFactory) through its parent
        factory = KernelProvisionerFactory.instance(parent=kernel_manager)
        # an editable install whose metadata predates the entry point still finds it
        factory.provisioners.setdefault(
            PROVISIONER_NAME, EntryPoint(PROVISIONER_NAME, PROVISIONER_VALUE, PROVISIONER_GROUP)
        )
        if factory.default_provisioner_name == "local-provisioner":
            self._previous_default = factory.default_provisioner_name
            factory.default_provisioner_name = PROVISIONER_NAME
        elif factory.default_provisioner_name != PROVISIONER_NAME:
            log.warning(
                "GPU placement: the default kernel provisioner is %r, not the panel's: only kernelspecs "
                "naming %r in metadata.kernel_provisioner are placed",
                factory.default_provisioner_name, PROVISIONER_NAME,
            )  # fmt: skip

    def uninstall(self) -> None:
        global _active
        from jupyter_client.provisioning.factory import KernelProvisionerFactory

        if _active is self:
            _active = None
        factory = KernelProvisionerFactory.instance()
        if self._previous_default is not None and factory.default_provisioner_name == PROVISIONER_NAME:
            factory.default_provisioner_name = self._previous_default

    # -- inputs from the sampler and the kernel tracker --------------------------------------
    def _util_averages(self) -> dict[int, float]:
        """Mean GPU utilization per GPU over the last minute (call it off the event loop)."""
        hist = self.panel.sampler.history.query(since=time.time() - UTIL_WINDOW, fields=["util_gpu"])
        out = {}
        for g in hist["gpus"]:
            values = np.asarray(g["values"]["util_gpu"], dtype=float)
            if np.isfinite(values).any():
                out[g["index"]] = float(np.nanmean(values))
        return out

    def _candidates(self, utils: dict[int, float]) -> list[Candidate]:
        snap = self.panel.sampler.snapshot()
        tracker = getattr(self.panel, "tracker", None)
        owners = tracker.attribution.state.owners if tracker is not None else {}
        on_gpu = {g.index: {p.pid for p in g.processes} for g in snap.gpus} if snap else {}
        kernel_pids: dict[str, set[int]] = {}
        for pid, owner in owners.items():
            if owner.get("kernel_id"):
                kernel_pids.setdefault(owner["kernel_id"], set()).add(pid)
        self.reservations.settle(on_gpu, kernel_pids, time.time())
        reserved = self.reservations.counts()
        out = []
        for g in snap.gpus if snap else []:
            holders = {("kernel", owners[p.pid]["kernel_id"]) if owners.get(p.pid, {}).get("kernel_id") else p.pid
                       for p in g.processes}  # fmt: skip
            out.append(
                Candidate(
                    index=g.index,
                    state=g.state,
                    mem_free=g.mem_free,
                    mem_total=g.mem_total,
                    util_avg=utils.get(g.index, None if g.util_gpu is None else float(g.util_gpu)),
                    holders=len(holders),
                    ecc_errors=g.ecc_errors_volatile,
                    throttle_reasons=tuple(g.throttle_reasons or ()),
                    reserved=reserved.get(g.index, 0),
                )
            )
        return out

    # -- at kernel start -------------------------------------------------------------------
    async def place(self, kernel_id: str, env: dict[str, str]) -> dict[str, Any]:
        """Write the kernel's GPUs into ``env`` (its launch environment); the record of it."""
        outside = env.get("CUDA_VISIBLE_DEVICES")
        requested = self.requests.pop(kernel_id, None)
        prior = self.records.get(kernel_id)
        if outside is not None:
            # the user's environment, the kernelspec or the spawner decided: never override it
            if requested is not None:
                log.warning("kernel %s: GPUs %s asked, but CUDA_VISIBLE_DEVICES=%r was set outside the panel: kept",
                            kernel_id, requested, outside)  # fmt: skip
            record = {"source": "outside", "gpus": None, "cuda_visible_devices": outside,
                      "reason": f"CUDA_VISIBLE_DEVICES={outside!r} was set outside the panel (the server's "
                                "environment, the kernelspec or the spawner): placement leaves it"}  # fmt: skip
        elif requested is not None:
            record = self._apply(kernel_id, env, requested, "request", f"asked for GPU(s) {visible_devices(requested)}")
        elif prior is not None and prior["source"] in ("placement", "request") and self._still_fit(prior["gpus"]):
            # a plain restart stays where the kernel was: moving it is what "Restart on GPU N" is for
            record = self._apply(kernel_id, env, prior["gpus"], prior["source"], "restarted where it ran")
        else:
            utils = await asyncio.get_running_loop().run_in_executor(None, self._util_averages)
            # from here to the reservation nothing awaits: concurrent starts see each other's choice
            choice = choose(self._candidates(utils), self.policy, self.count)
            if choice.placed:
                record = self._apply(kernel_id, env, choice.gpus, "placement", choice.reason)
            else:
                if self.policy != "off":
                    log.warning("kernel %s: GPU placement falls back to off: %s", kernel_id, choice.reason)
                record = {"source": "off", "gpus": None, "cuda_visible_devices": None, "reason": choice.reason}
        self.records[kernel_id] = record
        return record

    def _apply(self, kernel_id: str, env: dict[str, str], gpus: list[int], source: str, reason: str) -> dict[str, Any]:
        text = visible_devices(gpus)
        env["CUDA_VISIBLE_DEVICES"] = text
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # CUDA's indices are then NVML's
        self.reservations.reserve(kernel_id, gpus, time.time())
        log.info("kernel %s placed on GPU(s) %s: %s", kernel_id, text, reason)
        return {"source": source, "gpus": list(gpus), "cuda_visible_devices": text, "reason": reason}

    def _still_fit(self, gpus: Optional[list[int]]) -> bool:
        snap = self.panel.sampler.snapshot()
        by_index = {g.index: g for g in snap.gpus} if snap else {}
        return bool(gpus) and all(
            i in by_index and problem(Candidate(index=i, state=by_index[i].state)) is None for i in gpus or []
        )

    def launched(self, kernel_id: str, pid: Optional[int]) -> None:
        self.reservations.launched(kernel_id, pid)

    def forget(self, kernel_id: str) -> None:
        self.records.pop(kernel_id, None)
        self.requests.pop(kernel_id, None)
        self.reservations.release(kernel_id)

    # -- Restart on GPU N -----------------------------------------------------------------------
    def check(self, gpus: object) -> list[int]:
        """An explicit choice against the node's GPUs; ValueError naming the problem."""
        snap = self.panel.sampler.snapshot()
        states = {g.index: g.state for g in snap.gpus} if snap else {}
        return check_request(gpus, states)

    def request(self, kernel_id: str, gpus: list[int]) -> None:
        self.requests[kernel_id] = list(gpus)

    # -- views ---------------------------------------------------------------------------------
    async def preview(self) -> dict[str, Any]:
        """``GET placement``: the policy, where the next kernel would go and why, and each GPU."""
        utils = await asyncio.get_running_loop().run_in_executor(None, self._util_averages)
        candidates = self._candidates(utils)
        outside = os.environ.get("CUDA_VISIBLE_DEVICES")
        if outside is not None:
            choice = Choice([], f"the server's environment sets CUDA_VISIBLE_DEVICES={outside!r}: kernels keep it")
        else:
            choice = choose(candidates, self.policy, self.count)
        return {
            "policy": self.policy,
            "gpus_per_kernel": self.count,
            "next": {"gpus": choice.gpus, "cuda_visible_devices": visible_devices(choice.gpus)}
            if choice.placed
            else None,
            "reason": choice.reason,
            "gpus": [
                {
                    "index": c.index,
                    "state": c.state,
                    "mem_free": c.mem_free,
                    "mem_total": c.mem_total,
                    "util_avg": None if c.util_avg is None else round(c.util_avg, 1),
                    "holders": c.holders,
                    "reserved": c.reserved,
                    "problem": problem(c),
                }
                for c in candidates
            ],
        }

    def kernel_view(self, kernel_id: str, pid: Optional[int]) -> dict[str, Any]:
        """The kernel row's ``placement``: which GPUs the kernel may use, as its process has
        ``CUDA_VISIBLE_DEVICES``, and where that came from. Reads /proc: call it off the loop."""
        record = self.records.get(kernel_id)
        environ = self._environ_of(pid)
        if environ is not None:
            text = environ.get("CUDA_VISIBLE_DEVICES")
        else:
            text = record["cuda_visible_devices"] if record else None
        if record is not None:
            source = record["source"]
        else:  # a kernel started before the panel, or by a provisioner that is not the panel's
            source = "outside" if text is not None else "off"
        if source == "off" and text is not None:
            source = "outside"
        return {
            "cuda_visible_devices": text,
            "readable": environ is not None,
            "gpus": resolve_visible(text, self.panel.sampler.devices),
            "source": source,
            "reason": record["reason"] if record else None,
        }

    def _environ_of(self, pid: Optional[int]) -> Optional[dict[str, str]]:
        """The environment the process started with (/proc/<pid>/environ does not change after
        exec, so it is read once per pid); None when it cannot be read (another user's)."""
        if pid is None:
            return None
        with self._environ_lock:
            if pid in self._environ:
                return self._environ[pid]
        try:
            environ: Optional[dict[str, str]] = psutil.Process(pid).environ()
        except (psutil.Error, OSError):
            environ = None
        with self._environ_lock:
            if len(self._environ) > 4096:  # pids of ended kernels: start over
                self._environ.clear()
            self._environ[pid] = environ
        return environ


def resolve_visible(text: Optional[str], devices: list[Any]) -> Optional[list[int]]:
    """NVML indices named by a ``CUDA_VISIBLE_DEVICES`` value (indices in PCI bus order, or
    UUIDs and their unique prefixes); None when unset, or when nothing in it names a GPU here
    (MIG instances, another machine's UUIDs). As CUDA does, an entry that names nothing ends
    the list."""
    if text is None:
        return None
    out: list[int] = []
    for entry in (e.strip() for e in text.split(",")):
        if entry.isdigit():
            index = int(entry)
            if not any(d.index == index for d in devices):
                break
            out.append(index)
            continue
        match = [d.index for d in devices if d.uuid and entry and d.uuid.startswith(entry)]
        if len(match) != 1:
            break
        out.append(match[0])
    return out if out or not text.strip() else None
