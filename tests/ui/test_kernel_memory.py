"""Browser test: a kernel row's memory chart, OOM forecast, hints and leak triage.

The replay source has no kernel with a memory probe, so this test starts a
real kernel and, in the browser only, adds a probe and a leak verdict shaped
like the server's contract to that kernel's entry of the real
``api/gpu-panel/kernels`` reply (Playwright route). What it checks is the
front end: which chart is drawn from which series, the forecast line, the
server's wording, the triage states. The "Find the leaking line" button goes
to the real server, which answers 409 (the kernel runs no probe), and the
panel must say so.
"""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path

import pytest

from .conftest import Lab
from .test_panel import _rest, open_lab, open_panel

pytestmark = pytest.mark.ui

MiB = 1024**2
GiB = 1024**3
KERNELS = re.compile(r"/api/gpu-panel/kernels(\?.*)?$")

STEPS = list(range(0, 201, 10))
ALLOCATED = [GiB + 32 * MiB * s for s in STEPS]
RESERVED = [a + 512 * MiB for a in ALLOCATED]
CAPACITY = 16 * GiB
OOM_STEP = 200 + (CAPACITY - ALLOCATED[-1]) // (32 * MiB)
LEAK_MESSAGE = "Leaking 32 MiB a step, full in ~70 s, around step 480."
TRIAGE_MESSAGE = "`leaky.ipynb:12 kept.append(h.detach())` keeps 32 MiB a step"


def stack(where: str, per_step: int, code: str | None) -> dict:
    return {"where": where, "code": code, "bytes": 4 * per_step, "bytes_per_step": per_step,
            "count": 4, "every_step": True}


def probe(triage: dict | None) -> dict:
    return {
        "pid": 1, "kernel_id": "", "device": 0, "limit": CAPACITY, "steps": 201, "last": None, "alive": True,
        "series": {"step": STEPS, "allocated": ALLOCATED, "reserved": RESERVED},
        "cells": {"leaking_cells": [3], "message": "Cell 3 keeps 32 MiB each run: `%reset out` frees its outputs."},
        "fragmentation": {"fragmented": True, "message": "Reserved exceeds allocated by 512 MiB: try expandable_segments."},
        "triage": triage,
    }


def leak(forecast_axis: str = "step") -> dict:
    return {
        "leak": True, "actionable": True, "source": "steps", "bytes_per_step": 32 * MiB,
        "bytes_per_second": 128 * MiB, "steps_to_oom": OOM_STEP - 200, "seconds_to_oom": 70,
        "current_step": 200, "capacity": CAPACITY, "level": ALLOCATED[-1], "message": LEAK_MESSAGE,
        "forecast": {"axis": forecast_axis, "x0": 200, "y0": ALLOCATED[-1], "x1": OOM_STEP, "y1": CAPACITY},
    }


DONE = {
    "state": "done", "requested_at": 1.0, "t": 2.0, "steps": 4, "message": TRIAGE_MESSAGE,
    "stacks": [
        stack("helpers.py:8 grow", 1 * MiB, None),
        stack("leaky.ipynb:12 <module>", 32 * MiB, "kept.append(h.detach())"),
        stack("torch/nn/modules/module.py:1 _call_impl", 2 * MiB, "return forward(*args)"),
        stack("other.py:3 tiny", 4096, "x = y"),
    ],
    "error": None, "auto": True,
}
REQUESTED = {**DONE, "state": "requested", "message": None, "stacks": [], "t": None, "auto": False}


