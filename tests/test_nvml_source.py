"""The NVML source and the sampler against a fake pynvml that answers like the recorded H100."""

import sys
import time

import pynvml
import pytest

from jupyter_gpu_panel.metrics.readings import STATE_DRIVER_NOT_LOADED, STATE_LIBRARY_MISSING, STATE_NO_DEVICES
from jupyter_gpu_panel.metrics.sampler import Sampler
from jupyter_gpu_panel.metrics.sources.nvml import NvmlSource, decode_throttle_reasons

from fake_nvml import FakeNVML, h100_facts


def open_source(fake, **kw):
    src = NvmlSource(nvml=fake, **kw)
    status = src.open()
    return src, status


def test_readings_equal_what_nvml_answered():
    fake = FakeNVML()
    facts = h100_facts()
    src, status = open_source(fake)
    assert status.ok
    assert status.driver_version == "580.159.04"
    assert status.cuda_driver_version == "13.0"
    assert status.library_version == facts["nvml_version"]
    [dev] = src.devices()
    assert dev.name == "NVIDIA H100 80GB HBM3"
    assert dev.pci_bus_id == "00000000:00:06.0"
    assert dev.memory_total == 81559 * 2**20
    assert (dev.clock_sm_max, dev.clock_mem_max) == (1980, 2619)
    assert dev.compute_capability == "9.0"
    r = src.read_fast(0)
    # nvidia-smi's numbers for that card: used 0, reserved 480 MiB, free 81079 MiB
    assert (r.mem_total, r.mem_used, r.mem_reserved) == (81559 * 2**20, 0, 480 * 2**20)
    assert r.mem_free == 81079 * 2**20
    assert r.temp_c == 35
    assert r.power_mw == 73449 and r.power_limit_mw == 700000
    assert (r.clock_sm, r.clock_mem, r.pstate) == (915, 2619, 0)
    assert r.throttle_reasons == ["idle"]
    slow = src.read_slow(0)
    assert slow["pcie_tx_kbps"] == 1498 and slow["pcie_gen"] == 5 and slow["pcie_width"] == 16
    assert slow["energy_mj"] == 2902069 and slow["ecc_errors_volatile"] == 0


def test_unsupported_fields_are_null_not_errors():
    fake = FakeNVML()
    fake.not_supported |= {"nvmlDeviceGetPowerUsage", "nvmlDeviceGetTotalEnergyConsumption"}
    src, _ = open_source(fake)
    r = src.read_fast(0)
    assert r.fan_pct is None  # NotSupported on the H100
    assert r.power_mw is None
    assert r.temp_c == 35  # the rest still reads
    src.read_fast(0)
    assert fake.count("nvmlDeviceGetFanSpeed") == 1  # NotSupported is remembered, not re-raised each tick
    slow = src.read_slow(0)
    assert slow["nvlink_active"] is None and slow["energy_mj"] is None
    # NVLink NotSupported is remembered: not asked 36 links x every slow tick
    before = fake.count("nvmlDeviceGetNvLinkState")
    src.read_slow(0)
    assert fake.count("nvmlDeviceGetNvLinkState") == before


@pytest.mark.parametrize(
    "code, state, words",
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, STATE_LIBRARY_MISSING, "libnvidia-ml"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, STATE_DRIVER_NOT_LOADED, "not loaded"),
    ],
)
def test_init_failures_become_clear_states(code, state, words):
    src, status = open_source(FakeNVML(init_error=code))
    assert status.state == state
    assert words in status.message
    assert src.devices() == []


def test_no_devices_state():
    _, status = open_source(FakeNVML(gpus=0))
    assert status.state == STATE_NO_DEVICES
    assert "no NVIDIA GPU" in status.message


def test_pynvml_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    status = NvmlSource().open()
    assert status.state == STATE_LIBRARY_MISSING
    assert "nvidia-ml-py" in status.message


def test_real_pynvml_on_this_machine_reports_a_state_not_a_crash():
    status = NvmlSource().open()
    # CI has no GPU; a developer's GPU machine has one: either way a known state
    assert status.state in ("ok", "nvml-missing", "driver-not-loaded", "no-devices")


