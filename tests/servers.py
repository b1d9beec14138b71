"""Real processes a test starts and stops: Jupyter servers with the extension, Prometheus,
and the small DCGM-style exporter at the hardware boundary. Loopback only."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
SHIM = Path(__file__).resolve().parent / "nvml_shim"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: Optional[subprocess.Popen] = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(0.2)


def terminate(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class JupyterServer:
    url: str
    token: str
    port: int
    proc: subprocess.Popen
    workdir: Path
    log: Path
    nvml_config: Optional[Path] = None

    def api(self, path: str, method: str = "GET", body: Optional[dict] = None) -> dict:
        req = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return json.loads(text) if text else {}

    def set_gpu_processes(self, processes: dict[int, list[tuple[int, int]]], gpus: int = 1) -> None:
        assert self.nvml_config is not None, "this server reads a replay, not the fake NVML"
        tmp = self.nvml_config.with_suffix(".tmp")
        tmp.write_text(json.dumps({"gpus": gpus, "processes": {str(k): v for k, v in processes.items()}}))
        tmp.replace(self.nvml_config)

    def stop(self) -> None:
        terminate(self.proc)

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def start_jupyter_server(
    workdir: Path, *args: str, fake_gpus: Optional[int] = None, token: Optional[str] = None
) -> JupyterServer:
    """``jupyter server`` with the GPU panel; ``fake_gpus``: NVML is the fake with that many GPUs
    (configured through a file: ``set_gpu_processes``), else pass ``--GPUPanel.source=replay``."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    token = token or secrets.token_hex(16)
    root = workdir / "root"
    root.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        "JUPYTER_CONFIG_DIR": str(workdir / "config"),
        "JUPYTER_DATA_DIR": str(workdir / "data"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    nvml_config = None
    if fake_gpus is not None:
        nvml_config = workdir / "fake-nvml.json"
        nvml_config.write_text(json.dumps({"gpus": fake_gpus, "processes": {}}))
        env["GPU_PANEL_FAKE_NVML"] = str(nvml_config)
        env["PYTHONPATH"] = os.pathsep.join([str(SHIM), env["PYTHONPATH"]])
    log = workdir / "server.log"
    cmd = [
        sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.jpserver_extensions={'jupyter_gpu_panel': True}",
        *args,
    ]  # fmt: skip
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=root)
    server = JupyterServer(f"http://127.0.0.1:{port}/", token, port, proc, workdir, log, nvml_config)
    try:
        wait_until(lambda: bool(server.api("api/gpu-panel/status")), 90, "jupyter server", proc)
    except (RuntimeError, TimeoutError) as err:
        server.stop()
        raise RuntimeError(f"{err}\n{server.log_tail()}") from None
    return server


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen
    workdir: Path

    def query(self, promql: str) -> list[dict]:
        url = f"{self.url}api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())["data"]["result"]

    def stop(self) -> None:
        terminate(self.proc)


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if found is None:
        raise RuntimeError("Prometheus is not installed: `apt-get install -y prometheus` (.ci/run does)")
    return found


def start_prometheus(workdir: Path, jobs: list[dict], scrape_interval: str = "1s") -> Prometheus:
    """Debian's Prometheus on a loopback port; ``jobs``: scrape_configs entries."""
    import yaml  # jupyter_server depends on PyYAML (through jupyter_events)

    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
                "scrape_configs": jobs,
            }
        )
    )
    port = free_port()
    log = workdir / "prometheus.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    prom = Prometheus(f"http://127.0.0.1:{port}/", proc, workdir)

    def ready() -> bool:
        with urllib.request.urlopen(prom.url + "-/ready", timeout=2) as r:
            return r.status == 200

    try:
        wait_until(ready, 60, "prometheus", proc)
    except (RuntimeError, TimeoutError) as err:
        prom.stop()
        raise RuntimeError(f"{err}\n{log.read_text(errors='replace')[-3000:]}") from None
    return prom


@dataclass
class Exposition:
    """A /metrics endpoint serving whatever text ``render()`` returns (the DCGM exporter's stand-in)."""

    render: Callable[[], str]
    port: int = 0
    server: Optional[ThreadingHTTPServer] = None
    thread: Optional[threading.Thread] = field(default=None, repr=False)

    def start(self) -> Exposition:
        render = self.render

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
