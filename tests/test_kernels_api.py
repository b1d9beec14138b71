"""`GET kernels` and kernel actions on a real server with real kernels.

The GPU side is the fake pynvml (the NVML boundary): it lists the real kernel's pid as a
GPU process, as NVML would on a GPU machine. Probe files are the recorded H100 traces:
the probe's wire format *is* the `*.iters.jsonl` format.
"""

import asyncio
import json
import shutil
import sys

import pytest
from tornado.httpclient import HTTPClientError

from conftest import ROOT, TRACES

GiB = 2**30


@pytest.fixture
def gpu_panel_config(fake):
    return {"source": "nvml", "interval": 0.1, "kernel_refresh": 0.2}


async def start_session(jp_fetch, path):
    resp = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps({"path": path, "type": "notebook", "name": path, "kernel": {"name": "python3"}}),
    )
    return json.loads(resp.body)["kernel"]["id"]


async def kernels(jp_fetch):
    return json.loads((await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})).body)


def kernel_pid(jp_serverapp, kid):
    return jp_serverapp.kernel_manager.get_kernel(kid).provisioner.pid


async def test_gpu_process_is_attributed_to_its_kernel_and_notebook(jp_fetch, jp_serverapp, panel, fake):
    kid = await start_session(jp_fetch, "work/train.ipynb")
    pid = kernel_pid(jp_serverapp, kid)
    fake.processes[0] = [(pid, 3 * GiB)]
    await asyncio.sleep(0.4)  # a few sampler ticks
    doc = await kernels(jp_fetch)
    [k] = [k for k in doc["kernels"] if k["kernel_id"] == kid]
    assert k["notebook"] == "work/train.ipynb"
    assert k["pids"] == [pid]
    assert k["memory"] == {"0": 3 * GiB}
    assert k["history"]["used"] and k["history"]["used"][-1] == 3 * GiB
    assert doc["pid_namespace"] == "host"
    snap = json.loads((await jp_fetch("api", "gpu-panel", "snapshot")).body)
    [proc] = snap["gpus"][0]["processes"]
    assert proc["owner"]["kind"] == "kernel"
    assert proc["owner"]["kernel_id"] == kid and proc["owner"]["notebook"] == "work/train.ipynb"


async def test_container_pids_are_detected_and_said(jp_fetch, jp_serverapp, panel, fake):
    kid = await start_session(jp_fetch, "a.ipynb")
    fake.processes[0] = [(4_000_000, GiB)]  # a host pid that does not exist in our namespace
    await asyncio.sleep(0.3)
    doc = await kernels(jp_fetch)
    assert doc["pid_namespace"] == "mismatch"
    [k] = [k for k in doc["kernels"] if k["kernel_id"] == kid]
    assert k["pids"] == []


async def test_probe_file_of_a_leaking_run_flags_that_kernel_only(jp_fetch, jp_serverapp, panel, fake):
    leaky = await start_session(jp_fetch, "leaky.ipynb")
    healthy = await start_session(jp_fetch, "healthy.ipynb")
    for kid, scenario in ((leaky, "leak_hidden"), (healthy, "healthy_plateau")):
        write_probe(panel.probes.dir, kernel_pid(jp_serverapp, kid), kid, scenario)
    doc = await kernels(jp_fetch)
    by_id = {k["kernel_id"]: k for k in doc["kernels"]}
    leak = by_id[leaky]["leak"]
    assert leak["source"] == "steps"
    assert leak["leak"] is True and leak["actionable"] is True
    assert leak["bytes_per_step"] == pytest.approx(32 * 2**20, rel=0.05)
    assert "MiB a step" in leak["message"]
    assert by_id[leaky]["probe"]["steps"] == 400
    assert by_id[healthy]["leak"]["actionable"] is False


async def test_kernel_actions(jp_fetch, jp_serverapp, panel):
    kid = await start_session(jp_fetch, "x.ipynb")
    resp = await jp_fetch("api", "gpu-panel", "kernels", kid, "interrupt", method="POST", body="{}")
    assert json.loads(resp.body)["ok"] is True
    old = kernel_pid(jp_serverapp, kid)
    resp = await jp_fetch("api", "gpu-panel", "kernels", kid, "restart", method="POST", body="{}")
    assert resp.code == 200 and kernel_pid(jp_serverapp, kid) != old
    resp = await jp_fetch("api", "gpu-panel", "kernels", kid, "probe", method="POST", body="{}")
    doc = json.loads(resp.body)
    assert doc["ok"] is False and "no CUDA GPU" in doc["message"]  # CPU CI: the probe says why
    resp = await jp_fetch("api", "gpu-panel", "kernels", kid, "shutdown", method="POST", body="{}")
    assert resp.code == 200 and kid not in jp_serverapp.kernel_manager


