"""GPU placement under a real JupyterHub (issue 20, item 4).

The hub of ``conftest.py`` (LocalProcessSpawner): a fake 5-GPU node with GPUs 0-2 filled by
another process, every user's server started with ``--GPUPanel.placement=most-free-memory``.

- alice's and bob's servers each place their own kernels. What they share is NVML, which lists
  every user's processes: once alice's kernel fills a GPU, bob's next kernel goes elsewhere.
  Reservations (a kernel still starting) are per server, so the test lets each kernel show on
  its GPU before the next start, as the README says two users' simultaneous starts may collide.
- carol's server gets ``CUDA_VISIBLE_DEVICES=1`` from the spawner (what a container spawner's
  device plugin does): her kernels keep it, her panel says it came from outside, and the panel
  offers no move.

What a kernel may use is checked where it takes effect: the kernel process's own environment,
read here as root with psutil, against its row in GET kernels (and carol's row in her browser).
"""

from __future__ import annotations

import time
from typing import Any, Optional

import psutil
import pytest

from .conftest import BUSY, DEVICE_PLUGIN, FAKE_GPUS, GiB, Hub, login

pytestmark = [pytest.mark.hub, pytest.mark.ui]

API = "api/gpu-panel"
FREE = [g for g in range(FAKE_GPUS) if g not in BUSY]  # 3 and 4


def placement(hub: Hub, user: str) -> dict[str, Any]:
    r = hub.request("GET", f"user/{user}/{API}/placement", hub.token_for(user))
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def rows(hub: Hub, user: str) -> dict[str, dict]:
    r = hub.request("GET", f"user/{user}/{API}/kernels?refresh=1", hub.token_for(user))
    assert r.status_code == 200, (r.status_code, r.text)
    return {k["kernel_id"]: k for k in r.json()["kernels"]}


def kernel_row(hub: Hub, user: str, kernel_id: str, timeout: float = 60) -> dict:
    """The kernel's row once the tracker has its pid."""
    deadline = time.monotonic() + timeout
    while True:
        row = rows(hub, user).get(kernel_id)
        if row and row.get("pid") and row.get("placement"):
            return row
        assert time.monotonic() < deadline, f"{user}'s kernel {kernel_id} never got a row with a pid: {row}"
        time.sleep(0.3)


def start_kernel(hub: Hub, user: str) -> dict:
    r = hub.request("POST", f"user/{user}/api/kernels", hub.token_for(user), {"name": "python3"})
    assert r.status_code == 201, (r.status_code, r.text)
    return kernel_row(hub, user, r.json()["id"])


def environ(pid: int) -> dict[str, str]:
    """The environment the kernel process started with (another user's: this runs as root)."""
    return psutil.Process(pid).environ()


def wait_next(hub: Hub, user: str, gpus: Optional[list[int]], timeout: float = 30) -> dict:
    """GET placement once it names ``gpus`` for the next kernel (the sampler re-reads the fake
    NVML each tick) with nothing reserved: the choice rests on NVML's readings alone."""
    deadline = time.monotonic() + timeout
    while True:
        doc = placement(hub, user)
        nxt = doc["next"]["gpus"] if doc["next"] else None
        if nxt == gpus and not any(g["reserved"] for g in doc["gpus"]):
            return doc
        assert time.monotonic() < deadline, f"{user}'s next kernel never went to {gpus}: {doc}"
        time.sleep(0.3)


def assert_placed(row: dict, gpu: int) -> None:
    """The row and the kernel process agree: placed on ``gpu``, CUDA numbering as NVML's."""
    p = row["placement"]
    assert p["source"] == "placement" and p["gpus"] == [gpu], p
    assert p["cuda_visible_devices"] == str(gpu) and p["readable"] is True, p
    assert "most-free-memory" in p["reason"], p
    env = environ(row["pid"])
    assert env.get("CUDA_VISIBLE_DEVICES") == str(gpu), env.get("CUDA_VISIBLE_DEVICES")
    assert env.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID", env.get("CUDA_DEVICE_ORDER")


