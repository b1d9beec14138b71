"""Multi-user correctness in a real JupyterHub (issue 11).

alice and bob are real system users; their single-user servers run this checkout's extension
behind configurable-http-proxy, under the hub's URL prefix (/user/<name>/). NVML is the fake of
tests/nvml_shim: one file lists real pids (alice's kernel, a process running as bob) on GPU 0
of a fake multi-GPU node (placement under the hub: test_hub_placement.py).
"""

from __future__ import annotations

import json
import time

import psutil
import pytest
import websocket
from playwright.sync_api import expect

from .conftest import SECRET, Bob, GiB, Hub, Session

pytestmark = [pytest.mark.hub, pytest.mark.ui]

API = "api/gpu-panel"
GET_ROUTES = ("status", "devices", "snapshot", "history", "kernels", "benchmarks", "openapi.json", "cluster")
ACTIONS = ("interrupt", "restart", "shutdown", "probe", "triage", "release")


def open_panel(page) -> None:
    """The panel, with GPU 0's card open: the fake node has several GPUs (collapsed by default),
    and GPU 0 is where these tests have the fake NVML list their processes."""
    panel = page.locator("#jp-gpu-panel")
    if not panel.is_visible():
        page.click('li.lm-TabBar-tab[data-id="jp-gpu-panel"]')
    panel.wait_for(state="visible")
    card = panel.locator('.jp-GpuPanel-card[data-gpu-index="0"]')
    card.wait_for(state="visible")
    if card.get_attribute("data-expanded") != "true":
        card.locator(".jp-GpuPanel-cardToggle").click()
    panel.locator('.jp-GpuPanel-card[data-gpu-index="0"][data-expanded="true"]').wait_for()


def snapshot_process(hub: Hub, user: str, pid: int, timeout: float = 30, attributed: bool = False) -> tuple[dict, str]:
    """``pid``'s entry in ``user``'s GET snapshot (once the sampler has seen it, and with
    ``attributed`` once the kernel tracker has named its owner), and the whole body."""
    token = hub.token_for(user)
    deadline = time.monotonic() + timeout
    while True:
        r = hub.request("GET", f"user/{user}/{API}/snapshot", token)
        assert r.status_code == 200, (r.status_code, r.text)
        for gpu in r.json()["gpus"]:
            for p in gpu.get("processes") or []:
                if p["pid"] == pid and (p.get("owner") or not attributed):
                    return p, r.text
        assert time.monotonic() < deadline, f"pid {pid} never in {user}'s snapshot: {r.text[:2000]}"
        time.sleep(0.3)


def ws_url(hub: Hub, path: str) -> str:
    return "ws" + hub.url[len("http") :] + path


def read_stream(hub: Hub, user_path: str, token: str, want: set[str], timeout: float = 20) -> dict[str, dict]:
    """The first message of each type in ``want`` from a stream socket (proxy -> hub prefix -> server)."""
    ws = websocket.create_connection(ws_url(hub, user_path), header=[f"Authorization: token {token}"], timeout=timeout)
    got: dict[str, dict] = {}
    try:
        deadline = time.monotonic() + timeout
        while not want <= set(got) and time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            got.setdefault(msg["type"], msg)
    finally:
        ws.close()
    return got


def test_alice_logs_in_and_her_panel_attributes_her_kernel(hub: Hub, alice: Session):
    page = alice.page
    assert "/user/alice/lab" in page.url, page.url
    token = hub.token_for("alice")

    # a new notebook with the python3 kernel, from JupyterLab's launcher
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    page.wait_for_selector(".jp-NotebookPanel", state="visible", timeout=60000)

    def her_kernel():
        doc = hub.request("GET", f"user/alice/{API}/kernels?refresh=1", token).json()
        for k in doc["kernels"]:
            if k.get("pid") and (k.get("notebook") or "").endswith(".ipynb"):
                return k
        return None

    deadline = time.monotonic() + 90
    while (kernel := her_kernel()) is None:
        assert time.monotonic() < deadline, "alice's notebook kernel never showed in GET kernels"
        time.sleep(0.5)
    pid, notebook = kernel["pid"], kernel["notebook"]
    assert kernel["user"] == "alice", kernel
    assert psutil.Process(pid).username() == "alice"  # a real process of hers, started by her server

    hub.hold(pid, 3 * GiB)
    proc, _ = snapshot_process(hub, "alice", pid, attributed=True)
    assert proc["user"] == "alice", proc
    assert proc["used"] == 3 * GiB, proc
    owner = proc["owner"]
    assert owner["kind"] == "kernel" and owner["kernel_id"] == kernel["kernel_id"], owner
    assert owner["notebook"] == notebook, owner

    # the panel: her kernel's process, her name, her notebook as its owner
    open_panel(page)
    row = page.locator(f'#jp-gpu-panel tr[data-pid="{pid}"]')
    row.wait_for(state="visible", timeout=30000)
    cells = row.locator("td")
    assert cells.nth(1).inner_text().strip() == "alice"
    assert cells.nth(2).get_attribute("data-bytes") == str(3 * GiB)
    # the owner as a link to the notebook (the first ticks may predate the tracker's attribution)
    expect(cells.nth(3)).to_have_text(notebook.rsplit("/", 1)[-1], timeout=20000)
    expect(cells.nth(3).get_by_role("button", name=f"Open notebook {notebook}")).to_be_visible()
    assert alice.errors == [], alice.errors


