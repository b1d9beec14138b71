"""Browser test: an idle notebook sitting on GPU memory.

A real lab on the fake NVML (tests/nvml_shim: only the NVML boundary is faked) that calls a kernel
an idle holder after 2 s. A real notebook kernel runs a cell that imports torch (the CPU build on
this machine), then NVML lists its pid holding 18 GiB, as it would after a training cell. The row
says *Idle · holding 18 GiB* with the server's sentence, a notification says so once, and
*Release cached memory* runs the real release in the kernel: the row shows the server's outcome and
the kernel keeps its variables. A second lab shuts idle holders down after 3 s, and the Kernels
section says which one it shut down.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from .conftest import ARTIFACTS, Lab, start_lab
from .test_node import kernel_pid
from .test_outcomes import save_docs_screenshot
from .test_panel import _rest, notebook_session, open_lab, open_panel

pytestmark = pytest.mark.ui

GiB = 1024**3
NOTHING_TO_RELEASE = "torch in this kernel has not used a GPU: nothing to release."
IDLE_ARGS = ["--GPUPanel.idle_after=2", "--GPUPanel.kernel_refresh=0.5"]


@pytest.fixture(scope="module")
def idle_lab(tmp_path_factory) -> Iterator[Lab]:
    lab = start_lab(tmp_path_factory.mktemp("lab-idle"), "nvml", extra_args=IDLE_ARGS, fake_gpus=1)
    yield lab
    lab.stop()


def run_cell(page, code: str) -> str:
    """Type ``code`` into the open notebook's last cell, run it (Shift+Enter), and return its output."""
    # The kernel is connected and idle (typing earlier can land in a cell the notebook then replaces).
    page.wait_for_function(
        "() => document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator')"
        "?.dataset.status === 'idle'",
        timeout=60000,
    )
    # A notebook opened on a session the test made can race JupyterLab's own kernel prompt
    # ("Select Kernel", seen once in CI's shape): keep the session's kernel, as a user would.
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and dialog.first.is_visible():
        text = dialog.first.inner_text()
        assert "Kernel" in text, f"an unexpected dialog is open: {text!r}"
        dialog.first.locator(".jp-Dialog-footer .jp-mod-accept").click()
        dialog.first.wait_for(state="detached", timeout=10000)
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell")
    cell = cells.nth(cells.count() - 1)
    editor = cell.locator(".cm-content")
    for _ in range(3):
        editor.click()
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type(code)
        if editor.inner_text().strip() == code:
            break
        page.wait_for_timeout(500)
    assert editor.inner_text().strip() == code, editor.inner_text()
    # The run is over when the cell has its execution count. Under load a Shift+Enter can go
    # unseen (the cell never shows "[*]"): then it is pressed again, on the same cell.
    prompt = cell.locator(".jp-InputPrompt")
    deadline = time.monotonic() + 60
    for attempt in range(3):
        page.keyboard.press("Shift+Enter")
        retry = time.monotonic() + 10
        while not re.search(r"\[\d+\]", prompt.inner_text()):
            if time.monotonic() > deadline:
                page.screenshot(path=str(ARTIFACTS / "run-cell-failed.png"))
                pytest.fail(f"the cell {code!r} did not run: {prompt.inner_text()!r}")
            if attempt < 2 and "*" not in prompt.inner_text() and time.monotonic() > retry:
                editor.click()
                break
            page.wait_for_timeout(200)
        else:
            break
    return cell.locator(".jp-OutputArea").inner_text()


def hide_toasts(page, text: str) -> None:
    for toast in page.locator(".Toastify__toast", has_text=text).all():
        if toast.is_visible():
            toast.get_by_title("Hide notification").click()