@pytest.mark.parametrize("kid, action, code", [("nope", "interrupt", 404), (None, "explode", 400)])
async def test_kernel_action_errors(jp_fetch, panel, kid, action, code):
    if kid is None:
        kid = await start_session(jp_fetch, "y.ipynb")
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("api", "gpu-panel", "kernels", kid, action, method="POST", body="{}")
    assert err.value.code == code
    assert json.loads(err.value.response.body)["message"]


async def test_kernel_routes_refuse_unauthenticated(jp_fetch, panel):
    for args, method in ((("kernels",), "GET"), (("kernels", "abc", "shutdown"), "POST")):
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch(
                "api",
                "gpu-panel",
                *args,
                method=method,
                body="{}" if method == "POST" else None,
                headers={"Authorization": ""},
            )
        assert err.value.code == 403


def write_probe(probe_dir, pid, kid, scenario):
    """A probe's files as the kernel writes them; ``started`` now, so the pid counts as alive."""
    import time

    probe_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (probe_dir / f"probe-{pid}.json").write_text(
        json.dumps({"pid": pid, "kernel_id": kid, "device": 0, "limit": 85520809984, "started": time.time()})
    )
    shutil.copy(TRACES / "h100" / f"{scenario}.iters.jsonl", probe_dir / f"probe-{pid}.iters.jsonl")


async def test_alarm_asks_the_probe_for_a_triage_once_and_shows_the_forecast(jp_fetch, jp_serverapp, panel, fake):
    leaky = await start_session(jp_fetch, "leaky.ipynb")
    healthy = await start_session(jp_fetch, "healthy.ipynb")
    probe_dir = panel.probes.dir
    write_probe(probe_dir, kernel_pid(jp_serverapp, leaky), leaky, "leak_hidden")
    write_probe(probe_dir, kernel_pid(jp_serverapp, healthy), healthy, "healthy_plateau")
    by_id = {k["kernel_id"]: k for k in (await kernels(jp_fetch))["kernels"]}
    leak, probe = by_id[leaky]["leak"], by_id[leaky]["probe"]
    # the chart's data: the steps and the dashed line from now to the limit
    assert probe["series"]["step"][-1] == 399 and len(probe["series"]["allocated"]) == len(probe["series"]["step"])
    fc = leak["forecast"]
    assert fc["axis"] == "step" and fc["x0"] == 399 and fc["y1"] == leak["capacity"]
    assert fc["x1"] == pytest.approx(399 + leak["steps_to_oom"])
    assert by_id[healthy]["leak"]["forecast"] is None
    # the alarm asked the leaky kernel's probe (only) for the allocation history of a few steps
    assert probe["triage"]["state"] == "requested" and probe["triage"]["auto"] is True
    assert (probe_dir / f"probe-{kernel_pid(jp_serverapp, leaky)}.triage-request").exists()
    assert by_id[healthy]["probe"]["triage"] is None
    assert not (probe_dir / f"probe-{kernel_pid(jp_serverapp, healthy)}.triage-request").exists()
    # once per probe: a consumed request is not asked again on the next refresh
    (probe_dir / f"probe-{kernel_pid(jp_serverapp, leaky)}.triage-request").unlink()
    await kernels(jp_fetch)
    assert not (probe_dir / f"probe-{kernel_pid(jp_serverapp, leaky)}.triage-request").exists()


async def test_triage_action(jp_fetch, jp_serverapp, panel, fake):
    kid = await start_session(jp_fetch, "t.ipynb")
    with pytest.raises(HTTPClientError) as err:  # no probe in that kernel yet
        await jp_fetch("api", "gpu-panel", "kernels", kid, "triage", method="POST", body="{}")
    assert err.value.code == 409 and "Track memory" in json.loads(err.value.response.body)["message"]

    pid = kernel_pid(jp_serverapp, kid)
    write_probe(panel.probes.dir, pid, kid, "healthy_plateau")
    resp = await jp_fetch("api", "gpu-panel", "kernels", kid, "triage", method="POST", body="{}")
    assert resp.code == 202 and json.loads(resp.body) == {
        "kernel_id": kid,
        "action": "triage",
        "requested": True,
        "steps": 4,
    }
    assert json.loads((panel.probes.dir / f"probe-{pid}.triage-request").read_text())["steps"] == 4
    [k] = [k for k in (await kernels(jp_fetch))["kernels"] if k["kernel_id"] == kid]
    assert k["probe"]["triage"]["state"] == "requested" and k["probe"]["triage"]["auto"] is False

    # what the probe writes after recording (a real H100 history: 4 steps keeping `h`)
    snap = json.loads((ROOT / "tests" / "data" / "leaks" / "snapshot_leak.json").read_text())
    snap["code"] = {
        f"{fr['filename']}:{fr['line']}": "h = model[1](model[0](x))"
        for ev in snap["device_traces"][0]
        for fr in ev["frames"]
        if fr["line"] == 27
    }
    (panel.probes.dir / f"probe-{pid}.triage.json").write_text(json.dumps(snap))
    [k] = [k for k in (await kernels(jp_fetch))["kernels"] if k["kernel_id"] == kid]
    t = k["probe"]["triage"]
    assert t["state"] == "done"
    assert t["message"] == "`record_snapshot.py:27 h = model[1](model[0](x))` keeps 32 MiB a step"


