"""A real JupyterHub on loopback for the multi-user tests.

JupyterHub (PyPI) with its DummyAuthenticator and LocalProcessSpawner, configurable-http-proxy
(npm, under ``tests/hub/node_modules``), three system users (``USERS``) created for the folder
and removed at its end, pass or fail (``useradd``/``userdel``: this needs root, as CI runs), and
each user's single-user server running this venv's Python with this checkout's extension: its server side
from ``PYTHONPATH=<repo>``, its front end from a ``JUPYTER_PATH`` share dir that links this
checkout's build. NVML is the fake of ``tests/nvml_shim``, configured by one world-readable JSON
file that lists real pids (alice's kernel, a process running as bob). The fake node has
``FAKE_GPUS`` GPUs, GPUs 0-2 held by another process (``BUSY``), and the users' servers place
their kernels (``most-free-memory``); carol's server gets GPU 1 from the spawner, as a device
plugin would. One hub serves the whole folder (package scope): a second one costs a minute.

No root, no proxy, no Chromium, or an interpreter the users cannot reach skips with the reason
and how to get it (``tests/needs.py``; CI turns such skips into failures). Anything else that
goes wrong fails with what the users' Python printed. ``GPU_PANEL_HUB_KEEP=1`` keeps the work
folder (logs) afterwards.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
SHIM = TESTS / "nvml_shim"
LABEXT = REPO / "jupyter_gpu_panel" / "labextension"
CHROMIUM = os.environ.get("GPU_PANEL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USERS = ("alice", "bob", "carol")
#: carol's server: CUDA_VISIBLE_DEVICES that the spawner sets (as a container's device plugin)
DEVICE_PLUGIN = {"carol": "1"}
FAKE_GPUS = 5
BUSY = (0, 1, 2)  # GPUs another process fills (40 GiB each) from the start
ADMIN_SERVICE = "gpu-panel-test"
GiB = 1024**3

sys.path.insert(0, str(TESTS))
import needs  # noqa: E402
from servers import free_port, wait_until  # noqa: E402


@pytest.fixture
def jp_asyncio_loop():
    """No-op override: the sync Playwright API owns the loop in this folder."""
    yield None


@pytest.fixture
def jp_server_cleanup():
    """No-op override: the servers here are subprocesses."""
    yield


def _tail(path: Path, n: int = 80) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"({path} unreadable)"


@dataclass
class Hub:
    url: str  # http://127.0.0.1:PORT/ (the proxy: what a browser opens)
    admin_token: str
    proc: subprocess.Popen
    workdir: Path
    log: Path
    nvml_config: Path
    holders: dict[int, tuple[int, int]] = field(default_factory=dict)  # pid -> (GPU, bytes) the fake lists
    tokens: dict[str, str] = field(default_factory=dict)

    # -- HTTP ----------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, token: Optional[str] = None, json_body: Any = None, **kw: Any
    ) -> requests.Response:
        """``path`` below the hub's root (``hub/api/...``, ``user/alice/...``); no redirect followed."""
        headers = kw.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"token {token}"
        return requests.request(
            method, self.url + path, headers=headers, json=json_body, allow_redirects=False, timeout=60, **kw
        )

    def admin(self, method: str, path: str, json_body: Any = None) -> requests.Response:
        return self.request(method, "hub/api/" + path, self.admin_token, json_body)

    def token_for(self, user: str) -> str:
        """An API token of ``user``'s own (created by the admin service, the user's permissions)."""
        if user not in self.tokens:
            r = self.admin("POST", f"users/{user}/tokens", {"note": "gpu-panel hub test", "expires_in": 3600})
            assert r.status_code in (200, 201), (r.status_code, r.text)
            self.tokens[user] = r.json()["token"]
        return self.tokens[user]

    # -- servers -------------------------------------------------------------------------------
    def server_ready(self, user: str) -> bool:
        r = self.admin("GET", f"users/{user}")
        r.raise_for_status()
        server = (r.json().get("servers") or {}).get("")
        return bool(server and server.get("ready"))

    def start_server(self, user: str, timeout: float = 150) -> None:
        if not self.server_ready(user):
            r = self.admin("POST", f"users/{user}/server")
            assert r.status_code in (201, 202, 400), (r.status_code, r.text)  # 400: already pending
        try:
            wait_until(lambda: self.server_ready(user), timeout, f"{user}'s server", self.proc)
        except (RuntimeError, TimeoutError) as err:
            raise AssertionError(f"{err}\n{self.log_tail()}") from None
        # ready in the hub's eyes; the extension answers too
        token = self.token_for(user)
        wait_until(
            lambda: self.request("GET", f"user/{user}/api/gpu-panel/status", token).status_code == 200,
            60,
            f"{user}'s gpu-panel API",
        )

    def stop_server(self, user: str) -> None:
        try:
            r = self.admin("DELETE", f"users/{user}/server")
            if r.status_code == 202:
                wait_until(lambda: not self.server_ready(user), 60, f"{user}'s server stopping")
        except (requests.RequestException, TimeoutError, RuntimeError):
            pass

    # -- the fake NVML -------------------------------------------------------------------------
    def hold(self, pid: int, nbytes: int, gpu: int = 0) -> None:
        """Have the fake NVML list ``pid`` holding ``nbytes`` on ``gpu`` (every user's server sees it)."""
        self.holders[pid] = (gpu, nbytes)
        self._write_nvml()

    def _write_nvml(self) -> None:
        processes: dict[str, list] = {str(g): [[os.getpid(), 40 * GiB]] for g in BUSY}
        for pid, (gpu, nbytes) in self.holders.items():
            processes.setdefault(str(gpu), []).append([pid, nbytes])
        tmp = self.nvml_config.with_suffix(".tmp")
        tmp.write_text(json.dumps({"gpus": FAKE_GPUS, "processes": processes}))
        tmp.chmod(0o644)
        tmp.replace(self.nvml_config)

    def log_tail(self, n: int = 80) -> str:
        return f"--- hub log ({self.log}) ---\n{_tail(self.log, n)}"