def test_idle_holder_badge_notification_and_release(idle_lab: Lab, page, artifacts):
    nb = "train.ipynb"
    session = notebook_session(idle_lab, nb)
    kernel_id = session["kernel"]["id"]
    try:
        open_lab(page, idle_lab)
        open_panel(page)
        row = page.locator(f'#jp-gpu-panel [data-kernel-id="{kernel_id}"]')
        row.wait_for(state="visible", timeout=20000)

        # The notebook, opened on its kernel; a cell that imports torch and keeps a tensor.
        row.get_by_role("button", name=nb).click()
        page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=nb).wait_for(timeout=20000)
        assert run_cell(page, "import torch; x = torch.ones(3)").strip() == ""

        # NVML lists the kernel's pid holding 18 GiB; 2 s idle later, it is an idle holder.
        pid = kernel_pid(idle_lab, kernel_id)
        idle_lab.set_gpu_processes({0: [[pid, 18 * GiB]]}, gpus=1)
        badge = row.locator('[data-testid="idle-badge"]')
        badge.wait_for(timeout=30000)
        assert badge.inner_text() == "Idle · holding 18 GiB"
        assert row.get_attribute("data-idle-holder") == "true"
        message = row.locator('[data-testid="idle-message"]')
        assert re.fullmatch(r"Idle \d+ s, holding 18 GiB\.", message.inner_text()), message.inner_text()
        assert (badge.get_attribute("title") or "").startswith("Idle ")  # the same sentence, as a tooltip

        # Its actions, least destructive first.
        buttons = row.locator(".jp-GpuPanel-buttons jp-button")
        labels = [buttons.nth(i).inner_text().strip() for i in range(buttons.count())]
        assert labels[:3] == ["Release cached memory", "Restart", "Shut down"], labels
        assert "Interrupt" not in labels

        # One notification, with the server's sentence and the release on offer.
        toast = page.locator(".Toastify__toast", has_text=f"{nb}: Idle")
        toast.wait_for(timeout=10000)
        assert "holding 18 GiB" in toast.inner_text()
        assert toast.get_by_role("button", name="Release cached memory").is_visible()
        page.wait_for_timeout(1500)  # more kernels documents arrive (0.5 s apart): no second one
        assert page.locator(".Toastify__toast", has_text=f"{nb}: Idle").count() == 1
        toast.screenshot(path=str(artifacts / "idle-notification.png"))

        # The notification's own button releases, the outcome in a toast.
        with page.expect_response(lambda r: f"kernels/{kernel_id}/release" in r.url, timeout=30000) as resp:
            toast.get_by_role("button", name="Release cached memory").click()
        assert resp.value.json()["message"] == NOTHING_TO_RELEASE
        done = page.locator(".Toastify__toast", has_text=f"{nb}: {NOTHING_TO_RELEASE}")
        done.wait_for(timeout=10000)
        hide_toasts(page, nb)  # they cover the sidebar
        page.wait_for_function(  # gone (their exit animation over) before the next check counts them
            "t => ![...document.querySelectorAll('.Toastify__toast')].some(e => e.textContent.includes(t))",
            arg=nb,
            timeout=10000,
        )
        save_docs_screenshot(row, "kernel-idle.png", artifacts)

        # Release cached memory, from the row: the real release in the kernel, the server's words.
        with page.expect_response(lambda r: f"kernels/{kernel_id}/release" in r.url, timeout=30000) as resp:
            row.get_by_role("button", name="Release cached memory").click()
        body = resp.value.json()
        assert resp.value.status == 200 and body["ok"] is True, body
        assert body["torch"] is True and body["cuda"] is False, body
        assert body["message"] == NOTHING_TO_RELEASE, body
        note = row.locator('[data-outcome="info"]')
        note.wait_for(timeout=5000)
        assert note.inner_text() == NOTHING_TO_RELEASE
        row.screenshot(path=str(artifacts / "kernel-idle-released.png"))

        # The panel's own release is no user activity: the kernel stays an idle holder, in the same
        # episode, so no second notification comes.
        page.wait_for_timeout(3000)  # past idle_after (2 s) and several kernels documents
        assert row.get_attribute("data-idle-holder") == "true"
        assert page.locator(".Toastify__toast", has_text=f"{nb}: Idle").count() == 0

        # The kernel kept its variables.
        assert "tensor(3.)" in run_cell(page, "print(x.sum())")
        assert page.page_errors == []
    finally:
        _rest(idle_lab, "DELETE", f"api/sessions/{session['id']}")


@pytest.fixture(scope="module")
def culling_lab(tmp_path_factory) -> Iterator[Lab]:
    lab = start_lab(
        tmp_path_factory.mktemp("lab-cull"),
        "nvml",
        extra_args=[*IDLE_ARGS, "--GPUPanel.cull_idle_gpu_kernels_after=3"],
        fake_gpus=1,
    )
    yield lab
    lab.stop()


def test_culled_kernel_is_named_in_the_kernels_section(culling_lab: Lab, page):
    nb = "forgotten.ipynb"
    session = notebook_session(culling_lab, nb)
    kernel_id = session["kernel"]["id"]
    pid = kernel_pid(culling_lab, kernel_id)
    open_lab(page, culling_lab)
    open_panel(page)
    # Opened, the notebook connects to its kernel, which goes idle (unopened, it stays "starting").
    row = page.locator(f'#jp-gpu-panel li.jp-GpuPanel-kernel[data-kernel-id="{kernel_id}"]')
    row.get_by_role("button", name=nb).click()
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=nb).wait_for(timeout=20000)
    culling_lab.set_gpu_processes({0: [[pid, 18 * GiB]]}, gpus=1)
    culled = page.locator("#jp-gpu-panel").get_by_role("list", name="Kernels shut down for sitting idle")
    line = culled.locator(f'li[data-kernel-id="{kernel_id}"]')
    line.wait_for(timeout=30000)
    assert re.fullmatch(rf"Shut down {re.escape(nb)}: idle \d+ s while holding 18 GiB", line.inner_text()), (
        line.inner_text()
    )
    # The kernel is gone from the list of running kernels.
    row.wait_for(state="detached", timeout=10000)
    assert page.page_errors == []