def test_visible_only_follows_cuda_visible_devices(monkeypatch):
    fake = FakeNVML(gpus=4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    src, _ = open_source(fake, visible_only=True)
    assert [d.index for d in src.devices()] == [1, 3]
    src, _ = open_source(fake, visible_only=False)
    assert [d.index for d in src.devices()] == [0, 1, 2, 3]


def test_memory_falls_back_to_v1_on_old_drivers():
    fake = FakeNVML()
    real_info = fake.nvmlDeviceGetMemoryInfo

    def v1_only(h, version=None):
        if version is not None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        return real_info(h)

    fake.nvmlDeviceGetMemoryInfo = v1_only
    src, _ = open_source(fake)
    r = src.read_fast(0)
    assert r.mem_used == 480 * 2**20 and r.mem_reserved is None  # v1: reservation inside "used"


def test_throttle_reasons_in_words():
    assert decode_throttle_reasons(0) == []
    assert decode_throttle_reasons(0x4 | 0x40) == ["software power cap", "hardware thermal slowdown"]
    assert decode_throttle_reasons(0x1000) == ["other (0x1000)"]
    assert decode_throttle_reasons(None) is None


def make_sampler(fake, **kw):
    kw.setdefault("interval", 0.1)
    kw.setdefault("slow_interval", 0.1)
    sampler = Sampler(NvmlSource(nvml=fake), **kw)
    assert sampler.open().ok
    return sampler


def test_gpu_lost_mid_run_is_marked_and_the_others_keep_reading():
    fake = FakeNVML(gpus=2)
    sampler = make_sampler(fake)
    try:
        snap = sampler.tick()
        assert [g.state for g in snap.gpus] == ["ok", "ok"]
        fake.lost.add(1)
        snap = sampler.tick()
        assert [g.state for g in snap.gpus] == ["ok", "lost"]
        assert "bus" in snap.gpus[1].error or "Lost" in snap.gpus[1].error
        assert snap.gpus[0].mem_total == 81559 * 2**20
        calls = fake.count("nvmlDeviceGetUtilizationRates")
        for _ in range(3):
            snap = sampler.tick()
        assert [g.state for g in snap.gpus] == ["ok", "lost"]
        # a lost GPU is not asked again every tick
        assert fake.count("nvmlDeviceGetUtilizationRates") == calls + 3
        assert sampler.health.errors == 1
    finally:
        sampler.stop()


def test_a_hung_call_does_not_stall_the_loop_or_the_other_gpus():
    fake = FakeNVML(gpus=2)
    sampler = make_sampler(fake, read_timeout=0.2)
    try:
        fake.block[1] = 3.0
        started = time.monotonic()
        snap = sampler.tick()
        took = time.monotonic() - started
        assert took < 1.0  # bounded by the deadline, not by the 3 s call
        assert snap.gpus[0].state == "ok"
        assert snap.gpus[1].state == "unresponsive"
        # the stuck call is not piled on: next ticks wait for it
        snap = sampler.tick()
        assert snap.gpus[1].state == "unresponsive"
        assert fake.count("nvmlDeviceGetUtilizationRates") == 3  # gpu0 twice, gpu1 once
        fake.block.clear()
        time.sleep(3.0)
        snap = sampler.tick()
        assert snap.gpus[1].state == "ok"  # it recovered once the call returned
    finally:
        sampler.stop()


def test_slow_fields_have_their_own_cadence():
    fake = FakeNVML()
    sampler = make_sampler(fake, interval=0.1, slow_interval=10.0)
    try:
        for _ in range(5):
            sampler.tick()
            time.sleep(0.02)
        # PCIe is two calls per slow read: one slow read in 5 fast ticks
        assert fake.count("nvmlDeviceGetPcieThroughput") == 2
        assert fake.count("nvmlDeviceGetUtilizationRates") == 5
        assert sampler.snapshot().gpus[0].pcie_tx_kbps == 1498
    finally:
        sampler.stop()


def test_process_memory_and_description():
    import os

    fake = FakeNVML()
    fake.processes[0] = [(os.getpid(), 512 * 2**20)]
    sampler = make_sampler(fake)
    try:
        [gpu] = sampler.tick().gpus
        [proc] = gpu.processes
        assert proc.pid == os.getpid() and proc.used == 512 * 2**20
        assert proc.name and "python" in proc.name.lower() or "pytest" in (proc.command or "")
        assert proc.user
        rows = sampler.history.process_series(0, os.getpid())
        assert rows is not None and rows[-1][1] == 512 * 2**20
    finally:
        sampler.stop()
