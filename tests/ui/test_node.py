"""Browser test: an 8-GPU node at a glance.

A real lab on the fake NVML (tests/nvml_shim: only the NVML boundary is faked) answering eight
H100s; a real notebook kernel holds memory on GPU 0 and another process on GPU 3, as NVML would
list their pids. The panel shows one overview row per GPU with who holds it, the detailed cards
collapsed (opened from the overview), and the status bar sums up all eight.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from .conftest import Lab, start_lab
from .test_outcomes import save_docs_screenshot
from .test_panel import _rest, notebook_session, open_lab, open_panel

pytestmark = pytest.mark.ui

GiB = 1024**3
GPUS = 8


@pytest.fixture(scope="module")
def node_lab(tmp_path_factory) -> Iterator[Lab]:
    lab = start_lab(tmp_path_factory.mktemp("lab-node"), "nvml", fake_gpus=GPUS)
    yield lab
    lab.stop()


def kernel_pid(lab: Lab, kernel_id: str) -> int:
    deadline = time.monotonic() + 20
    while True:
        for k in lab.api("kernels")["kernels"]:
            if k["kernel_id"] == kernel_id and k.get("pid"):
                return int(k["pid"])
        assert time.monotonic() < deadline, "the server never reported the kernel's pid"
        time.sleep(0.5)


def test_eight_gpus_overview_cards_and_status_bar(node_lab: Lab, page, artifacts):
    status = node_lab.api("status")
    assert status["source"] == "nvml" and status["state"] == "ok", status
    nb = "train.ipynb"
    session = notebook_session(node_lab, nb)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        pid = kernel_pid(node_lab, session["kernel"]["id"])
        node_lab.set_gpu_processes({0: [[pid, 6 * GiB]], 3: [[other.pid, GiB]]}, gpus=GPUS)
        open_lab(page, node_lab)
        open_panel(page)
        panel = page.locator("#jp-gpu-panel")

        # One overview row per GPU, in order, each with every column filled.
        overview = panel.get_by_role("region", name="GPU overview")
        overview.wait_for(timeout=20000)
        rows = overview.locator("li")
        assert rows.count() == GPUS
        assert [rows.nth(i).get_attribute("data-gpu-index") for i in range(GPUS)] == [str(i) for i in range(GPUS)]
        for i in range(GPUS):
            r = rows.nth(i)
            assert re.fullmatch(r"\d+%", r.locator('[data-testid="ov-util"]').inner_text().strip())
            assert re.fullmatch(r"[\d.]+/[\d.]+ GiB", r.locator('[data-testid="ov-mem"]').inner_text().strip())
            assert re.fullmatch(r"\d+ W", r.locator('[data-testid="ov-power"]').inner_text().strip())
            assert re.fullmatch(r"\d+ °C", r.locator('[data-testid="ov-temp"]').inner_text().strip())

        # Who holds each GPU: the notebook behind the kernel's pid, the other process by its user.
        holders = lambda i: rows.nth(i).locator('[data-testid="ov-holders"]')  # noqa: E731
        page.wait_for_function(
            "nb => document.querySelector('#jp-gpu-panel li[data-gpu-index=\"0\"] [data-testid=ov-holders]')"
            ".textContent.includes(nb)",
            arg=nb,
            timeout=20000,
        )
        assert holders(0).inner_text() == nb
        assert "6 GiB" in holders(0).get_attribute("title")
        page.wait_for_function(
            "() => document.querySelector('#jp-gpu-panel li[data-gpu-index=\"3\"] [data-testid=ov-holders]')"
            ".textContent !== 'idle'",
            timeout=20000,
        )
        assert holders(3).inner_text().endswith("python") or ":" in holders(3).inner_text()
        assert holders(5).inner_text() == "idle"

        # The detailed cards are there, collapsed: no chart drawn until one is opened.
        cards = panel.locator(".jp-GpuPanel-card")
        assert cards.count() == GPUS
        assert all(cards.nth(i).get_attribute("data-expanded") == "false" for i in range(GPUS))
        assert cards.locator(".jp-GpuPanel-chart").count() == 0

        # The status bar sums up the node.
        text = page.locator('[data-testid="gpu-status"]').inner_text().strip()
        assert re.fullmatch(r"8 GPUs \d+% · [\d.]+/[\d.]+ GiB", text), text
        page.wait_for_timeout(500)
        save_docs_screenshot(panel.locator(".jp-GpuPanel-root"), "panel-8-gpus.png", artifacts)

        # The overview opens a GPU's card.
        rows.nth(3).get_by_role("button", name="3").click()
        card = panel.locator('.jp-GpuPanel-card[data-gpu-index="3"]')
        page.wait_for_function(
            "() => document.querySelector('#jp-gpu-panel .jp-GpuPanel-card[data-gpu-index=\"3\"]')"
            ".dataset.expanded === 'true'"
        )
        card.locator(".jp-GpuPanel-chart").first.wait_for()
        assert card.locator('[data-testid="mem"]').is_visible()
        assert card.get_by_role("table").locator(f'tr[data-pid="{other.pid}"]').count() == 1
        # ... and its header closes it again.
        card.get_by_role("button", name=re.compile(r"^GPU 3")).click()
        page.wait_for_function(
            "() => document.querySelector('#jp-gpu-panel .jp-GpuPanel-card[data-gpu-index=\"3\"]')"
            ".dataset.expanded === 'false'"
        )
        assert page.page_errors == []
    finally:
        other.kill()
        other.wait()
        _rest(node_lab, "DELETE", f"api/sessions/{session['id']}")