def test_each_users_kernels_go_to_the_freest_gpu_counting_the_other_users(hub: Hub):
    for user in ("alice", "bob"):
        hub.start_server(user)
    # kernels the other hub tests started (if they ran) show on the GPU they were placed on, as
    # NVML lists a kernel once it has a CUDA context: their reservations settle
    for user in ("alice", "bob"):
        for row in rows(hub, user).values():
            gpus = (row.get("placement") or {}).get("gpus")
            if row.get("pid") and gpus:
                hub.hold(row["pid"], 0, gpus[0])
    # both servers see GPUs 0-2 full and would put a kernel on the first free GPU
    for user in ("alice", "bob"):
        doc = wait_next(hub, user, [FREE[0]])
        free = {g["index"]: g["mem_free"] for g in doc["gpus"]}
        assert all(free[b] < free[FREE[0]] - 30 * GiB for b in BUSY), free

    mine = start_kernel(hub, "alice")
    assert_placed(mine, FREE[0])

    # her kernel allocates 30 GiB there: bob's server, which never heard of her kernel, sees it
    # through NVML and sends his next kernel to the other free GPU
    hub.hold(mine["pid"], 30 * GiB, FREE[0])
    doc = wait_next(hub, "bob", [FREE[1]])
    assert f"GPU {FREE[1]}" in doc["reason"], doc["reason"]
    his = start_kernel(hub, "bob")
    assert_placed(his, FREE[1])
    assert psutil.Process(mine["pid"]).username() == "alice" and psutil.Process(his["pid"]).username() == "bob"

    # alice's own view agrees: her next kernel would go to bob's GPU once his kernel shows there
    # with less than her 30 GiB
    hub.hold(his["pid"], 2 * GiB, FREE[1])
    wait_next(hub, "alice", [FREE[1]])


def test_a_gpu_the_spawner_gave_is_kept_and_shown_as_from_outside(hub: Hub, browser):
    given = DEVICE_PLUGIN["carol"]
    session = login(hub, browser, "carol")  # spawns her server
    try:
        doc = placement(hub, "carol")
        assert doc["policy"] == "most-free-memory" and doc["next"] is None, doc
        assert f"CUDA_VISIBLE_DEVICES={given!r}" in doc["reason"], doc["reason"]

        # a notebook from her launcher: its kernel runs on the spawner's GPU, not the freest
        page = session.page
        page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
        page.wait_for_selector(".jp-NotebookPanel", state="visible", timeout=60000)
        deadline = time.monotonic() + 90
        while not (kernels := [k for k in rows(hub, "carol").values() if k.get("pid") and k.get("notebook")]):
            assert time.monotonic() < deadline, "carol's notebook kernel never showed in GET kernels"
            time.sleep(0.5)
        (row,) = kernels
        p = row["placement"]
        assert p["source"] == "outside" and p["cuda_visible_devices"] == given, p
        assert p["gpus"] == [int(given)] and p["readable"] is True, p
        assert "outside the panel" in p["reason"], p
        env = environ(row["pid"])
        assert psutil.Process(row["pid"]).username() == "carol"
        assert env.get("CUDA_VISIBLE_DEVICES") == given, env.get("CUDA_VISIBLE_DEVICES")
        assert "CUDA_DEVICE_ORDER" not in env  # placement wrote nothing

        # moving it would override the spawner: refused
        r = hub.request("POST", f"user/carol/{API}/kernels/{row['kernel_id']}/restart", hub.token_for("carol"),
                        {"gpus": [FREE[0]]})  # fmt: skip
        assert r.status_code == 409 and "outside the panel" in r.json()["message"], (r.status_code, r.text)

        # her panel: the row says where the GPU came from, and offers no Restart on GPU…
        panel = page.locator("#jp-gpu-panel")
        if not panel.is_visible():
            page.click('li.lm-TabBar-tab[data-id="jp-gpu-panel"]')
        krow = page.locator(f'#jp-gpu-panel li[data-kernel-id="{row["kernel_id"]}"]')
        gpus = krow.locator('[data-testid="kernel-gpus"]')
        gpus.wait_for(timeout=30000)
        assert gpus.inner_text() == f"GPU {given} (set outside the panel)"
        krow.locator('[data-action="restart"]').wait_for()  # the row's buttons are drawn
        assert krow.locator('[data-action="restart-on-gpu"]').count() == 0
        assert session.errors == [], session.errors
    finally:
        session.context.close()