def test_kernel_memory_chart_forecast_and_triage(replay_lab: Lab, page, artifacts: Path):
    nb = "leaky.ipynb"
    _rest(replay_lab, "PUT", f"api/contents/{nb}", {
        "type": "notebook",
        "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
    })
    session = _rest(replay_lab, "POST", "api/sessions", {
        "path": nb, "type": "notebook", "name": nb, "kernel": {"name": "python3"},
    })
    kernel_id = session["kernel"]["id"]
    # What the browser's kernels poll gets for this kernel, on top of the real reply.
    extra: dict = {"probe": probe(DONE), "leak": leak()}
    seen = {"real": 0}

    def on_kernels(route):
        if route.request.method != "GET":
            route.continue_()
            return
        resp = route.fetch()
        data = resp.json()
        for k in data.get("kernels", []):
            if k.get("kernel_id") == kernel_id:
                seen["real"] += 1
                k.update(copy.deepcopy(extra))
        route.fulfill(response=resp, json=data)

    page.route(KERNELS, on_kernels)
    try:
        open_lab(page, replay_lab)
        open_panel(page)
        row = page.locator(f'#jp-gpu-panel [data-kernel-id="{kernel_id}"]')
        row.wait_for(state="visible", timeout=20000)
        assert seen["real"] > 0, "the real kernels reply did not list the session's kernel"

        # The chart: per step from the probe, allocated and reserved, the forecast and the limit.
        chart = row.locator(".jp-GpuPanel-kernelChart")
        chart.wait_for(state="visible")
        assert chart.get_attribute("data-axis") == "step"
        assert chart.get_attribute("data-forecast") == "full"
        figure = chart.get_by_role("img")
        label = figure.get_attribute("aria-label")
        assert label.startswith("Memory by step (GiB) chart"), label
        for word in ("Allocated", "Reserved", "Forecast", "Limit 16"):
            assert word in label, label
        # x: the steps and the forecast's end point.
        assert figure.get_attribute("data-points") == str(len(STEPS) + 1)
        assert figure.get_attribute("data-first-t") == "0"
        assert figure.get_attribute("data-last-t") == str(OOM_STEP)
        canvas = chart.locator("canvas")
        assert canvas.count() == 1 and canvas.bounding_box()["height"] > 40

        # The server's forecast wording, and the probe's advice as hints.
        assert LEAK_MESSAGE in row.inner_text()
        assert row.locator('[data-hint="cells"] code').inner_text() == "%reset out"
        frag = row.locator('[data-hint="fragmentation"]')
        assert "expandable_segments" in frag.inner_text()
        assert "jp-GpuPanel-hint-warn" in (frag.get_attribute("class") or "")

        # A finished triage: the message with its code, the three largest sites.
        triage = row.get_by_role("group", name="Leak triage")
        status = triage.get_by_role("status")
        assert status.get_attribute("data-state") == "done"
        assert status.locator("code").inner_text() == "leaky.ipynb:12 kept.append(h.detach())"
        assert "keeps 32 MiB a step" in status.inner_text()
        sites = triage.get_by_role("list", name="Growing allocations").locator("li")
        assert sites.count() == 3
        first = sites.nth(0).inner_text()
        assert "leaky.ipynb:12 <module>" in first and "32 MiB a step" in first
        assert "kept.append(h.detach())" in first
        assert "other.py" not in triage.inner_text()

        # The leak also raised a notification, with the server's wording; hide it, it covers the sidebar.
        toast = page.locator(".Toastify__toast", has_text=f"GPU memory leak in {nb}")
        toast.wait_for(timeout=10000)
        assert LEAK_MESSAGE in toast.inner_text()
        toast.get_by_title("Hide notification").click()
        toast.wait_for(state="detached", timeout=10000)
        row.screenshot(path=str(artifacts / "kernel-leak-triage.png"))

        # Re-run: the real server has no probe for this kernel and answers 409; the panel says so.
        button = triage.get_by_role("button", name="Find the leaking line")
        assert button.is_enabled()
        button.click()
        page.get_by_text(re.compile(r"triage failed for leaky\.ipynb: .*probe")).first.wait_for(timeout=10000)

        # A recording under way: the button waits.
        extra["probe"] = probe(REQUESTED)
        status.filter(has_text="Recording allocations for the next 4 steps…").wait_for(timeout=15000)
        assert button.is_disabled()

        # No probe series: NVML use over time; a step forecast is not drawn on a time axis,
        # and without a probe there is no triage button.
        now = time.time()
        extra.clear()
        extra.update({
            "probe": None,
            "history": {"t": [now - 20, now - 10, now], "used": [300 * MiB, 400 * MiB, 500 * MiB]},
            "leak": leak("step"),
        })
        page.wait_for_function(
            """id => {
              const c = document.querySelector(`#jp-gpu-panel [data-kernel-id="${id}"] .jp-GpuPanel-kernelChart`);
              return c && c.dataset.axis === 'time';
            }""",
            arg=kernel_id,
            timeout=15000,
        )
        assert chart.get_attribute("data-forecast") == "none"
        assert chart.get_by_role("img").get_attribute("aria-label").startswith("Kernel GPU memory (GiB) chart")
        assert row.get_by_role("button", name="Find the leaking line").count() == 0
        assert row.locator(".jp-GpuPanel-hint").count() == 0
        assert page.page_errors == []
    finally:
        page.unroute(KERNELS)
        _rest(replay_lab, "DELETE", f"api/sessions/{session['id']}")
