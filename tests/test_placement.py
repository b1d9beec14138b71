"""GPU placement (issue 20): the policy as pure logic, then real kernels on a real server.

The GPUs are the fake pynvml (the NVML boundary): 8 H100s answering like the recorded one,
GPUs 0-2 busy with 40 GiB held by another process. Kernels are real ipykernels started
through ``POST api/kernels``; what each one got is read in the kernel itself (``os.environ``)
and in the panel's kernels document.
"""

import asyncio
import json
import os
import re

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_gpu_panel.api.kernels import run_in_kernel
from jupyter_gpu_panel.kernels.placement import Candidate, Reservations, check_request, choose
from jupyter_gpu_panel.kernels.placer import resolve_visible
from jupyter_gpu_panel.metrics.readings import DeviceInfo

GiB = 2**30
BUSY = (0, 1, 2)


# -- the policy, pure ------------------------------------------------------------------------------
def node(**over):
    """8 idle 80 GiB GPUs; ``over``: index -> fields to change."""
    gpus = []
    for i in range(8):
        fields = {"index": i, "mem_free": 80 * GiB, "mem_total": 80 * GiB, **over.get(str(i), {})}
        gpus.append(Candidate(**fields))
    return gpus


def test_most_free_memory_takes_the_freest_and_skips_the_busy():
    gpus = node(**{str(i): {"mem_free": 40 * GiB} for i in BUSY}, **{"5": {"mem_free": 79 * GiB}})
    assert choose(gpus, "most-free-memory").gpus == [3]
    assert choose(gpus, "most-free-memory", count=3).gpus == [3, 4, 6]
    assert "most-free-memory" in choose(gpus, "most-free-memory").reason


def test_a_reserved_gpu_counts_as_taken_until_its_kernel_shows():
    r = Reservations(ttl=60)
    picks = []
    for k in range(6):
        gpus = [Candidate(**{**c.__dict__, "reserved": r.counts().get(c.index, 0)}) for c in node()]
        choice = choose(gpus, "most-free-memory")
        r.reserve(f"k{k}", choice.gpus, now=0.0)
        picks.append(choice.gpus[0])
    assert picks == [0, 1, 2, 3, 4, 5]
    r.launched("k0", 1234)
    r.settle({0: {1234}}, {}, now=1.0)  # k0's process shows on GPU 0
    assert 0 not in r.counts() and r.counts()[1] == 1
    r.settle({1: {99}}, {"k1": {99}}, now=2.0)  # a child of k1 (attributed to it) on GPU 1
    assert 1 not in r.counts()
    r.settle({}, {}, now=61.0)  # the rest waited 60 s and never showed
    assert r.counts() == {}


def test_least_utilized_and_spread():
    gpus = node(**{"0": {"util_avg": 90.0}, "1": {"util_avg": 5.0, "holders": 3}, "2": {"util_avg": 50.0}})
    gpus = [Candidate(**{**g.__dict__, "util_avg": g.util_avg if g.util_avg is not None else 70.0}) for g in gpus]
    assert choose(gpus, "least-utilized").gpus == [1]
    assert "5% busy over the last minute" in choose(gpus, "least-utilized").reason
    spread = node(**{str(i): {"holders": 2} for i in range(7)}, **{"7": {"holders": 1, "mem_free": 1 * GiB}})
    assert choose(spread, "spread").gpus == [7]  # fewest holders beats free memory


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"state": "lost"}, "lost"),
        ({"state": "unresponsive"}, "unresponsive"),
        ({"ecc_errors": 2}, "ECC"),
        ({"throttle_reasons": ("hardware thermal slowdown",)}, "temperature"),
    ],
)
def test_a_gpu_in_a_bad_state_is_avoided(bad, words):
    gpus = node(**{"0": {**bad, "mem_free": 80 * GiB}}, **{str(i): {"mem_free": 10 * GiB} for i in range(1, 8)})
    choice = choose(gpus, "most-free-memory")
    assert choice.gpus == [1] and words in choice.reason
    # with every GPU in that state there is nothing to choose: off, with the reason
    none = choose([Candidate(**{**g.__dict__, **bad}) for g in gpus], "most-free-memory")
    assert none.gpus == [] and words in none.reason and "every GPU" in none.reason


