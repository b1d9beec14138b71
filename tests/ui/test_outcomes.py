"""Browser tests: what the panel says when an action cannot do what was asked.

A real lab whose python3 kernel cannot import torch (a kernelspec that blocks the module, as an
environment without torch would): *Track memory* gets the kernel's own reason back from the real
server and the row shows it, then offers the action again; *New benchmark* checks that kernel for
torch first and warns with the install command before creating anything.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import SCREENSHOTS, Lab, start_lab
from .test_panel import _rest, notebook_session, open_lab, open_panel

pytestmark = pytest.mark.ui

NO_TORCH = re.compile(r"torch is not installed")


@pytest.fixture(scope="module")
def no_torch_lab(tmp_path_factory) -> Iterator[Lab]:
    lab = start_lab(tmp_path_factory.mktemp("lab-no-torch"), "replay", no_torch=True)
    yield lab
    lab.stop()


def save_docs_screenshot(locator, name: str, artifacts: Path) -> None:
    """Into tests/ui/artifacts; with GPU_PANEL_UPDATE_SCREENSHOTS=1 also into docs/screenshots."""
    out = artifacts / name
    locator.screenshot(path=str(out))
    if os.environ.get("GPU_PANEL_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(out, SCREENSHOTS / name)


def test_track_memory_without_torch_says_why_and_offers_it_again(no_torch_lab: Lab, page, artifacts):
    nb = "no-torch.ipynb"
    session = notebook_session(no_torch_lab, nb)
    kernel_id = session["kernel"]["id"]
    try:
        open_lab(page, no_torch_lab)
        open_panel(page)
        row = page.locator(f'#jp-gpu-panel [data-kernel-id="{kernel_id}"]')
        row.wait_for(state="visible", timeout=20000)
        track = row.get_by_role("button", name="Track memory")
        for attempt in range(2):
            with page.expect_response(lambda r: f"kernels/{kernel_id}/probe" in r.url, timeout=30000) as resp:
                track.click()
            body = resp.value.json()
            assert resp.value.status == 200 and body["ok"] is False, body
            assert NO_TORCH.search(body["message"]), body
            # The kernel's reason, where the user clicked; the action on offer again.
            alert = row.get_by_role("alert")
            alert.wait_for(timeout=10000)
            assert NO_TORCH.search(alert.inner_text()), alert.inner_text()
            assert "jupyter-gpu-panel:" not in alert.inner_text()
            assert track.is_visible() and track.is_enabled()
            assert row.locator('[data-testid="probe"]').inner_text() == "not tracked"
            assert "waiting for the first step" not in row.inner_text()
            if attempt == 0:
                save_docs_screenshot(row, "kernel-error.png", artifacts)
                # Dismissed, it goes; the next try brings it back.
                row.get_by_role("button", name="Dismiss").click()
                alert.wait_for(state="detached", timeout=5000)
        assert page.page_errors == []
    finally:
        _rest(no_torch_lab, "DELETE", f"api/sessions/{session['id']}")


def _notebooks(lab: Lab) -> set[str]:
    return {f["name"] for f in _rest(lab, "GET", "api/contents")["content"] if f["name"].endswith(".ipynb")}


def _kernel_ids(lab: Lab) -> set[str]:
    return {k["id"] for k in _rest(lab, "GET", "api/kernels")}


def test_new_benchmark_warns_when_the_kernel_has_no_torch(no_torch_lab: Lab, page):
    open_lab(page, no_torch_lab)
    open_panel(page)
    before = _notebooks(no_torch_lab)
    kernels_before = _kernel_ids(no_torch_lab)
    button = page.locator("#jp-gpu-panel").get_by_role("button", name="New benchmark")

    # The check runs in a throwaway kernel of the notebooks' kernelspec, then the warning.
    button.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=60000)
    text = dialog.inner_text()
    assert "PyTorch is not installed in Python 3 (no torch)" in text, text
    assert "%pip install --index-url https://download.pytorch.org/whl/cpu torch" in text, text
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="detached")
    page.wait_for_timeout(1000)
    assert _notebooks(no_torch_lab) == before, "a notebook was created although the user cancelled"

    # "Create anyway" creates and opens it.
    button.click()
    dialog.wait_for(timeout=60000)
    dialog.get_by_role("button", name="Create anyway").click()
    deadline = time.monotonic() + 20
    while not (created := _notebooks(no_torch_lab) - before):
        assert time.monotonic() < deadline, "no benchmark notebook was created"
        time.sleep(0.5)
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=created.pop()).wait_for(timeout=20000)

    # The throwaway kernels are gone again (the notebook's own kernel aside).
    sessions = {s["kernel"]["id"] for s in _rest(no_torch_lab, "GET", "api/sessions")}
    deadline = time.monotonic() + 20
    while _kernel_ids(no_torch_lab) - kernels_before - sessions:
        assert time.monotonic() < deadline, "a torch-check kernel was left running"
        time.sleep(0.5)
        sessions = {s["kernel"]["id"] for s in _rest(no_torch_lab, "GET", "api/sessions")}
    assert page.page_errors == []


def test_new_benchmark_does_not_warn_when_the_kernel_has_torch(replay_lab: Lab, page):
    """The test venv's python3 kernel has (the CPU build of) torch: no dialog, the notebook opens."""
    import importlib.util

    assert importlib.util.find_spec("torch") is not None, "this test needs torch in the test environment"
    open_lab(page, replay_lab)
    open_panel(page)
    before = _notebooks(replay_lab)
    page.locator("#jp-gpu-panel").get_by_role("button", name="New benchmark").click()
    deadline = time.monotonic() + 60
    while not (created := _notebooks(replay_lab) - before):
        assert page.locator(".jp-Dialog").count() == 0, page.locator(".jp-Dialog").inner_text()
        assert time.monotonic() < deadline, "no benchmark notebook was created"
        time.sleep(0.5)
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=created.pop()).wait_for(timeout=20000)
    assert page.page_errors == []