async def test_concurrent_refreshes_read_each_probe_line_once(jp_fetch, jp_serverapp, panel, fake):
    """Refreshes on request, the periodic one and triage requests share the probes' followers:
    run together, they must not read a line twice."""
    kid = await start_session(jp_fetch, "c.ipynb")
    pid = kernel_pid(jp_serverapp, kid)
    write_probe(panel.probes.dir, pid, kid, "healthy_plateau")
    # a long run (16,000 steps), so that reading it takes a while
    rows = [json.loads(line) for line in (TRACES / "h100" / "healthy_plateau.iters.jsonl").read_text().splitlines()]
    with (panel.probes.dir / f"probe-{pid}.iters.jsonl").open("w") as fh:
        for n in range(16_000):
            fh.write(json.dumps({**rows[n % len(rows)], "i": n}) + "\n")
    calls = [kernels(jp_fetch) for _ in range(4)]
    calls += [jp_fetch("api", "gpu-panel", "kernels", kid, "triage", method="POST", body="{}") for _ in range(2)]
    await asyncio.gather(*calls)
    [k] = [k for k in (await kernels(jp_fetch))["kernels"] if k["kernel_id"] == kid]
    assert k["probe"]["steps"] == 16_000
    assert k["probe"]["series"]["step"] == sorted(set(k["probe"]["series"]["step"]))


@pytest.fixture
def script_process():
    """A live process that is no kernel, as a training script started from a terminal."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


async def test_a_script_with_a_probe_is_listed_with_its_leak_and_can_be_triaged(
    jp_fetch, jp_serverapp, panel, fake, script_process
):
    kid = await start_session(jp_fetch, "k.ipynb")
    probe_dir = panel.probes.dir
    write_probe(probe_dir, script_process.pid, None, "leak_hidden")
    meta = json.loads((probe_dir / f"probe-{script_process.pid}.json").read_text())
    (probe_dir / f"probe-{script_process.pid}.json").write_text(
        json.dumps({**meta, "argv": ["train.py", "--epochs", "3"], "rank": "1"})
    )
    doc = await kernels(jp_fetch)
    [script] = doc["scripts"]
    assert (
        script["pid"] == script_process.pid
        and script["argv"] == ["train.py", "--epochs", "3"]
        and script["rank"] == "1"
    )
    assert script["probe"]["steps"] == 400
    assert script["leak"]["actionable"] and script["leak"]["bytes_per_step"] == pytest.approx(32 * 2**20, rel=0.05)
    assert script["probe"]["triage"]["state"] == "requested"  # asked on the alarm, as for a kernel
    [k] = [k for k in doc["kernels"] if k["kernel_id"] == kid]
    assert k["probe"] is None  # the script is no kernel's

    (probe_dir / f"probe-{script_process.pid}.triage-request").unlink()
    resp = await jp_fetch("api", "gpu-panel", "probes", str(script_process.pid), "triage", method="POST", body="{}")
    assert resp.code == 202 and json.loads(resp.body)["steps"] == 4
    assert (probe_dir / f"probe-{script_process.pid}.triage-request").exists()

    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("api", "gpu-panel", "probes", "4000000", "triage", method="POST", body="{}")
    assert err.value.code == 404 and "no running memory probe" in json.loads(err.value.response.body)["message"]

    script_process.kill()
    script_process.wait()
    assert (await kernels(jp_fetch))["scripts"] == []  # a finished script leaves the list


async def test_the_stream_pushes_the_kernels_document_when_it_changes(jp_fetch, jp_ws_fetch, jp_serverapp, panel, fake):
    """The panel polls nothing: a new kernel holding GPU memory reaches an open socket by itself."""
    ws = await jp_ws_fetch("api", "gpu-panel", "stream")
    kid = await start_session(jp_fetch, "pushed.ipynb")
    fake.processes[0] = [(kernel_pid(jp_serverapp, kid), 2 * GiB)]
    deadline = asyncio.get_running_loop().time() + 10
    seen = None
    while seen is None:
        assert asyncio.get_running_loop().time() < deadline, "no kernels message with the new kernel"
        msg = json.loads(await asyncio.wait_for(ws.read_message(), 10))
        if msg["type"] == "kernels":
            seen = next((k for k in msg["kernels"]["kernels"] if k["kernel_id"] == kid and k["memory"]), None)
    assert seen["notebook"] == "pushed.ipynb" and seen["memory"] == {"0": 2 * GiB}
    ws.close()