def test_bobs_process_shows_as_another_users_without_its_command(hub: Hub, alice: Session, bob: Bob):
    pid = bob.job.pid
    assert psutil.Process(pid).username() == "bob"
    assert SECRET in " ".join(psutil.Process(pid).cmdline())  # the secret is there to leak
    hub.hold(pid, 5 * GiB)

    proc, body = snapshot_process(hub, "alice", pid)
    assert proc["user"] == "bob", proc
    assert proc["command"] is None and proc["name"] is None, proc
    assert proc["used"] == 5 * GiB, proc
    assert SECRET not in body

    # the stream says the same
    got = read_stream(hub, f"user/alice/{API}/stream", hub.token_for("alice"), {"hello", "snapshot"})
    assert "snapshot" in got, got.keys()
    streamed = [p for g in got["snapshot"]["snapshot"]["gpus"] for p in g.get("processes") or []]
    assert any(p["pid"] == pid and p["user"] == "bob" for p in streamed), streamed
    assert SECRET not in json.dumps(got)

    # alice's panel lists it as bob's, with nothing of its command line anywhere on the page
    page = alice.page
    open_panel(page)
    row = page.locator(f'#jp-gpu-panel tr[data-pid="{pid}"]')
    row.wait_for(state="visible", timeout=30000)
    assert row.locator("td").nth(1).inner_text().strip() == "bob"
    assert (row.get_attribute("title") or "") == ""
    assert SECRET not in page.locator("#jp-gpu-panel").inner_text()
    assert SECRET not in page.content()


def test_alice_cannot_act_on_bobs_kernels(hub: Hub, alice: Session, bob: Bob):
    alice_token = hub.token_for("alice")
    kid = bob.kernel_id
    base = f"user/bob/{API}"

    # positive control: bob's own token reaches every one of these routes
    for route in ("status", "snapshot", "kernels"):
        assert hub.request("GET", f"{base}/{route}", bob.token).status_code == 200, route

    # alice's API token: the single-user server refuses her (no access:servers!server=bob/)
    refused = {}
    for route in ("status", "snapshot", "kernels", "devices", "history", "benchmarks", "cluster", "openapi.json"):
        refused[f"GET {route}"] = hub.request("GET", f"{base}/{route}", alice_token).status_code
    for action in ACTIONS:
        r = hub.request("POST", f"{base}/kernels/{kid}/{action}", alice_token, {})
        refused[f"POST kernels/{{bob's}}/{action}"] = r.status_code
    refused[f"POST probes/{bob.kernel_pid}/triage"] = hub.request(
        "POST", f"{base}/probes/{bob.kernel_pid}/triage", alice_token, {}
    ).status_code
    refused["POST api/kernels/{bob's}/interrupt"] = hub.request(
        "POST", f"user/bob/api/kernels/{kid}/interrupt", alice_token, {}
    ).status_code
    refused["DELETE api/kernels/{bob's}"] = hub.request(
        "DELETE", f"user/bob/api/kernels/{kid}", alice_token
    ).status_code
    assert set(refused.values()) == {403}, refused

    # the websocket with her token: refused at the handshake
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(
            ws_url(hub, f"{base}/stream"), header=[f"Authorization: token {alice_token}"], timeout=20
        )
    assert err.value.status_code == 403

    # her browser session (the hub's cookie, her own server's cookie): bob's server finds no user
    # in it; its API answers 403 at once (no redirect for API requests)
    ctx = alice.context
    request = ctx.request
    for route in ("status", "snapshot", "kernels", "devices", "history"):
        r = request.get(hub.url + f"{base}/{route}", max_redirects=0)
        assert r.status == 403, (route, r.status, r.text()[:500])
        assert str(bob.kernel_pid) not in r.text()
    # POSTs passing bob's server's XSRF check, so that what refuses them is who she is: a first
    # POST with a wrong token is refused for it, and the answer sets bob's server's _xsrf cookie in
    # her browser (bound to her hub session); the POSTs after it carry that token in X-XSRFToken
    r = request.post(
        hub.url + f"{base}/kernels/{kid}/interrupt", headers={"X-XSRFToken": "wrong"}, data="{}", max_redirects=0
    )
    assert r.status == 403 and "xsrf" in r.text().lower(), (r.status, r.text()[:500])
    xsrf = [c["value"] for c in ctx.cookies(hub.url + "user/bob/") if c["name"] == "_xsrf"]
    assert xsrf, ctx.cookies()
    for action in ACTIONS:
        r = request.post(
            hub.url + f"{base}/kernels/{kid}/{action}",
            headers={"X-XSRFToken": xsrf[0], "Content-Type": "application/json"},
            data="{}",
            max_redirects=0,
        )
        assert r.status == 403, (action, r.status, r.text()[:500])
        assert "xsrf" not in r.text().lower(), r.text()[:500]
    # a page of hers (the hub's home page: same origin, her cookies) opening the stream sockets:
    # her own opens, bob's fails at the handshake
    other = ctx.new_page()
    try:
        other.goto(hub.url + "hub/home")
        js = """url => new Promise(done => {
                 const ws = new WebSocket(url);
                 let failed = false;
                 ws.onopen = () => { ws.close(); done('open'); };
                 ws.onerror = () => { failed = true; };
                 ws.onclose = e => done(failed ? 'refused' : `closed ${e.code}`);
                 setTimeout(() => done('timeout'), 20000);
               })"""
        assert other.evaluate(js, ws_url(hub, f"user/alice/{API}/stream")) == "open"
        assert other.evaluate(js, ws_url(hub, f"{base}/stream")) == "refused"
        # and bob's JupyterLab: his server sends her to the hub's OAuth, the hub refuses her
        r = request.get(hub.url + "user/bob/lab", max_redirects=0)
        assert r.status == 302, (r.status, r.text()[:500])
        location = r.headers["location"]
        assert "/hub/api/oauth2/authorize" in location, location
        r = request.get(location if location.startswith("http") else hub.url.rstrip("/") + location, max_redirects=0)
        assert r.status == 403, (r.status, r.text()[:500])
    finally:
        other.close()

    # through her own server, bob's kernel is not hers to name
    for action in ACTIONS:
        r = hub.request("POST", f"user/alice/{API}/kernels/{kid}/{action}", alice_token, {})
        assert r.status_code == 404, (action, r.status_code, r.text)

    # bob's kernel lived through all of it: same process, not restarted, not shut down
    r = hub.request("GET", f"user/bob/api/kernels/{kid}", bob.token)
    assert r.status_code == 200 and r.json()["execution_state"] != "dead", r.text
    doc = hub.request("GET", f"{base}/kernels?refresh=1", bob.token).json()
    (mine,) = [k for k in doc["kernels"] if k["kernel_id"] == kid]
    assert mine["pid"] == bob.kernel_pid and psutil.pid_exists(bob.kernel_pid), (mine, bob.kernel_pid)
    # and bob himself can act on it (the refusal above was about alice, not a broken route)
    r = hub.request("POST", f"{base}/kernels/{kid}/interrupt", bob.token, {})
    assert r.status_code == 200 and r.json()["ok"] is True, r.text


