"""Browser test: a training script that runs the memory probe outside any kernel.

A script started from a terminal calls ``jupyter_gpu_panel.probe.start()``: its probe files
land in the runtime dir with no kernel id and its command line. Here a real process that is no
kernel (a sleeping Python, started before the files) stands for the script, and beside it the
files its probe would write: the first 120 steps of the H100 run that leaked 32 MiB a step. The
real server lists it under "scripts", runs the real detector, asks the probe for a triage on the
alarm, and takes the "Find the leaking line" button's request. Nothing between the server and
the browser is faked. Its own lab (module-scoped): no probe of another test is left behind.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Lab
from .test_kernel_memory import LEAK_MESSAGE, alarm_triage_flow, write_probe
from .test_panel import open_lab, open_panel

pytestmark = pytest.mark.ui

ARGV = ["train.py", "--epochs", "3"]
COMMAND = "train.py --epochs 3"


def test_script_row_chart_leak_and_triage(replay_lab: Lab, page, artifacts: Path):
    # the script: alive, no kernel's, started before its probe files
    script = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    pid = script.pid
    probe_dir = Path(replay_lab.env["JUPYTER_RUNTIME_DIR"]) / "gpu-panel"
    try:
        write_probe(probe_dir, pid, None, cells=False, argv=ARGV)
        open_lab(page, replay_lab)
        open_panel(page)
        scripts = page.locator("#jp-gpu-panel").get_by_role("list", name="Scripts")
        row = scripts.locator(f'[data-script-pid="{pid}"]')
        row.wait_for(state="visible", timeout=20000)
        assert page.locator("#jp-gpu-panel .jp-GpuPanel-subTitle", has_text="Scripts").is_visible()

        # Titled by its command, with its pid; none of a kernel's buttons.
        head = row.locator(".jp-GpuPanel-kernelHead")
        assert head.locator(".jp-GpuPanel-scriptTitle").inner_text() == COMMAND
        assert f"pid {pid}" in head.inner_text()
        assert row.get_attribute("aria-label") == f"Script {COMMAND}"
        for name in ("Interrupt", "Restart", "Shut down", "Track memory"):
            assert row.get_by_role("button", name=name).count() == 0

        # The chart: per step from the probe, with the forecast and the limit.
        chart = row.locator(".jp-GpuPanel-kernelChart")
        chart.wait_for(state="visible", timeout=20000)
        assert chart.get_attribute("data-axis") == "step"
        assert chart.get_attribute("data-forecast") in ("full", "clipped")
        label = chart.get_by_role("img").get_attribute("aria-label")
        assert label.startswith("Memory by step"), label
        for word in ("Allocated", "Reserved", "Forecast", "Limit"):
            assert word in label, label
        assert chart.locator("canvas").bounding_box()["height"] > 40

        # The detector's verdict in the server's words; a script has no cells to advise on.
        row.get_by_text(LEAK_MESSAGE).first.wait_for(timeout=15000)
        assert "jp-GpuPanel-kernel-alarm" in row.get_attribute("class")
        assert row.locator('[data-hint="cells"]').count() == 0

        triage, status, button = alarm_triage_flow(
            page, row, f'[data-script-pid="{pid}"]', probe_dir, pid, f"GPU memory leak in {COMMAND}"
        )
        first = triage.get_by_role("list", name="Growing allocations").locator("li").nth(0).inner_text()
        assert "record_snapshot.py:27" in first and "32 MiB a step" in first
        row.screenshot(path=str(artifacts / "script-leak.png"))

        # Again, by hand: the button posts to the script's probe route, the real server asks the probe.
        assert not (probe_dir / f"probe-{pid}.triage-request").exists()
        assert button.is_enabled()
        with page.expect_response(lambda r: f"api/gpu-panel/probes/{pid}/triage" in r.url) as resp:
            button.click()
        assert resp.value.request.method == "POST"
        assert resp.value.status == 202 and resp.value.json()["steps"] == 4
        status.filter(has_text="Recording allocations for the next 4 steps…").wait_for(timeout=15000)
        assert json.loads((probe_dir / f"probe-{pid}.triage-request").read_text())["steps"] == 4

        # The script ends: its row goes.
        script.kill()
        script.wait()
        row.wait_for(state="detached", timeout=20000)
        assert page.page_errors == []
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
        shutil.rmtree(probe_dir, ignore_errors=True)
