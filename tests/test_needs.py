"""The skip rule of a stranger's clone: a missing program skips with its reason, and under
``GPU_PANEL_REQUIRE_ALL=1`` (CI) every skip is a failure that still gives the reason."""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CASES = """
import pytest
from needs import program

def test_needs_a_missing_program():
    program("gpu-panel-no-such-program", "`apt-get install -y gpu-panel-no-such-program`")

def test_importorskip():
    pytest.importorskip("gpu_panel_no_such_module")

def test_runs():
    assert program("sh", "coreutils")
"""


def run_cases(tmp_path: Path, require_all: bool) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text((HERE / "conftest.py").read_text())
    (tmp_path / "test_cases.py").write_text(CASES)
    env = {k: v for k, v in os.environ.items() if k != "GPU_PANEL_REQUIRE_ALL"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    if require_all:
        env["GPU_PANEL_REQUIRE_ALL"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", "-o", "addopts=", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_missing_program_skips_with_how_to_get_it(tmp_path):
    r = run_cases(tmp_path, require_all=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed, 2 skipped" in r.stdout, r.stdout
    assert "gpu-panel-no-such-program is not installed: `apt-get install -y gpu-panel-no-such-program`" in r.stdout


def test_require_all_turns_every_skip_into_a_failure(tmp_path):
    r = run_cases(tmp_path, require_all=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "2 failed, 1 passed" in r.stdout, r.stdout
    assert "skipped under GPU_PANEL_REQUIRE_ALL=1" in r.stdout
    assert "gpu_panel_no_such_module" in r.stdout  # the reason survives