def test_every_route_websocket_and_panel_work_under_the_hub_prefix(hub: Hub, alice: Session):
    token = hub.token_for("alice")
    for route in GET_ROUTES:
        r = hub.request("GET", f"user/alice/{API}/{route}", token)
        assert r.status_code == 200, (route, r.status_code, r.text[:500])
        assert r.headers["Content-Type"].startswith("application/json"), (route, r.headers["Content-Type"])
        assert isinstance(r.json(), dict), route
    status = hub.request("GET", f"user/alice/{API}/status", token).json()
    assert status["source"] == "nvml" and status["state"] == "ok", status

    got = read_stream(hub, f"user/alice/{API}/stream", token, {"hello", "snapshot"})
    assert got["hello"]["status"]["state"] == "ok", got["hello"]
    assert got["snapshot"]["snapshot"]["gpus"][0]["mem_total"] > 0, got["snapshot"]

    # the browser: the page's stream socket goes through the prefix, and the numbers are live
    page = alice.page
    open_panel(page)
    root = page.locator("#jp-gpu-panel .jp-GpuPanel-root")
    page.wait_for_selector('#jp-gpu-panel .jp-GpuPanel-root[data-phase="live"]', timeout=30000)
    streams = [u for u in alice.sockets if f"/{API}/stream" in u]
    assert streams and all(u.startswith(ws_url(hub, f"user/alice/{API}/stream")) for u in streams), alice.sockets
    card = page.locator("#jp-gpu-panel .jp-GpuPanel-card").first
    card.wait_for(state="visible")
    t0 = float(card.get_attribute("data-t"))
    page.wait_for_function(
        "t => Number(document.querySelector('#jp-gpu-panel .jp-GpuPanel-card').dataset.t) > t",
        arg=t0,
        timeout=15000,
    )
    assert int(card.get_attribute("data-mem-used")) > 0
    mem = card.locator('[data-testid="mem"]').inner_text()
    assert "GiB" in mem, mem
    text = root.inner_text()
    for bad in ("unreachable", "Reconnecting", "not enabled", "Connecting to the GPU service"):
        assert bad not in text, (bad, text[:1000])
    assert root.get_attribute("data-phase") == "live"
    assert alice.errors == [], alice.errors