def test_off_and_impossible_counts_place_nothing():
    assert choose(node(), "off").gpus == []
    assert "9 GPUs per kernel" in choose(node(), "spread", count=9).reason
    assert choose([], "spread").reason.startswith("no GPU readings yet")


def test_explicit_requests_are_checked():
    states = {i: "ok" for i in range(8)} | {6: "lost"}
    assert check_request([5, 2], states) == [2, 5]
    for gpus, words in [
        ([9], "GPU 9 does not exist"),
        ([6], "GPU 6 is lost"),
        (list(range(9)), "9 GPUs asked for, this node has 8"),
        (["a"], "gpus[0] must be an integer"),
        ([1.5], "gpus[0] must be an integer"),
        ([True], "gpus[0] must be an integer"),
        ([], "non-empty list"),
        ("3", "non-empty list"),
        ([3, 3], "twice"),
    ]:
        with pytest.raises(ValueError, match=re.escape(words)):
            check_request(gpus, states)


def test_visible_devices_resolve_by_index_and_uuid():
    devices = [DeviceInfo(index=i, uuid=f"GPU-aaaa-{i}") for i in range(4)]
    assert resolve_visible("2", devices) == [2]
    assert resolve_visible("GPU-aaaa-3,1", devices) == [3, 1]
    assert resolve_visible("1,7,2", devices) == [1]  # CUDA stops at the first unknown entry
    assert resolve_visible("", devices) == []  # no GPU at all
    assert resolve_visible(None, devices) is None  # unset: every GPU
    assert resolve_visible("MIG-xyz", devices) is None


# -- a real server, real kernels ---------------------------------------------------------------------
@pytest.fixture
def fake_gpus():
    return 8


@pytest.fixture
def gpu_panel_config(fake):
    for i in BUSY:  # another user's training holds 40 GiB on each of GPUs 0-2
        fake.processes[i] = [(os.getpid(), 40 * GiB)]
    return {"source": "nvml", "interval": 0.1, "kernel_refresh": 0.2, "placement": "most-free-memory"}


async def ticks(panel, n=3):
    start = panel.sampler.health.ticks
    while panel.sampler.health.ticks < start + n:
        await asyncio.sleep(0.05)


async def start_kernel(jp_fetch):
    resp = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    return json.loads(resp.body)["id"]


async def visible_in_kernel(jp_serverapp, kid):
    """``CUDA_VISIBLE_DEVICES`` as the kernel's own Python has it."""
    code = "import os; print(repr(os.environ.get('CUDA_VISIBLE_DEVICES')), os.environ.get('CUDA_DEVICE_ORDER'))"
    done, out = await run_in_kernel(jp_serverapp.kernel_manager, kid, code, timeout=60)
    assert done, out
    text, order = out.rsplit(" ", 1)
    return eval(text), order  # repr of a str or None, printed by the kernel


def kernel_pid(jp_serverapp, kid):
    return jp_serverapp.kernel_manager.get_kernel(kid).provisioner.pid


async def rows(jp_fetch):
    doc = json.loads((await jp_fetch("api", "gpu-panel", "kernels", params={"refresh": "1"})).body)
    return {k["kernel_id"]: k for k in doc["kernels"]}


async def test_eight_kernels_in_a_row_land_on_the_free_gpus_first(jp_fetch, jp_serverapp, panel, fake):
    await ticks(panel)
    placed = []
    for _ in range(8):
        kid = await start_kernel(jp_fetch)
        visible, order = await visible_in_kernel(jp_serverapp, kid)
        assert order == "PCI_BUS_ID"
        gpu = int(visible)
        placed.append(gpu)
        # the kernel allocates 2 GiB on its GPU, as NVML then shows; its reservation ends
        fake.processes.setdefault(gpu, []).append((kernel_pid(jp_serverapp, kid), 2 * GiB))
        await ticks(panel)
        row = (await rows(jp_fetch))[kid]
        assert row["placement"]["gpus"] == [gpu] and row["placement"]["source"] == "placement"
        assert row["placement"]["cuda_visible_devices"] == visible and row["placement"]["readable"] is True
    assert placed[:5] == [3, 4, 5, 6, 7]
    # then the GPUs with the most free memory again: one kernel's 2 GiB, not the busy 40 GiB
    assert placed[5:] == [3, 4, 5]


