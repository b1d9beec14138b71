"""What a test needs from the machine beyond the Python test extras, and what it does without it.

A stranger's clone runs ``pip install ".[test]" && python -m pytest tests``: a test that needs a
program the machine lacks (Chromium, Prometheus, configurable-http-proxy) or root (system users)
is *skipped* there, with a one-line reason that says how to get the missing piece. CI installs
all of them and sets ``GPU_PANEL_REQUIRE_ALL=1``, which turns every skip into a failure
(``tests/conftest.py`` enforces it for skips from anywhere, ``importorskip`` included), so CI
still runs everything.

System users made for a test are removed when it ends, pass or fail: ``SystemUsers``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

REQUIRE_ALL = os.environ.get("GPU_PANEL_REQUIRE_ALL") == "1"
REQUIRE_ALL_HINT = "GPU_PANEL_REQUIRE_ALL=1 makes every skip a failure (CI installs everything)"
REPO = Path(__file__).resolve().parents[1]


def missing(reason: str) -> NoReturn:
    """Skip (a stranger's machine) or fail (CI, ``GPU_PANEL_REQUIRE_ALL=1``) with ``reason``."""
    if REQUIRE_ALL:
        pytest.fail(f"{reason} [{REQUIRE_ALL_HINT}]", pytrace=False)
    pytest.skip(reason)


def program(name: str, how: str, also: tuple[str, ...] = ()) -> str:
    """The path of program ``name`` (on PATH or at one of ``also``), or a skip that says ``how``."""
    found = shutil.which(name) or next((p for p in also if os.access(p, os.X_OK)), None)
    if found is None:
        missing(f"{name} is not installed: {how}")
    return found


def chromium() -> str:
    path = os.environ.get("GPU_PANEL_CHROMIUM", "/usr/bin/chromium")
    if not os.access(path, os.X_OK):
        missing(
            f"Chromium not found at {path}: `apt-get install -y chromium` (or set GPU_PANEL_CHROMIUM); "
            "never `playwright install`"
        )
    return path


def prometheus() -> str:
    return program("prometheus", "`apt-get install -y prometheus`", also=("/usr/bin/prometheus",))


#: where .ci/run installs the hub's proxy: under the checkout, not globally
LOCAL_PROXY = REPO / "tests" / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"


def configurable_http_proxy() -> str:
    return program(
        "configurable-http-proxy",
        "`npm install --prefix tests/hub configurable-http-proxy@5` (installs it under the checkout)",
        also=(str(LOCAL_PROXY),),
    )


def root(why: str) -> None:
    if os.geteuid() != 0:
        missing(f"needs root: {why}; run it as root (as CI does)")


class SystemUsers:
    """System users a test creates and removes (``userdel --remove``) at teardown, pass or fail.

    A name that already exists is used as it is and never removed: the test does not own it.
    """

    def __init__(self) -> None:
        self.created: list[str] = []

    def ensure(self, name: str, home: bool = False) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        useradd = program("useradd", "the `passwd` package", also=("/usr/sbin/useradd",))
        args = [useradd, "--shell", "/usr/sbin/nologin" if not home else "/bin/bash"]
        args += ["--create-home"] if home else ["--system", "--no-create-home"]
        r = subprocess.run([*args, name], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"useradd {name} failed: {r.stderr.strip()}", pytrace=False)
        self.created.append(name)
        return pwd.getpwnam(name)

    def remove_all(self) -> list[str]:
        """Remove the users this object created; the names it could not remove."""
        userdel = shutil.which("userdel") or "/usr/sbin/userdel"
        left = []
        for name in reversed(self.created):
            _end_processes_of(name)
            r = subprocess.run([userdel, "--remove", name], capture_output=True, text=True)
            try:
                pwd.getpwnam(name)
                left.append(f"{name}: {r.stderr.strip()}")
            except KeyError:
                pass
        self.created.clear()
        return left


def _end_processes_of(name: str) -> None:
    """``userdel`` refuses a user with running processes: end those first (the test's own)."""
    import psutil

    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    procs = [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)
