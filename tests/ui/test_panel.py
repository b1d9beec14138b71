"""Browser tests: the GPU panel in a real JupyterLab, in headless Chromium.

Replay source: the bundled H100 recording (one "NVIDIA H100 80GB HBM3", two
processes). Timings are printed (per-tick update cost, bundle size), never
asserted.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import LABEXT, REPO, SCREENSHOTS, Lab, start_lab

pytestmark = pytest.mark.ui

GiB = 1024**3
TRACE = REPO / "jupyter_gpu_panel" / "data" / "h100_two_procs.nvml.jsonl"
GPU_NAME = "NVIDIA H100 80GB HBM3"
STREAM = "api/gpu-panel/stream"
SCREENSHOT_LIMIT = 300 * 1024


def short(v: float) -> str:
    """Python twin of format.ts shortNumber (3 significant digits at most)."""
    a = abs(v)
    digits = 0 if a >= 100 else 1 if a >= 10 else 2
    s = f"{v:.{digits}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def trace_mem_used() -> set[int]:
    out = set()
    for line in TRACE.read_text().splitlines():
        if line.strip():
            out.add(int(json.loads(line)["mem_used"]))
    return out


def open_lab(page, lab: Lab) -> list[str]:
    """Load JupyterLab; returns the live list of stream socket URLs opened by the page."""
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url) if STREAM in ws.url else None)
    page.goto(lab.url("lab"))
    page.wait_for_selector("#jp-main-dock-panel", state="attached", timeout=60000)
    page.wait_for_selector('li.lm-TabBar-tab[data-id="jp-gpu-panel"]', state="attached")
    return sockets


def open_panel(page) -> None:
    panel = page.locator("#jp-gpu-panel")
    if not panel.is_visible():
        page.click('li.lm-TabBar-tab[data-id="jp-gpu-panel"]')
    panel.wait_for(state="visible")


def card_state(page) -> dict:
    """One consistent read of the first card (attribute and text in one go)."""
    return page.evaluate(
        """() => {
          const card = document.querySelector('#jp-gpu-panel .jp-GpuPanel-card');
          if (!card) return null;
          const q = s => { const e = card.querySelector(s); return e ? e.textContent : null; };
          const chart = card.querySelector('.jp-GpuPanel-chart');
          return {
            t: Number(card.dataset.t),
            memUsed: Number(card.dataset.memUsed),
            memText: q('[data-testid=mem]'),
            utilText: q('[data-testid=util]'),
            powerText: q('[data-testid=power]'),
            tempText: q('[data-testid=temp]'),
            name: q('[data-testid=gpu-name]'),
            points: chart ? Number(chart.dataset.points) : 0,
            firstT: chart ? Number(chart.dataset.firstT) : null,
            lastT: chart ? Number(chart.dataset.lastT) : null,
          };
        }"""
    )


def report_ticks(label: str, ticks: list) -> None:
    ticks = sorted(ticks)
    print(
        f"\n[perf] per-tick update (stream message -> DOM + charts drawn), {label}, {len(ticks)} ticks: "
        f"median {statistics.median(ticks):.1f} ms, p95 {ticks[int(0.95 * (len(ticks) - 1))]:.1f} ms, "
        f"max {ticks[-1]:.1f} ms"
    )


def hex_rgb(color: str) -> str:
    """#1976d2 -> rgb(25, 118, 210), as getComputedStyle reports a colour."""
    h = color.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(h[i : i + 2], 16) for i in (0, 2, 4)))


