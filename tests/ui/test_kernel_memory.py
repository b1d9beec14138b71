"""Browser test: a kernel row's memory chart, OOM forecast, hints and leak triage.

A real kernel, and beside it the files its memory probe would write (the probe needs CUDA,
which CI lacks; its wire format *is* the recorded traces' format): the first 120 steps of the
H100 run that leaked 32 MiB a step into a 15 % memory limit, and per-cell readings of a cell
that keeps more each run. The real server follows them, runs the real detector, asks the probe
for a triage on the alarm, and reads the triage file the probe would write back (a real
allocation history recorded on an H100). Nothing between the server and the browser is faked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from .conftest import Lab
from .test_panel import _rest, notebook_session, open_lab, open_panel

pytestmark = pytest.mark.ui

REPO = Path(__file__).resolve().parents[2]
TRACE = REPO / "tests" / "data" / "traces" / "h100" / "leak_hidden_oom.iters.jsonl"
SNAPSHOT = REPO / "tests" / "data" / "leaks" / "snapshot_leak.json"
MiB = 1024**2
LIMIT = int(0.15 * 85520809984)  # the run's per-process memory fraction x the H100's memory
STEPS = 120
LEAK_MESSAGE = re.compile(r"Leaking 32 MiB a step, full in ~\d+ s, around step [\d,]+\.")
TRIAGE_MESSAGE = "`record_snapshot.py:27 h = model[1](model[0](x))` keeps 32 MiB a step"


def write_probe(probe_dir: Path, pid: int, kernel_id: str | None, cells: bool = True, **meta) -> None:
    """What ``%load_ext jupyter_gpu_panel`` writes in the kernel, for a run ``STEPS`` steps in.

    A script's ``probe.start()`` writes the same with no kernel id, its ``argv`` in ``meta`` and no cells."""
    probe_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (probe_dir / f"probe-{pid}.json").write_text(
        json.dumps({"pid": pid, "kernel_id": kernel_id, "device": 0, "limit": LIMIT, "started": time.time(), **meta})
    )
    lines = TRACE.read_text().splitlines()[:STEPS]
    (probe_dir / f"probe-{pid}.iters.jsonl").write_text("\n".join(lines) + "\n")
    if not cells:
        return
    # the same cell run four times, each run keeping 32 MiB more (its outputs in `Out`)
    cells = [
        {"t": time.time(), "cell": "c3", "execution_count": n, "allocated": 1024 * MiB + n * 32 * MiB}
        for n in range(1, 5)
    ]
    (probe_dir / f"probe-{pid}.cells.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cells))


def kernel_pid(lab: Lab, kernel_id: str, timeout: float = 60) -> int:
    """The kernel's process, as the panel's kernel view finds it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for k in lab.api("kernels?refresh=1")["kernels"]:
            if k["kernel_id"] == kernel_id and k.get("pid"):
                return int(k["pid"])
        time.sleep(0.2)
    raise AssertionError(f"kernel {kernel_id} has no process in GET kernels after {timeout} s")


def write_triage(probe_dir: Path, pid: int) -> None:
    """What the probe writes after recording 4 steps of allocation history."""
    snap = json.loads(SNAPSHOT.read_text())
    snap["code"] = {
        f"{fr['filename']}:{fr['line']}": "h = model[1](model[0](x))"
        for ev in snap["device_traces"][0]
        for fr in ev["frames"]
        if fr["line"] == 27
    }
    tmp = probe_dir / f"probe-{pid}.triage.tmp"
    tmp.write_text(json.dumps(snap))
    tmp.replace(probe_dir / f"probe-{pid}.triage.json")


def alarm_triage_flow(page, row, row_selector: str, probe_dir: Path, pid: int, toast_text: str):
    """What follows an alarm in a probed row: the server asks the probe to record (the button
    waits), a notification says so once, and when the probe writes its history back the row
    names the line. Returns the triage group, its status and its button."""
    triage = row.get_by_role("group", name="Leak triage")
    status = triage.get_by_role("status")
    status.filter(has_text="Recording allocations for the next 4 steps…").wait_for(timeout=15000)
    assert (probe_dir / f"probe-{pid}.triage-request").exists()
    button = triage.get_by_role("button", name="Find the leaking line")
    assert button.is_disabled()

    # The leak raised a notification with the server's wording; hide it, it covers the sidebar.
    toast = page.locator(".Toastify__toast", has_text=toast_text)
    toast.wait_for(timeout=10000)
    assert LEAK_MESSAGE.search(toast.inner_text())
    toast.get_by_title("Hide notification").click()
    toast.wait_for(state="detached", timeout=10000)

    # The probe recorded and wrote back: the row names the line.
    (probe_dir / f"probe-{pid}.triage-request").unlink()
    write_triage(probe_dir, pid)
    page.wait_for_function(
        "sel => document.querySelector(`#jp-gpu-panel ${sel} [role=status][data-state=done]`)",
        arg=row_selector,
        timeout=20000,
    )
    assert status.locator("code").inner_text() == "record_snapshot.py:27 h = model[1](model[0](x))"
    return triage, status, button


def test_kernel_memory_chart_forecast_and_triage(replay_lab: Lab, page, artifacts: Path):
    nb = "leaky.ipynb"
    session = notebook_session(replay_lab, nb)
    kernel_id = session["kernel"]["id"]
    # the probe runs in the kernel: its pid is the kernel's own process (a probe attaches only to
    # the kernel whose process, or a descendant of it, wrote it), live and started before its files
    pid = kernel_pid(replay_lab, kernel_id)
    probe_dir = Path(replay_lab.env["JUPYTER_RUNTIME_DIR"]) / "gpu-panel"
    write_probe(probe_dir, pid, kernel_id)
    try:
        open_lab(page, replay_lab)
        open_panel(page)
        row = page.locator(f'#jp-gpu-panel [data-kernel-id="{kernel_id}"]')
        row.wait_for(state="visible", timeout=20000)

        # The chart: per step from the probe, allocated and reserved, the forecast and the limit.
        chart = row.locator(".jp-GpuPanel-kernelChart")
        chart.wait_for(state="visible", timeout=20000)
        assert chart.get_attribute("data-axis") == "step"
        assert chart.get_attribute("data-forecast") in ("full", "clipped")
        figure = chart.get_by_role("img")
        label = figure.get_attribute("aria-label")
        assert label.startswith("Memory by step"), label
        for word in ("Allocated", "Reserved", "Forecast", "Limit"):
            assert word in label, label
        assert figure.get_attribute("data-first-t") == "0"
        assert float(figure.get_attribute("data-last-t")) > STEPS - 1  # the forecast runs past now
        canvas = chart.locator("canvas")
        assert canvas.count() == 1 and canvas.bounding_box()["height"] > 40

        # The detector's verdict in the server's words, and the per-cell advice.
        row.get_by_text(LEAK_MESSAGE).first.wait_for(timeout=15000)
        assert row.locator('[data-hint="cells"]').inner_text().count("%reset") == 1
        assert row.locator('[data-hint="fragmentation"]').count() == 0  # this run is not fragmented

        triage, status, button = alarm_triage_flow(
            page, row, f'[data-kernel-id="{kernel_id}"]', probe_dir, pid, f"GPU memory leak in {nb}"
        )
        assert "keeps 32 MiB a step" in status.inner_text()
        first = triage.get_by_role("list", name="Growing allocations").locator("li").nth(0).inner_text()
        assert "record_snapshot.py:27" in first and "32 MiB a step" in first
        row.screenshot(path=str(artifacts / "kernel-leak.png"))
        if os.environ.get("GPU_PANEL_UPDATE_SCREENSHOTS") == "1":  # the README's picture
            shutil.copy(artifacts / "kernel-leak.png", REPO / "docs" / "screenshots" / "kernel-leak.png")

        # Again, by hand: the real server asks the probe (202) and the panel waits for it.
        assert button.is_enabled()
        button.click()
        status.filter(has_text="Recording allocations for the next 4 steps…").wait_for(timeout=15000)
        assert json.loads((probe_dir / f"probe-{pid}.triage-request").read_text())["steps"] == 4
        assert page.page_errors == []
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
        _rest(replay_lab, "DELETE", f"api/sessions/{session['id']}")
