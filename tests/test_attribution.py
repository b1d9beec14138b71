"""GPU pid -> kernel -> notebook, on real process trees."""

import os
import subprocess
import sys

from jupyter_gpu_panel.kernels.attribution import KernelRef, attribute, match_by_memory, parent_pid

KERNEL = KernelRef("k-1", "python3", "work/train.ipynb", "busy", "ada")


def test_the_kernel_itself_and_its_worker_children_count_toward_it():
    # this test process plays the kernel; a real child and grandchild play DataLoader workers
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess,sys,time; p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(30)']); "
            "print(p.pid, flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        grandchild = int(child.stdout.readline())
        owners = attribute([os.getpid(), child.pid, grandchild, 1], {os.getpid(): KERNEL}, parent_pid)
        assert owners[os.getpid()]["kernel_id"] == "k-1" and owners[os.getpid()]["via_pid"] is None
        assert owners[child.pid]["notebook"] == "work/train.ipynb"
        assert owners[grandchild]["kind"] == "kernel" and owners[grandchild]["via_pid"] == os.getpid()
        assert owners[1] == {"kind": "process"}  # init: not ours
    finally:
        child.kill()
        child.wait()


def test_terminals_and_plain_processes():
    parents = {10: 5, 5: 1, 20: 7, 7: 1}
    owners = attribute([10, 20], {}, parents.get, terminal_pids=[5])
    assert owners[10] == {"kind": "terminal", "via_pid": 5}
    assert owners[20] == {"kind": "process"}


def test_nearest_kernel_wins_and_cycles_terminate():
    inner = KernelRef("inner")
    parents = {30: 31, 31: 32, 32: 31}  # a cycle must not hang the walk
    owners = attribute([30], {31: inner, 32: KERNEL}, parents.get)
    assert owners[30]["kernel_id"] == "inner"
    loop = attribute([40], {}, {40: 41, 41: 40}.get)
    assert loop[40] == {"kind": "process"}


def test_container_fallback_matches_probes_by_memory():
    GiB = 2**30
    nvml = {111: 10 * GiB + 500 * 2**20, 222: 3 * GiB}  # reserve + ~500 MiB CUDA context
    probes = {"k-big": 10 * GiB, "k-small": 3 * GiB - 400 * 2**20}
    assert match_by_memory(nvml, probes) == {111: "k-big", 222: "k-small"}
    assert match_by_memory(nvml, {"k-x": 40 * GiB}) == {}  # nothing close: no guess
