"""Browser test of the GPU picker (issue 20): *New notebook on GPU…* from the launcher, on a
real JupyterLab over the fake 8-GPU NVML (tests/nvml_shim) with GPUs 0-2 busy, placement
most-free-memory. The picker lists the GPUs with their free memory and holders, preselects
the one placement would choose, and the notebook it opens runs on the GPU picked: its
kernel's CUDA_VISIBLE_DEVICES (read by the server from the process) and the kernel row say so.
"""

from __future__ import annotations

import os
import time

import pytest

from .conftest import Lab, start_lab
from .test_panel import _rest, open_lab, open_panel

pytestmark = pytest.mark.ui

GiB = 2**30


@pytest.fixture(scope="module")
def placement_lab(tmp_path_factory):
    lab = start_lab(
        tmp_path_factory.mktemp("lab-placement"),
        "nvml",
        ["--GPUPanel.placement=most-free-memory"],
        fake_gpus=8,
    )
    # another process holds 40 GiB on each of GPUs 0-2
    lab.set_gpu_processes({i: [(os.getpid(), 40 * GiB)] for i in range(3)}, gpus=8)
    yield lab
    lab.stop()


def test_new_notebook_on_gpu_from_the_launcher(placement_lab: Lab, page):
    open_lab(page, placement_lab)
    page.locator(
        '.jp-LauncherCard[title*="GPU you choose"], .jp-LauncherCard:has-text("New notebook on GPU")'
    ).first.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(state="visible")
    choices = dialog.locator(".jp-GpuPanel-gpuChoices li")
    choices.first.wait_for()
    texts = [t.strip() for t in choices.all_inner_texts()]
    assert len(texts) == 8
    assert texts[0].startswith("GPU 3 ·") and "free" in texts[0] and "0 holders" in texts[0]
    assert any(t.startswith("GPU 0 ·") and "1 holder" in t for t in texts)
    assert dialog.locator('input[data-gpu="3"]').is_checked()  # where placement would put it
    dialog.locator('input[data-gpu="5"]').check()
    dialog.locator("button.jp-mod-accept").click()
    page.wait_for_selector(".jp-NotebookPanel", timeout=60000)
    deadline = time.time() + 60
    row = None
    while time.time() < deadline:
        doc = _rest(placement_lab, "GET", "api/gpu-panel/kernels?refresh=1")
        rows = [k for k in doc["kernels"] if k["notebook"]]
        if rows:
            row = rows[0]
            break
        time.sleep(0.5)
    assert row is not None, "no notebook session with a kernel"
    assert row["placement"]["cuda_visible_devices"] == "5" and row["placement"]["readable"]
    assert row["placement"]["gpus"] == [5] and row["placement"]["source"] == "request"
    open_panel(page)
    gpus = page.locator(f'li[data-kernel-id="{row["kernel_id"]}"] [data-testid="kernel-gpus"]')
    gpus.wait_for()
    assert gpus.inner_text() == "GPU 5 (chosen)"
    assert not page.page_errors  # type: ignore[attr-defined]