def luminance(css_color: str) -> float:
    r, g, b = (int(x) for x in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def save_panel_screenshot(page, name: str, artifacts: Path) -> Path:
    """Into tests/ui/artifacts; with GPU_PANEL_UPDATE_SCREENSHOTS=1 also into docs/screenshots
    (the README's), so a plain test run leaves the checkout as it was."""
    data = page.locator("#jp-gpu-panel .jp-GpuPanel-root").screenshot()
    out = artifacts / name
    out.write_bytes(data)
    assert len(data) < SCREENSHOT_LIMIT, f"{name} is {len(data)} bytes"
    if os.environ.get("GPU_PANEL_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / name).write_bytes(data)
    return out


def test_panel_live_history_status_bar_and_themes(replay_lab: Lab, page, artifacts):
    sockets = open_lab(page, replay_lab)
    open_panel(page)

    # The card names the recorded GPU and labels the data as recorded.
    page.wait_for_selector(f"#jp-gpu-panel .jp-GpuPanel-card >> text={GPU_NAME}")
    assert page.locator("#jp-gpu-panel").get_by_text("Recorded data (replay)").is_visible()
    # No Prometheus configured (GET status says so): no Cluster section on a single machine.
    assert replay_lab.api("status")["cluster_configured"] is False
    assert page.locator("#jp-gpu-panel [data-cluster-section]").count() == 0  # as tests/ui/test_cluster finds it

    # A memory value straight from the trace, shown as the gauge text.
    s0 = card_state(page)
    assert s0["name"] == GPU_NAME
    assert s0["memUsed"] in trace_mem_used()
    total = 85520809984
    assert s0["memText"].startswith(f"{short(s0['memUsed'] / GiB)}/{short(total / GiB)} GiB"), s0

    # Next tick: the reading time and the chart move on; within a few ticks
    # the numbers change too (the trace varies).
    page.wait_for_function(
        "t => Number(document.querySelector('#jp-gpu-panel .jp-GpuPanel-card').dataset.t) > t",
        arg=s0["t"],
        timeout=10000,
    )
    s1 = card_state(page)
    assert s1["lastT"] > s0["lastT"]
    deadline = time.monotonic() + 20
    numbers = lambda s: (s["memText"], s["utilText"], s["powerText"], s["tempText"])  # noqa: E731
    while numbers(card_state(page)) == numbers(s0):
        assert time.monotonic() < deadline, "numbers never changed in 20 s"
        time.sleep(0.5)

    # The template drop-down fits the default sidebar width with its button (which wraps below
    # it there): the chosen title shows whole, and a longer one would end in an ellipsis before
    # the arrow.
    fit = page.evaluate(
        """() => { const row = document.querySelector('#jp-gpu-panel .jp-GpuPanel-launcher');
                   const sel = row.querySelector('select');
                   const arrow = row.querySelector('.jp-HTMLSelect > span svg').getBoundingClientRect();
                   const s = getComputedStyle(sel);
                   const ctx = document.createElement('canvas').getContext('2d');
                   ctx.font = `${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
                   const box = sel.getBoundingClientRect();
                   return {rowFits: row.scrollWidth <= row.clientWidth + 1,
                           ellipsis: s.textOverflow,
                           text: sel.selectedOptions[0].text,
                           textWidth: ctx.measureText(sel.selectedOptions[0].text).width,
                           textStart: box.left + parseFloat(s.paddingLeft),
                           textEnd: box.right - parseFloat(s.paddingRight),
                           arrowStart: arrow.left}; }"""
    )
    assert fit["rowFits"] and fit["ellipsis"] == "ellipsis", fit
    assert fit["textEnd"] <= fit["arrowStart"] + 0.5, fit
    assert fit["textStart"] + fit["textWidth"] <= fit["textEnd"], fit  # the title is not cut

    # A reading the recording lacks is "not recorded", not "n/a"; busy is not an alarm colour.
    card = page.locator("#jp-gpu-panel .jp-GpuPanel-card").first
    assert card.locator('[data-testid="throttle"]').inner_text() == "not recorded"
    util_fill = card.get_by_role("meter", name="Utilization").locator(".jp-GpuPanel-barFill")
    colours = page.evaluate(
        """el => { const s = getComputedStyle(document.body);
                   return [getComputedStyle(el).backgroundColor,
                           s.getPropertyValue('--jp-error-color1').trim(),
                           s.getPropertyValue('--jp-brand-color1').trim()]; }""",
        util_fill.element_handle(),
    )
    assert "jp-GpuPanel-barFill-warn" not in util_fill.get_attribute("class")
    assert colours[0] == hex_rgb(colours[2]) != hex_rgb(colours[1]), colours

    # Status bar: the GPU's use, marked as a recording in the text itself; clicking it opens the panel.
    status = page.locator('[data-testid="gpu-status"]')
    assert re.fullmatch(r"Replay · GPU \d+% · [\d.]+/79\.6 GiB", status.inner_text().strip()), status.inner_text()
    assert status.get_attribute("data-replay") == "true"
    assert "Recorded data (replay)" in status.get_attribute("title")
    page.click('li.lm-TabBar-tab[data-id="jp-gpu-panel"]')  # collapse the sidebar
    page.locator("#jp-gpu-panel").wait_for(state="hidden")
    status.click()
    page.locator("#jp-gpu-panel").wait_for(state="visible")

    # Let history accumulate, then reload: the charts start full.
    page.wait_for_function(
        "() => Number(document.querySelector('#jp-gpu-panel .jp-GpuPanel-chart').dataset.points) >= 8",
        timeout=20000,
    )
    before = card_state(page)
    ticks = page.evaluate("() => performance.getEntriesByName('gpu-panel:tick').map(e => e.duration)")
    assert len(sockets) == 1, f"expected one stream socket per tab, saw {sockets}"
    assert page.page_errors == []

    page.reload()
    page.wait_for_selector("#jp-main-dock-panel", state="attached", timeout=60000)
    open_panel(page)
    page.wait_for_function(
        "n => { const c = document.querySelector('#jp-gpu-panel .jp-GpuPanel-chart');"
        " return c && Number(c.dataset.points) >= n; }",
        arg=before["points"],
        timeout=5000,
    )
    after = card_state(page)
    # The same past as before the reload, not just ticks since it.
    assert after["firstT"] <= before["firstT"] + 1e-3, (before, after)
    assert after["points"] >= before["points"]
    assert len(sockets) == 2, f"one socket per page load expected, saw {sockets}"

    # Light screenshot.
    page.wait_for_timeout(500)
    save_panel_screenshot(page, "panel-light.png", artifacts)
    light_bg = page.evaluate("() => getComputedStyle(document.querySelector('#jp-gpu-panel')).backgroundColor")

    # Switch to the dark theme through the Settings menu.
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^JupyterLab Dark$")).click()
    page.wait_for_selector('body[data-jp-theme-light="false"]', state="attached", timeout=20000)
    page.wait_for_timeout(1500)  # theme CSS applied and canvas charts recreated
    dark_bg = page.evaluate("() => getComputedStyle(document.querySelector('#jp-gpu-panel')).backgroundColor")
    name_color = page.evaluate(
        "() => getComputedStyle(document.querySelector('#jp-gpu-panel .jp-GpuPanel-gpuName')).color"
    )
    assert luminance(light_bg) > 0.7, light_bg
    assert luminance(dark_bg) < 0.3, dark_bg
    assert luminance(name_color) > 0.6, name_color  # readable text on the dark card
    assert page.locator("#jp-gpu-panel").get_by_text(GPU_NAME).is_visible()
    save_panel_screenshot(page, "panel-dark.png", artifacts)

    ticks += page.evaluate("() => performance.getEntriesByName('gpu-panel:tick').map(e => e.duration)")
    assert ticks, "the panel recorded no tick measure"
    report_ticks("all ticks, incl. page load and theme switch", ticks)
    # Steady state: a quiet page, panel open, ten ticks.
    page.evaluate("() => performance.clearMeasures('gpu-panel:tick')")
    page.wait_for_function("() => performance.getEntriesByName('gpu-panel:tick').length >= 10", timeout=30000)
    steady = page.evaluate("() => performance.getEntriesByName('gpu-panel:tick').map(e => e.duration)")
    report_ticks("steady state", steady)
    assert len(sockets) == 2
    assert page.page_errors == []


def test_built_extension_is_listed_and_sized(replay_lab: Lab):
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        env=replay_lab.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = out.stdout + out.stderr
    line = next((ln for ln in text.splitlines() if "jupyter-gpu-panel" in ln), "")
    assert "enabled" in line and "OK" in line, text
    pkg = json.loads((LABEXT / "package.json").read_text())
    assert pkg["name"] == "jupyter-gpu-panel"
    files = sorted((LABEXT / "static").glob("*.js"))
    total = sum(f.stat().st_size for f in files)
    assert total > 0
    print(f"\n[bundle] {len(files)} files, {total / 1024:.1f} KiB total (uncompressed):")
    for f in files:
        print(f"[bundle]   {f.name}: {f.stat().st_size / 1024:.1f} KiB")


# What the panel must say for each no-GPU state (titles from banners.ts).
STATE_TITLES = {
    "nvml-missing": "NVIDIA driver library (NVML) not found",
    "driver-not-loaded": "NVIDIA driver not loaded",
    "no-devices": "No NVIDIA GPU found",
    "error": "Cannot read the GPUs",
}


def test_no_gpu_state_and_server_loss(tmp_path, page, artifacts):
    """Source auto on a machine without an NVIDIA GPU (CI): the panel names the state,
    then says reconnecting/unreachable once the server goes away."""
    lab = start_lab(tmp_path, "auto")
    try:
        status = lab.api("status")
        print(f"\n[no-gpu] server state: {status['state']!r}: {status.get('message')!r}")
        assert status["state"] in STATE_TITLES, (
            f"this test needs a machine without a usable NVIDIA GPU; server says {status['state']}"
        )
        sockets = open_lab(page, lab)
        open_panel(page)
        msg = page.locator("#jp-gpu-panel .jp-GpuPanel-message")
        msg.wait_for(state="visible")
        text = msg.inner_text()
        assert STATE_TITLES[status["state"]] in text, text
        if status.get("message"):
            assert status["message"] in text, text
        assert page.locator("#jp-gpu-panel .jp-GpuPanel-card").count() == 0
        assert page.locator('[data-testid="gpu-status"]').inner_text().strip() == "No GPU"
        assert len(sockets) == 1
        page.locator("#jp-gpu-panel .jp-GpuPanel-root").screenshot(path=str(artifacts / "panel-no-gpu.png"))
    finally:
        lab.stop()
    # Server gone: the panel says so instead of freezing.
    page.wait_for_function(
        "() => /Reconnecting|unreachable/.test(document.querySelector('#jp-gpu-panel').innerText)",
        timeout=30000,
    )
    assert page.locator("#jp-gpu-panel").get_by_role("button", name="Retry now").first.is_visible()
    assert page.locator('[data-testid="gpu-status"]').inner_text().strip() == "GPU offline"
    page.locator("#jp-gpu-panel .jp-GpuPanel-root").screenshot(path=str(artifacts / "panel-server-lost.png"))


def _rest(lab: Lab, method: str, path: str, body: dict | None = None) -> dict:
    import urllib.request

    req = urllib.request.Request(
        f"{lab.base}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
    return json.loads(raw) if raw else {}


def notebook_session(lab: Lab, path: str) -> dict:
    """An empty notebook and a session (a real python3 kernel) for it, as JupyterLab opens one."""
    _rest(
        lab,
        "PUT",
        f"api/contents/{path}",
        {
            "type": "notebook",
            "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
        },
    )
    return _rest(
        lab,
        "POST",
        "api/sessions",
        {
            "path": path,
            "type": "notebook",
            "name": path,
            "kernel": {"name": "python3"},
        },
    )


def test_kernels_section_and_benchmarks(replay_lab: Lab, page):
    nb = "leaky-demo.ipynb"
    session = notebook_session(replay_lab, nb)
    kernel_id = session["kernel"]["id"]
    templates = replay_lab.api("benchmarks")["templates"]
    assert templates, "the server lists no benchmark templates"
    try:
        open_lab(page, replay_lab)
        open_panel(page)
        row = page.locator(f'#jp-gpu-panel [data-kernel-id="{kernel_id}"]')
        row.wait_for(state="visible", timeout=20000)
        assert nb in row.inner_text()
        # exact: "Restart" is also the start of "Restart on GPU…", the placement button beside it
        for label in ("Interrupt", "Restart", "Shut down", "Track memory"):
            assert row.get_by_role("button", name=label, exact=True).is_visible()

        # Interrupt goes through Jupyter's own kernel API (services), and says it happened, in the row.
        with page.expect_response(lambda r: f"api/kernels/{kernel_id}/interrupt" in r.url) as resp:
            row.get_by_role("button", name="Interrupt").click()
        assert resp.value.status == 204 and "gpu-panel" not in resp.value.url
        row.locator('[data-outcome="info"]', has_text="Interrupted.").wait_for(timeout=10000)

        # The notebook link opens the notebook.
        row.get_by_role("button", name=nb).click()
        page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=nb).wait_for(timeout=20000)

        # One launcher tile per server template, in a GPU section.
        launcher_tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Launcher")
        if launcher_tab.count():
            launcher_tab.first.click()
        else:
            page.locator(".lm-DockPanel-tabBar .lm-TabBar-addButton").first.click()
        for t in templates:
            page.locator('.jp-LauncherCard[data-category="GPU"]').get_by_text(t["title"], exact=True).wait_for(
                timeout=10000
            )

        # The panel's button creates the selected template in the file browser's folder and opens it.
        before = {f["name"] for f in _rest(replay_lab, "GET", "api/contents")["content"]}
        page.locator("#jp-gpu-panel").get_by_role("button", name="New benchmark").click()
        deadline = time.monotonic() + 20
        while True:
            after = {f["name"] for f in _rest(replay_lab, "GET", "api/contents")["content"]}
            created = [n for n in after - before if n.endswith(".ipynb")]
            if created:
                break
            assert time.monotonic() < deadline, "no benchmark notebook was created"
            time.sleep(0.5)
        tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=created[0])
        tab.wait_for(timeout=20000)
        # It opens clean: its kernel filling in the kernelspec and language metadata is no edit.
        deadline = time.monotonic() + 30
        while not any(
            s["path"].endswith(created[0]) and s["kernel"]["execution_state"] == "idle"
            for s in _rest(replay_lab, "GET", "api/sessions")
        ):
            assert time.monotonic() < deadline, "the benchmark notebook's kernel never became idle"
            time.sleep(0.5)
        page.wait_for_timeout(1500)
        assert "jp-mod-dirty" not in (tab.get_attribute("class") or ""), tab.get_attribute("class")
        assert page.page_errors == []
    finally:
        _rest(replay_lab, "DELETE", f"api/sessions/{session['id']}")


def test_view_menu_palette_and_settings(replay_lab: Lab, page):
    open_lab(page, replay_lab)
    panel = page.locator("#jp-gpu-panel")
    # A clean workspace: the notebooks the test before opened do not reopen (a notebook whose
    # session it deleted would ask for a kernel in a dialog over the menus).
    page.wait_for_timeout(1000)
    tabs = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab").all_inner_texts()
    assert not [t for t in tabs if ".ipynb" in t], tabs
    assert page.locator(".jp-Dialog").count() == 0

    # View menu entry (from the settings schema's jupyter.lab.menus).
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^View$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Open GPU panel$")).click()
    panel.wait_for(state="visible")
    page.click('li.lm-TabBar-tab[data-id="jp-gpu-panel"]')  # collapse again
    panel.wait_for(state="hidden")

    # Command palette entry.
    page.keyboard.press("Control+Shift+C")
    page.keyboard.type("Open GPU panel")
    # The palette re-renders its list while commands change (benchmark templates arrive after
    # start-up), which can detach an item under the mouse; Enter runs the active match, as a user would.
    page.locator(".lm-CommandPalette-item.lm-mod-active", has_text="Open GPU panel").wait_for(state="visible")
    page.keyboard.press("Enter")
    panel.wait_for(state="visible")

    # A setting changes what is shown: GB instead of GiB, 1-minute window.
    settings_url = "lab/api/settings/jupyter-gpu-panel:plugin"
    _rest(replay_lab, "PUT", settings_url, {"raw": json.dumps({"memoryUnits": "GB", "chartWindow": 60})})
    try:
        page.reload()
        page.wait_for_selector("#jp-main-dock-panel", state="attached", timeout=60000)
        open_panel(page)
        status = page.locator('[data-testid="gpu-status"]')
        page.wait_for_function(
            "() => /GB$/.test(document.querySelector('[data-testid=gpu-status]').textContent)",
            timeout=15000,
        )
        assert re.fullmatch(r"Replay · GPU \d+% · [\d.]+/85\.5 GB", status.inner_text().strip()), status.inner_text()
        pressed = panel.locator('.jp-GpuPanel-segment[aria-pressed="true"]')
        assert pressed.inner_text().strip() == "1 min"
    finally:
        _rest(replay_lab, "PUT", settings_url, {"raw": "{}"})