# -- system users ------------------------------------------------------------------------------
def _as_user(user: str, argv: list[str], env: dict[str, str]) -> tuple[bool, str]:
    try:
        r = subprocess.run(
            argv, user=user, group=pwd.getpwnam(user).pw_gid, extra_groups=[],
            env=env, cwd="/", capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    except OSError as err:
        return False, str(err)


def _user_can_reach_python_and_checkout(user: str, env: dict[str, str]) -> None:
    """The users' servers run ``sys.executable`` on this checkout: a skip that says how, when they can't.

    A venv made from an interpreter in a private home (pyenv under ``/root``) or a checkout there
    cannot be run by other users; no system folder's mode is changed to allow it. ``.ci/run``
    makes its venv from an interpreter others can run.
    """
    ok, out = _as_user(user, [sys.executable, "-c", "pass"], env)
    if not ok:
        real = os.path.realpath(sys.executable)
        needs.missing(
            f"user {user} cannot execute this venv's Python ({sys.executable} -> {real}: {out.strip()[-200:]}): "
            "make the venv from an interpreter other users can run, e.g. `/usr/bin/python3 -m venv .venv` "
            "(as .ci/run does)"
        )
    ok, out = _as_user(user, ["/bin/sh", "-c", 'test -r "$0/pyproject.toml" && test -x "$0"', str(REPO)], env)
    if not ok:
        needs.missing(f"user {user} cannot read this checkout ({REPO}): clone it outside a private home folder")


def _user_can_run_the_extension(user: str, env: dict[str, str]) -> None:
    """The users' servers import the extension with the fake NVML: fail with what they printed."""
    code = (
        "import jupyterhub.singleuser, jupyterlab, jupyter_gpu_panel, pynvml, sys\n"
        "assert jupyter_gpu_panel.__file__.startswith(sys.argv[1]), jupyter_gpu_panel.__file__\n"
        "pynvml.nvmlInit(); print(pynvml.nvmlDeviceGetCount())\n"
    )
    ok, out = _as_user(user, [sys.executable, "-c", code, str(REPO)], env)
    if not ok:
        pytest.fail(f"user {user}'s Python could not import the extension with the fake NVML:\n{out}", pytrace=False)


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _end(procs: list) -> None:
    """Terminate, then kill, those of ``procs`` (psutil handles: pid and start time) still running."""
    import psutil

    alive = [p for p in procs if p.is_running()]
    for p in alive:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(alive, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass


# -- the hub -----------------------------------------------------------------------------------
HUB_CONFIG = """\
import json
c = get_config()  # noqa
S = json.loads({settings!r})

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = S["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = S["hub_port"]
c.JupyterHub.db_url = "sqlite:///" + S["work"] + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = S["work"] + "/cookie_secret"
c.JupyterHub.pid_file = S["work"] + "/jupyterhub.pid"
c.JupyterHub.cleanup_servers = True
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % S["proxy_api_port"]
c.ConfigurableHTTPProxy.auth_token = S["proxy_token"]
c.ConfigurableHTTPProxy.command = [S["chp"]]
c.ConfigurableHTTPProxy.pid_file = S["work"] + "/proxy.pid"

c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = set(S["users"])

c.JupyterHub.services = [{{"name": S["service"], "api_token": S["admin_token"]}}]
c.JupyterHub.load_roles = [{{
    "name": "gpu-panel-test-admin",
    "scopes": ["admin:users", "admin:servers", "tokens", "access:servers", "list:users", "read:users", "read:hub"],
    "services": [S["service"]],
}}]

c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [S["python"], "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.ip = "127.0.0.1"
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.Spawner.notebook_dir = S["work"] + "/users/{{username}}/root"
c.Spawner.args = [
    "--ServerApp.jpserver_extensions={{'jupyter_gpu_panel': True}}",
    "--GPUPanel.source=nvml",
    "--GPUPanel.placement=most-free-memory",
]
c.Spawner.env_keep = ["PATH", "LANG", "LC_ALL"]


def per_user(sub):
    return lambda spawner: S["work"] + "/users/" + spawner.user.name + "/" + sub


c.Spawner.environment = {{
    "PYTHONPATH": S["pythonpath"],
    "GPU_PANEL_FAKE_NVML": S["nvml"],
    "JUPYTER_PATH": S["share"],
    "JUPYTER_CONFIG_DIR": per_user("config"),
    "JUPYTER_DATA_DIR": per_user("data"),
    "JUPYTER_RUNTIME_DIR": per_user("runtime"),
    "JUPYTERLAB_SETTINGS_DIR": per_user("settings"),
    "JUPYTERLAB_WORKSPACES_DIR": per_user("workspaces"),
    "IPYTHONDIR": per_user("ipython"),
}}


def device_plugin(spawner):
    # what a container spawner's device plugin does: the server's environment names its GPU
    gpus = S["device_plugin"].get(spawner.user.name)
    if gpus is not None:
        spawner.environment = {{**spawner.environment, "CUDA_VISIBLE_DEVICES": gpus}}


c.Spawner.pre_spawn_hook = device_plugin
"""


@pytest.fixture(scope="package")
def hub() -> Iterator[Hub]:
    needs.root("the JupyterHub test creates system users and spawns their servers (LocalProcessSpawner setuid)")
    if not (LABEXT / "package.json").exists() or not (LABEXT / "static").is_dir():
        pytest.fail(f"the front end is not built ({LABEXT} missing): `pip install -e .[test]` or `jlpm build:prod`")
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        pytest.fail("jupyterhub is not installed: `pip install .[test]` (its test extra has it)", pytrace=False)
    chp = needs.configurable_http_proxy()
    needs.chromium()  # the tests log in with a browser: skip before any user exists
    users = needs.SystemUsers()

    # a folder every user can read (pytest's tmp_path is root's, mode 0700)
    work = Path(tempfile.mkdtemp(prefix="gpu-panel-hub-"))
    hub: Optional[Hub] = None
    try:
        for name in USERS:
            users.ensure(name, home=True)
        work.chmod(0o755)
        share = work / "share" / "jupyter"
        (share / "labextensions").mkdir(parents=True)
        (share / "labextensions" / "jupyter-gpu-panel").symlink_to(LABEXT, target_is_directory=True)
        for d in (work / "share", share, share / "labextensions"):
            d.chmod(0o755)
        (work / "users").mkdir(mode=0o755)
        for name in USERS:
            pw = pwd.getpwnam(name)
            home = work / "users" / name
            for sub in ("root", "config/labconfig", "data", "runtime", "settings", "workspaces", "ipython"):
                (home / sub).mkdir(parents=True, exist_ok=True)
            # the Jupyter news toast would cover the panel
            (home / "config" / "labconfig" / "page_config.json").write_text(
                json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
            )
            for dirpath, _dirnames, filenames in os.walk(home):
                for n in [dirpath, *(os.path.join(dirpath, f) for f in filenames)]:
                    os.chown(n, pw.pw_uid, pw.pw_gid)
            (home / "runtime").chmod(0o700)

        nvml = work / "fake-nvml.json"
        pythonpath = os.pathsep.join([str(SHIM), str(REPO)])
        settings = {
            "port": free_port(),
            "hub_port": free_port(),
            "proxy_api_port": free_port(),
            "proxy_token": secrets.token_hex(32),
            "admin_token": secrets.token_hex(32),
            "service": ADMIN_SERVICE,
            "work": str(work),
            "chp": chp,
            "users": list(USERS),
            "python": sys.executable,
            "pythonpath": pythonpath,
            "nvml": str(nvml),
            "share": str(share),
            "device_plugin": DEVICE_PLUGIN,
        }
        hub = Hub(
            url=f"http://127.0.0.1:{settings['port']}/",
            admin_token=settings["admin_token"],
            proc=None,  # type: ignore[arg-type]
            workdir=work,
            log=work / "jupyterhub.log",
            nvml_config=nvml,
        )
        hub._write_nvml()

        # the users must be able to run what their servers will run
        probe_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/",
            "PYTHONPATH": pythonpath,
            "GPU_PANEL_FAKE_NVML": str(nvml),
        }
        _user_can_reach_python_and_checkout("alice", probe_env)
        _user_can_run_the_extension("alice", probe_env)

        config = work / "jupyterhub_config.py"
        config.write_text(HUB_CONFIG.format(settings=json.dumps(settings)))
        config.chmod(0o600)  # holds the admin and proxy tokens
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        with open(hub.log, "w") as fh:
            hub.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config)],
                cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

        def up() -> bool:
            return hub.admin("GET", "info").status_code == 200

        try:
            wait_until(up, 90, "jupyterhub", hub.proc)
        except (RuntimeError, TimeoutError) as err:
            pytest.fail(f"{err}\n{hub.log_tail()}", pytrace=False)
        yield hub
    finally:  # whatever of the setup ran: a failed step leaves no hub, process, folder or user behind
        if hub is not None:
            _stop_hub(hub)
        if os.environ.get("GPU_PANEL_HUB_KEEP") == "1":
            print(f"\n[hub] kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        left = users.remove_all()
        assert not left, f"test users left behind: {left}"


def _stop_hub(hub: Hub) -> None:
    if hub.proc is None:
        return
    started = _descendants(hub.proc.pid)  # the proxy, the users' servers, their kernels
    if hub.proc.poll() is None:
        for user in USERS:
            hub.stop_server(user)
        hub.proc.send_signal(signal.SIGTERM)  # cleanup_servers: the hub stops servers and its proxy
        try:
            hub.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hub.proc.kill()
            hub.proc.wait(timeout=10)
    # whatever of it outlived the hub (a killed hub leaves its proxy and the servers running)
    _end(started)


# -- the browser -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    needs.chromium()
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield b
    b.close()
    pw.stop()


@dataclass
class Session:
    """A user logged in through the hub's login page, in a browser context of their own."""

    user: str
    page: Any
    context: Any
    sockets: list[str]
    errors: list[str]


def login(hub: Hub, browser: Any, user: str) -> Session:
    ctx = browser.new_context(viewport={"width": 1280, "height": 1250})
    page = ctx.new_page()
    page.set_default_timeout(60000)
    sockets: list[str] = []
    errors: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(hub.url + "hub/login")
    page.fill("input#username_input", user)
    page.fill("input#password_input", "any password: DummyAuthenticator")
    page.click("#login_submit")
    # the hub spawns the server (spawn-pending page), then redirects into JupyterLab
    page.wait_for_url(f"**/user/{user}/lab**", timeout=180000)
    page.wait_for_selector("#jp-main-dock-panel", state="attached", timeout=90000)
    page.wait_for_selector('li.lm-TabBar-tab[data-id="jp-gpu-panel"]', state="attached", timeout=60000)
    return Session(user, page, ctx, sockets, errors)


@pytest.fixture(scope="module")
def alice(hub: Hub, browser: Any) -> Iterator[Session]:
    t0 = time.monotonic()
    try:
        session = login(hub, browser, "alice")
    except Exception as err:  # noqa: BLE001 - the hub's log says why
        pytest.fail(f"alice's login failed: {err}\n{hub.log_tail()}", pytrace=False)
    print(f"\n[hub] alice logged in, server spawned and JupyterLab loaded in {time.monotonic() - t0:.1f} s")
    yield session
    session.context.close()


@dataclass
class Bob:
    token: str
    kernel_id: str
    kernel_pid: int
    job: subprocess.Popen  # a process running as bob, its command line holding a secret


SECRET = "hunter2"


@pytest.fixture(scope="module")
def bob(hub: Hub) -> Iterator[Bob]:
    t0 = time.monotonic()
    hub.start_server("bob")
    token = hub.token_for("bob")
    r = hub.request("POST", "user/bob/api/kernels", token, {"name": "python3"})
    assert r.status_code == 201, (r.status_code, r.text)
    kernel_id = r.json()["id"]

    def kernel_pid() -> Optional[int]:
        doc = hub.request("GET", "user/bob/api/gpu-panel/kernels?refresh=1", token).json()
        for k in doc["kernels"]:
            if k["kernel_id"] == kernel_id and k.get("pid"):
                return int(k["pid"])
        return None

    wait_until(lambda: kernel_pid() is not None, 60, "bob's kernel pid")
    job = subprocess.Popen(
        ["/bin/sh", "-c", "sleep 300; :", "job", f"--db-password={SECRET}"],
        user="bob", group=pwd.getpwnam("bob").pw_gid, extra_groups=[], cwd="/", start_new_session=True,
    )  # fmt: skip
    print(f"\n[hub] bob's server and kernel up in {time.monotonic() - t0:.1f} s")
    pid = kernel_pid()
    assert pid is not None
    yield Bob(token, kernel_id, pid, job)
    try:
        os.killpg(job.pid, signal.SIGKILL)  # the shell and its sleep: the group this job leads
    except ProcessLookupError:
        pass
    job.wait(timeout=10)
