"""The one place the server's services are made and connected: sampler, probes, tracker,
fanout, placer, exporter, cluster.

Each connection between two services is made here, with its reason, so that no module learns of
another layer at run time without this file saying so. ``app.py`` reads the options, calls
``compose`` and starts and stops what it returns; handlers only read from the services.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from .cluster.service import ClusterService
from .kernels.placer import Placer
from .kernels.tracker import KernelTracker
from .memory.follower import Probes
from .metrics import exporter
from .metrics.coalesce import Coalescer
from .metrics.fanout import Fanout
from .metrics.privacy import Audience
from .metrics.sampler import Sampler
from .metrics.sources import make_source


class PanelOptions(Protocol):
    """The options of the running extension (``app.GPUPanel``'s traitlets) that ``compose`` reads.

    A protocol, not the app's class: the app imports this module, and naming it back here would
    close an import circle (the house has none)."""

    @property
    def source(self) -> str: ...
    @property
    def replay_file(self) -> str: ...
    @property
    def visible_only(self) -> bool: ...
    @property
    def interval(self) -> float: ...
    @property
    def slow_interval(self) -> float: ...
    @property
    def history_seconds(self) -> float: ...
    @property
    def read_timeout(self) -> float: ...
    @property
    def kernel_refresh(self) -> float: ...
    @property
    def triage_on_alarm(self) -> bool: ...
    @property
    def idle_after(self) -> float: ...
    @property
    def cull_idle_gpu_kernels_after(self) -> float: ...
    @property
    def placement(self) -> str: ...
    @property
    def placement_gpus(self) -> int: ...
    @property
    def prometheus_url(self) -> str: ...
    @property
    def cluster_show_users(self) -> bool: ...
    @property
    def cluster_refresh(self) -> float: ...
    @property
    def cluster_stale_after(self) -> float: ...
    @property
    def cluster_max_series(self) -> int: ...
    @property
    def cluster_max_bytes(self) -> int: ...


class Panel(PanelOptions, Protocol):
    """What handlers, the exporter and the placer read of the running extension: its options,
    its services (``compose``'s) and what it answers; ``app.GPUPanel`` is the one there is."""

    @property
    def node_name(self) -> str: ...
    @property
    def metrics_show_notebooks(self) -> bool: ...
    @property
    def stream_stall_timeout(self) -> float: ...
    @property
    def serverapp(self) -> Any: ...
    @property
    def sampler(self) -> Sampler: ...
    @property
    def tracker(self) -> KernelTracker: ...
    @property
    def fanout(self) -> Fanout: ...
    @property
    def history_work(self) -> Coalescer: ...
    @property
    def placer(self) -> Placer: ...
    @property
    def cluster(self) -> ClusterService: ...
    def audience(self) -> Audience: ...
    def status_json(self) -> dict[str, Any]: ...


@dataclass
class Services:
    sampler: Sampler
    probes: Probes
    tracker: KernelTracker
    fanout: Fanout
    #: GET history's shared work: one answer a tick for identical requests
    history_work: Coalescer
    placer: Placer
    cluster: ClusterService
    _stopped: bool = field(default=False, repr=False)

    def start(self, panel: Panel, serverapp: Any) -> None:
        """Start everything; the tracker once the event loop runs (see ``_start_tracker``)."""
        # /metrics reads the panel's services (and its options: node name, label policy)
        exporter.register(panel)
        # kernels started from now on go through the placer (the panel's kernel provisioner)
        self.placer.install(serverapp.kernel_manager)
        # the sampler thread opens the source itself: NVML init (tens of ms, seconds on a sick
        # driver) never runs on the event loop
        self.sampler.start()
        # The tracker is an asyncio task, and this runs before the loop does. Every server runs
        # its loop's callbacks, whereas the extension start hook (_start_jupyter_server_extension)
        # runs only from ServerApp.start_ioloop on jupyter_server >= 2.6: not on 2.4-2.5, nor
        # where the server is embedded (pytest-jupyter calls initialize and start_app only).
        serverapp.io_loop.add_callback(self._start_tracker)

    def _start_tracker(self) -> None:
        if not self._stopped:  # a server stopped before its loop ran never starts it
            self.tracker.start()

    async def stop(self) -> None:
        self._stopped = True
        exporter.register(None)
        self.placer.uninstall()
        self.tracker.stop()
        self.fanout.close()
        self.history_work.close()
        await asyncio.get_running_loop().run_in_executor(None, self.sampler.stop)


def compose(panel: PanelOptions, serverapp: Any) -> Services:
    """The services for ``panel``'s options, connected; nothing started (``Services.start``)."""
    source = make_source(panel.source, replay_file=panel.replay_file or None, visible_only=panel.visible_only)
    sampler = Sampler(
        source,
        interval=panel.interval,
        slow_interval=panel.slow_interval,
        history_seconds=panel.history_seconds,
        read_timeout=panel.read_timeout,
    )
    probes = Probes.in_runtime_dir(serverapp.runtime_dir)
    tracker = KernelTracker(
        serverapp,
        sampler,
        probes,
        period=panel.kernel_refresh,
        triage_on_alarm=panel.triage_on_alarm,
        idle_after=panel.idle_after,
        cull_after=panel.cull_idle_gpu_kernels_after,
    )
    fanout = Fanout(sampler)
    # tracker -> fanout: each snapshot names the kernel or script owning a GPU process; the
    # tracker knows owners, and the metrics layer must not import the kernels layer
    fanout.owner_of = tracker.owner_of
    # tracker -> fanout: a changed kernels document is pushed to every socket, so no client polls
    tracker.on_change = fanout.publish_kernels
    # the placer reads the sampler through the panel when a kernel starts (panel.sampler)
    placer = Placer(panel, panel.placement, panel.placement_gpus)
    # placer -> tracker: each kernel's row says which GPUs it was given and why
    tracker.placement_view = placer.kernel_view
    cluster = ClusterService(
        panel.prometheus_url,
        me=server_user(),
        show_users=panel.cluster_show_users,
        refresh=panel.cluster_refresh,
        stale_after=panel.cluster_stale_after,
        max_series=panel.cluster_max_series,
        max_bytes=panel.cluster_max_bytes,
    )
    history_work = Coalescer(ttl=sampler.interval, name="gpu-panel-history")
    return Services(sampler, probes, tracker, fanout, history_work, placer, cluster)


@functools.lru_cache(maxsize=1)
def server_user() -> Optional[str]:
    """The system user this server runs as (the one whose processes are "own")."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
