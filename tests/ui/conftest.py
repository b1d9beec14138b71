"""Fixtures for the browser tests: a real ``jupyter lab`` subprocess on
127.0.0.1 and Debian's headless Chromium driven by Playwright's sync API.

Playwright's sync API runs its own event loop, which clashes with
pytest-jupyter's loop fixtures at teardown, so this folder overrides them
and starts the server as a subprocess instead of using ``jp_serverapp``.

Nothing here skips: a missing browser or an unbuilt extension is a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

import needs

REPO = Path(__file__).resolve().parents[2]
LABEXT = REPO / "jupyter_gpu_panel" / "labextension"
NVML_SHIM = REPO / "tests" / "nvml_shim"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = os.environ.get("GPU_PANEL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def jp_asyncio_loop():
    """No-op override: the sync Playwright API owns the loop in this folder."""
    yield None


@pytest.fixture
def jp_server_cleanup():
    """No-op override (see module docstring)."""
    yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running ``jupyter lab`` (or ``jupyter notebook``) subprocess."""

    base: str
    token: str
    proc: subprocess.Popen
    log: Path
    root: Path
    env: dict
    workspaces: Path
    nvml_config: Optional[Path] = None

    def clean_workspaces(self) -> None:
        """Forget the saved layouts, so the next page opens the default one (no notebook of an
        earlier test reopening, no "Select kernel" dialog in the way)."""
        for f in self.workspaces.glob("*"):
            if f.is_file():
                f.unlink()

    def set_gpu_processes(self, processes: dict, gpus: int) -> None:
        """What the fake NVML lists on each GPU: {index: [(pid, bytes), ...]} (real pids)."""
        assert self.nvml_config is not None, "this lab reads a replay, not the fake NVML"
        tmp = self.nvml_config.with_suffix(".tmp")
        tmp.write_text(json.dumps({"gpus": gpus, "processes": {str(k): v for k, v in processes.items()}}))
        tmp.replace(self.nvml_config)

    def url(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}token={self.token}"

    def api(self, path: str) -> dict:
        req = urllib.request.Request(
            f"{self.base}api/gpu-panel/{path}",
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def require_built_extension() -> None:
    if not (LABEXT / "package.json").exists() or not (LABEXT / "static").is_dir():
        pytest.fail(
            f"the front end is not built ({LABEXT} missing): run "
            "`pip install -e .[test]` or `cd labextension && jlpm install && jlpm build:prod`"
        )


#: A python3 kernelspec whose kernel cannot import torch (sys.modules["torch"] = None makes
#: ``import torch`` raise ImportError and find_spec return None): a real kernel of an
#: environment without torch, in a test venv that has it.
NO_TORCH_KERNEL = {
    "argv": [
        sys.executable, "-c",
        "import sys; sys.modules['torch'] = None; "
        "from ipykernel.kernelapp import launch_new_instance; launch_new_instance()",
        "-f", "{connection_file}",
    ],
    "display_name": "Python 3 (no torch)",
    "language": "python",
}  # fmt: skip


def start_lab(
    workdir: Path,
    source: str,
    extra_args: Optional[list] = None,
    *,
    fake_gpus: Optional[int] = None,
    app: str = "lab",
    no_torch: bool = False,
) -> Lab:
    """Start ``jupyter lab`` with the GPU panel in an isolated Jupyter environment.

    ``fake_gpus``: NVML is the fake (tests/nvml_shim) with that many GPUs, configured through a file
    (``Lab.set_gpu_processes``); pass ``source="nvml"``. ``app="notebook"``: Jupyter Notebook 7
    instead of JupyterLab. ``no_torch``: the python3 kernel cannot import torch."""
    require_built_extension()
    port = _free_port()
    token = secrets.token_hex(16)
    root = workdir / "root"
    config = workdir / "config"
    share = workdir / "share" / "jupyter"
    for d in (
        root,
        config / "labconfig",
        share / "labextensions",
        workdir / "settings",
        workdir / "workspaces",
        workdir / "runtime",
        workdir / "data",
    ):
        d.mkdir(parents=True, exist_ok=True)
    # Jupyter news popup covers screenshots.
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    # Serve this checkout's build, whatever copy a pip install left elsewhere:
    # JUPYTER_PATH entries are searched first.
    link = share / "labextensions" / "jupyter-gpu-panel"
    if not link.exists():
        link.symlink_to(LABEXT, target_is_directory=True)
    if no_torch:
        spec = share / "kernels" / "python3"
        spec.mkdir(parents=True, exist_ok=True)
        (spec / "kernel.json").write_text(json.dumps(NO_TORCH_KERNEL))
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_PATH=str(share),
        JUPYTER_DATA_DIR=str(workdir / "data"),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(workdir / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(workdir / "workspaces"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    nvml_config = None
    if fake_gpus is not None:
        nvml_config = workdir / "fake-nvml.json"
        nvml_config.write_text(json.dumps({"gpus": fake_gpus, "processes": {}}))
        env["GPU_PANEL_FAKE_NVML"] = str(nvml_config)
        env["PYTHONPATH"] = os.pathsep.join([str(NVML_SHIM), env["PYTHONPATH"]])
    log = workdir / "lab.log"
    cmd = [
        sys.executable,
        "-m",
        {"lab": "jupyterlab", "notebook": "notebook"}[app],
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.jpserver_extensions={'jupyter_gpu_panel': True}",
        f"--GPUPanel.source={source}",
        *(extra_args or []),
    ]
    fh = open(log, "w")
    proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=str(root))
    lab = Lab(
        base=f"http://127.0.0.1:{port}/", token=token, proc=proc, log=log, root=root, env=env,
        workspaces=workdir / "workspaces", nvml_config=nvml_config,
    )  # fmt: skip
    _LABS.append(lab)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{lab.log_tail()}")
        try:
            lab.api("status")
            break
        except urllib.error.HTTPError as err:
            # The server is up but has no gpu-panel API: the extension failed to load.
            lab.stop()
            pytest.fail(f"api/gpu-panel/status answered {err.code}:\n{lab.log_tail(120)}")
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                lab.stop()
                pytest.fail(f"jupyter lab did not answer in 90 s:\n{lab.log_tail()}")
            time.sleep(0.3)
    return lab


#: Every lab started in this session, so each test can start from a clean workspace.
_LABS: list[Lab] = []


@pytest.fixture(autouse=True)
def clean_workspace() -> Iterator[None]:
    """Each UI test starts from the default layout: the saved workspaces of every running lab
    (module-scoped labs outlive a test) are removed before it runs."""
    for lab in _LABS:
        if lab.proc.poll() is None:
            lab.clean_workspaces()
    yield


@pytest.fixture(scope="module")
def replay_lab(tmp_path_factory) -> Iterator[Lab]:
    lab = start_lab(tmp_path_factory.mktemp("lab-replay"), "replay")
    yield lab
    lab.stop()


@pytest.fixture(scope="session")
def browser():
    needs.chromium()
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield b
    b.close()
    pw.stop()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 1250})
    pg = ctx.new_page()
    pg.set_default_timeout(30000)
    errors: list = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.page_errors = errors  # type: ignore[attr-defined]
    yield pg
    ctx.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