async def test_four_kernels_started_at_once_get_four_gpus(jp_fetch, jp_serverapp, panel):
    await ticks(panel)
    kids = await asyncio.gather(*(start_kernel(jp_fetch) for _ in range(4)))
    got = [(await visible_in_kernel(jp_serverapp, kid))[0] for kid in kids]
    assert sorted(got) == ["3", "4", "5", "6"]


async def test_a_user_set_cuda_visible_devices_is_kept(jp_fetch, jp_serverapp, panel, monkeypatch):
    await ticks(panel)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # the user started the server with it
    kid = await start_kernel(jp_fetch)
    assert (await visible_in_kernel(jp_serverapp, kid))[0] == "1"
    row = (await rows(jp_fetch))[kid]
    assert row["placement"]["source"] == "outside" and row["placement"]["gpus"] == [1]
    assert "outside the panel" in row["placement"]["reason"]
    placement = json.loads((await jp_fetch("api", "gpu-panel", "placement")).body)
    assert placement["next"] is None and "CUDA_VISIBLE_DEVICES='1'" in placement["reason"]
    # Restart on GPU 5 would override it: refused
    with pytest.raises(HTTPClientError) as err:
        await restart(jp_fetch, kid, {"gpus": [5]})
    assert err.value.code == 409 and "outside the panel" in message(err.value)


async def restart(jp_fetch, kid, body):
    return await jp_fetch(
        "api", "gpu-panel", "kernels", kid, "restart", method="POST", body=json.dumps(body), request_timeout=120
    )


def message(err):
    return json.loads(err.response.body)["message"]


async def test_restart_on_gpu_5_moves_the_kernel(jp_fetch, jp_serverapp, panel):
    await ticks(panel)
    kid = await start_kernel(jp_fetch)
    assert (await visible_in_kernel(jp_serverapp, kid))[0] == "3"
    resp = json.loads((await restart(jp_fetch, kid, {"gpus": [5]})).body)
    assert resp["ok"] is True and resp["gpus"] == [5]
    assert (await visible_in_kernel(jp_serverapp, kid))[0] == "5"
    row = (await rows(jp_fetch))[kid]
    assert row["placement"]["gpus"] == [5] and row["placement"]["source"] == "request"
    # a plain restart afterwards stays on GPU 5
    await restart(jp_fetch, kid, {})
    assert (await visible_in_kernel(jp_serverapp, kid))[0] == "5"


async def test_get_placement_names_the_next_gpu_and_avoids_a_lost_one(jp_fetch, panel, fake):
    await ticks(panel)
    doc = json.loads((await jp_fetch("api", "gpu-panel", "placement")).body)
    assert doc["policy"] == "most-free-memory" and doc["gpus_per_kernel"] == 1
    assert doc["next"] == {"gpus": [3], "cuda_visible_devices": "3"}
    assert [g["index"] for g in doc["gpus"]] == list(range(8))
    assert doc["gpus"][0]["holders"] == 1 and doc["gpus"][3]["holders"] == 0
    fake.lost.add(3)
    await ticks(panel)
    doc = json.loads((await jp_fetch("api", "gpu-panel", "placement")).body)
    assert doc["next"]["gpus"] == [4] and "GPU 3 lost" in doc["reason"]
    assert doc["gpus"][3]["problem"].startswith("lost")


@pytest.mark.parametrize(
    "body, words",
    [
        ({"gpus": [9]}, "GPU 9 does not exist"),
        ({"gpus": [6]}, "GPU 6 is lost"),
        ({"gpus": list(range(9))}, "9 GPUs asked for, this node has 8"),
        ({"gpus": ["two"]}, "gpus[0] must be an integer"),
        ({"gpus": [2.5]}, "gpus[0] must be an integer"),
        ({"gpus": 3}, "non-empty list"),
    ],
)
async def test_bad_restart_requests_are_400_naming_the_problem(jp_fetch, jp_serverapp, panel, fake, body, words):
    fake.lost.add(6)
    await ticks(panel)
    kid = await start_kernel(jp_fetch)
    pid = kernel_pid(jp_serverapp, kid)
    with pytest.raises(HTTPClientError) as err:
        await restart(jp_fetch, kid, body)
    assert err.value.code == 400 and words in message(err.value)
    assert kernel_pid(jp_serverapp, kid) == pid  # not restarted
