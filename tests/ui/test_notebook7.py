"""Browser test: the panel in Jupyter Notebook 7 (``jupyter notebook``), not only JupyterLab.

Notebook 7 runs the same plugin with fewer services: no status bar, no launcher, no layout
restorer. The plugin asks for none of them, so it activates there: the summary item sits in
Notebook's top bar, and *View → Open GPU panel* opens the panel in the notebook page's right
sidebar, on the same replayed H100 as the JupyterLab tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from .conftest import Lab, start_lab
from .test_panel import GPU_NAME, STREAM, _rest

pytestmark = pytest.mark.ui


@pytest.fixture(scope="module")
def notebook_app(tmp_path_factory) -> Iterator[Lab]:
    lab = start_lab(tmp_path_factory.mktemp("notebook7"), "replay", app="notebook")
    yield lab
    lab.stop()


def ours(errors: list) -> list:
    """Page errors raised in this extension's code (Notebook 7 logs some of its own)."""
    return [e for e in errors if "jupyter-gpu-panel" in e]


def test_panel_and_summary_in_notebook7(notebook_app: Lab, page, artifacts):
    import notebook

    assert int(notebook.__version__.split(".")[0]) >= 7, notebook.__version__
    _rest(notebook_app, "PUT", "api/contents/nb7.ipynb", {
        "type": "notebook",
        "content": {
            "cells": [], "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        },
    })  # fmt: skip
    stack_errors: list = []
    page.on("pageerror", lambda e: stack_errors.append(f"{e}\n{e.stack}"))
    sockets: list = []
    page.on("websocket", lambda ws: sockets.append(ws.url) if STREAM in ws.url else None)
    page.goto(notebook_app.url("notebooks/nb7.ipynb"))
    page.wait_for_selector("#main-panel", state="attached", timeout=60000)

    # The summary in Notebook's top bar (it has no status bar), marked as a recording.
    status = page.locator('#top-panel [data-testid="gpu-status"]')
    status.wait_for(timeout=30000)
    page.wait_for_function(
        "() => /GPU \\d+%/.test(document.querySelector('#top-panel [data-testid=gpu-status]').textContent)",
        timeout=20000,
    )
    assert re.fullmatch(r"Replay · GPU \d+% · [\d.]+/79\.6 GiB", status.inner_text().strip()), status.inner_text()

    # View → Open GPU panel: the panel in the right sidebar, live.
    panel = page.locator("#jp-gpu-panel")
    assert not panel.is_visible()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^View$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Open GPU panel$")).click()
    panel.wait_for(state="visible", timeout=10000)
    card = panel.locator(".jp-GpuPanel-card").first
    card.get_by_text(GPU_NAME).wait_for(timeout=20000)
    t0 = float(card.get_attribute("data-t"))
    page.wait_for_function(
        "t => Number(document.querySelector('#jp-gpu-panel .jp-GpuPanel-card').dataset.t) > t",
        arg=t0,
        timeout=10000,
    )
    assert panel.get_by_text("Recorded data (replay)").is_visible()
    page.screenshot(path=str(artifacts / "notebook7.png"))
    # The same one socket feeds the panel and the top-bar item.
    assert len(sockets) == 1, sockets
    # Clicking the summary opens the panel too (here: it is already open, it stays so).
    status.click()
    assert panel.is_visible()
    assert ours(stack_errors) == [], stack_errors
