"""The server extension: ``c.GPUPanel.*`` options, the API's routes, and the services' start and stop
(``services.py`` makes and connects them).

One ``GPUPanel`` per server owns the one sampler, however many clients connect.
"""

from __future__ import annotations

import socket
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Enum, Float, Int, Unicode, default, validate

from .metrics.privacy import Audience
from .metrics.sampler import MIN_INTERVAL
from .metrics.sources import SOURCES
from .services import compose, server_user


class GPUPanel(ExtensionApp):
    """GPU metrics, kernel attribution and leak warnings for Jupyter."""

    name = "jupyter_gpu_panel"
    load_other_extensions = True

    source = Enum(
        list(SOURCES),
        default_value="auto",
        help=(
            "Where GPU readings come from. 'auto' and 'nvml' read the real GPUs through NVML; when that is "
            "impossible the API reports why (nvml-missing, driver-not-loaded, no-devices) and never shows "
            "demo data instead. 'replay' plays a recorded trace (see replay_file) in real time, looping."
        ),
    ).tag(config=True)

    replay_file = Unicode(
        "",
        help=(
            "A *.nvml.jsonl trace for source='replay' (as written by `jupyter-gpu-panel record`). "
            "Empty: the real H100 recording shipped with the package."
        ),
    ).tag(config=True)

    interval = Float(
        1.0,
        help=f"Seconds between readings of the fast fields (utilization, memory, power...). Not below {MIN_INTERVAL}.",
    ).tag(config=True)

    slow_interval = Float(
        5.0,
        help="Seconds between readings of the slow fields (PCIe throughput costs ~21 ms a call, energy ~3 ms).",
    ).tag(config=True)

    history_seconds = Float(
        3600.0,
        help="Seconds of full-resolution history kept on the server per GPU and per process (ring buffers).",
    ).tag(config=True)

    read_timeout = Float(
        2.0,
        help="Seconds a GPU's readings may take before that GPU is reported 'unresponsive' for the tick.",
    ).tag(config=True)

    visible_only = Bool(
        False,
        help="Show only the GPUs listed in the server's CUDA_VISIBLE_DEVICES (indices or UUIDs).",
    ).tag(config=True)

    show_all_users = Bool(
        True,
        help="Include other users' GPU processes (their pid, user and memory) in snapshot, stream and "
        "history. A process whose user cannot be read counts as another user's.",
    ).tag(config=True)

    show_other_users_commands = Bool(
        False,
        help="Also show other users' process names and command lines. Off by default: on a shared machine "
        "a command line can carry secrets (passwords, API keys, another server's token).",
    ).tag(config=True)

    kernel_refresh = Float(
        2.0,
        help="Seconds between refreshes of the kernel view: which kernel owns each GPU process, probe readings, "
        "leak verdicts.",
    ).tag(config=True)

    triage_on_alarm = Bool(
        True,
        help="When a probed kernel's leak becomes actionable, record torch's allocation history for a few "
        "steps (once per probe) to name the line whose tensors survive every step. The steps recorded run "
        "slower while Python stacks are captured.",
    ).tag(config=True)

    node_name = Unicode(
        help="This machine's name in the exported Prometheus series (the `Hostname` label, as NVIDIA's DCGM "
        "exporter names it, so the two join). Default: the host name; on Kubernetes set it to the node's name.",
    ).tag(config=True)

    prometheus_url = Unicode(
        "",
        help="The Prometheus that scrapes this cluster (DCGM exporter and these servers' /metrics), e.g. "
        "http://prometheus:9090. Set, the panel shows a Cluster section (GET cluster) and history older than "
        "this server's own buffer comes from there. The browser never talks to Prometheus.",
    ).tag(config=True)

    cluster_show_users = Bool(
        False,
        help="Name other users and their notebooks in the cluster view (a teacher's or admin's deployment). "
        "Off: other holders of a GPU are counted, not named.",
    ).tag(config=True)

    metrics_show_notebooks = Bool(
        False,
        help="Label the per-kernel and per-script series on /metrics with notebook paths and user names even "
        "when Prometheus scrapes without authentication (c.ServerApp.authenticate_prometheus = False). Off: an "
        "unauthenticated /metrics, readable by anyone who can reach the port, leaves the notebook and user "
        "labels out (kernel_id, gpu and Hostname stay). With authentication the labels are always there.",
    ).tag(config=True)

    cluster_refresh = Float(5.0, help="Seconds a cluster view is reused before Prometheus is asked again.").tag(
        config=True
    )

    cluster_stale_after = Float(
        120.0, help="A GPU whose last scrape is older than this many seconds is shown as stale."
    ).tag(config=True)

    cluster_max_series = Int(
        50_000,
        help="Series of Prometheus' answer the cluster view reads at most (about 6,000 nodes of 8 GPUs of DCGM "
        "series). Beyond it the rest is left out and GET cluster says so: state 'truncated' and a truncated "
        "object (reason, limit, series read). Reading is done series by series in a worker thread.",
    ).tag(config=True)

    cluster_max_bytes = Int(
        32 * 2**20,
        help="Bytes of Prometheus' answer the cluster view reads at most (32 MiB); the download stops there and "
        "GET cluster says the view is truncated, as for cluster_max_series.",
    ).tag(config=True)

    @default("node_name")
    def _default_node_name(self) -> str:
        return socket.gethostname()

    idle_after = Float(
        900.0,
        help="Seconds a kernel must sit idle while its processes hold GPU memory before the panel flags it "
        "as an idle holder (offering Release cached memory, Restart, Shut down) and exports its idle time.",
    ).tag(config=True)

    cull_idle_gpu_kernels_after = Float(
        0.0,
        help="Shut down kernels that have sat idle this many seconds while holding GPU memory (0: never, the "
        "default). Logged; a busy kernel is never touched. Complements jupyterhub-idle-culler, which stops "
        "whole servers and knows nothing of GPUs.",
    ).tag(config=True)

    stream_stall_timeout = Float(
        30.0,
        help="Seconds a stream client may leave a message unread (its socket not taking the write) before "
        "the server closes it with code 1008, reason 'client too slow: not read for N s'. Each client has "
        "at most one write in flight and only the latest snapshot and kernels document queued, so a slow "
        "client costs a bounded amount of memory; this frees even that. Browsers reconnect on their own.",
    ).tag(config=True)

    placement = Enum(
        ["off", "most-free-memory", "least-utilized", "spread"],
        default_value="off",
        help="Which GPU(s) a new kernel gets, through its CUDA_VISIBLE_DEVICES (with CUDA_DEVICE_ORDER=PCI_BUS_ID). "
        "'off' (default): kernels see every GPU, as without the panel. 'most-free-memory': the GPU with the most "
        "free memory. 'least-utilized': the lowest utilization averaged over the last minute. 'spread': the GPU "
        "with the fewest kernels and other processes on it. A CUDA_VISIBLE_DEVICES already set by the user's "
        "environment, the kernelspec or the spawner is never overridden. GPUs lost, unresponsive, with "
        "uncorrected ECC errors or throttled by temperature are avoided; a choice stays reserved until the "
        "kernel shows on that GPU or for 60 s, so kernels started together spread out.",
    ).tag(config=True)

    placement_gpus = Int(
        1,
        help="How many GPUs placement gives each kernel (see placement). When fewer fit, the kernel sees every "
        "GPU and the reason is logged.",
    ).tag(config=True)

    @validate("placement_gpus")
    def _at_least_one_gpu(self, proposal: dict) -> int:
        return max(1, int(proposal["value"]))

    @validate("interval")
    def _floor_interval(self, proposal: dict) -> float:
        return max(MIN_INTERVAL, float(proposal["value"]))

    @validate("history_seconds")
    def _positive_history(self, proposal: dict) -> float:
        return max(10.0, float(proposal["value"]))

    @validate("stream_stall_timeout")
    def _positive_stall_timeout(self, proposal: dict) -> float:
        # not 0 or below: that would close every client at its first write
        return max(0.1, float(proposal["value"]))

    def audience(self) -> Audience:
        """What this server's clients may see of GPU processes (one user per Jupyter server)."""
        return Audience(
            user=server_user(),
            other_users=self.show_all_users,
            other_commands=self.show_other_users_commands,
            local=self.sampler.source.local_pids,
        )

    # -- ExtensionApp hooks ------------------------------------------------------------------
    def initialize_settings(self) -> None:
        serverapp = self.serverapp
        if serverapp is None:  # jupyter_server links the app to its server before this hook runs
            raise RuntimeError("initialize_settings ran before the extension was linked to a server")
        # what connects to what is services.py's to say; here only the options go in
        self.services = compose(self, serverapp)
        # handlers, the exporter and the placer read the services through the panel
        self.sampler = self.services.sampler
        self.probes = self.services.probes
        self.tracker = self.services.tracker
        self.fanout = self.services.fanout
        self.history_work = self.services.history_work
        self.placer = self.services.placer
        self.cluster = self.services.cluster
        self.settings["gpu_panel"] = self
        self.log.info("jupyter-gpu-panel: source=%s interval=%ss", self.source, self.sampler.interval)
        self.services.start(self, serverapp)

    def status_json(self) -> dict[str, Any]:
        """GET status and the websocket's hello: the sampler's state and what this deployment set up."""
        from . import __version__

        return {
            "version": __version__,
            **self.sampler.status_json(),
            "cluster_configured": self.cluster.client is not None,
        }

    def initialize_handlers(self) -> None:
        from .api import routes

        self.handlers.extend(routes())

    async def stop_extension(self) -> None:
        await self.services.stop()
