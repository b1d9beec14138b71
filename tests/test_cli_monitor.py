"""``jupyter-gpu-panel snapshot / record / watch`` as a user runs them."""

import json
import shutil
import subprocess
import sys

from jupyter_gpu_panel.metrics.sources.base import version_fields
from jupyter_gpu_panel.metrics.sources.replay import ReplaySource, demo_trace_path, load_trace
from jupyter_gpu_panel.metrics.trace_format import sidecar_path

from conftest import TRACES

CLI = [sys.executable, "-m", "jupyter_gpu_panel"]


def run(*args, check=True):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=check)


def test_snapshot_table_from_replay():
    out = run("snapshot", "--source", "replay").stdout
    assert "NVIDIA H100 80GB HBM3" in out
    assert "/700 W" in out
    assert "recorded process" in out


def test_snapshot_json_from_replay_equals_the_trace():
    doc = json.loads(run("snapshot", "--source", "replay", "--json").stdout)
    assert doc["status"]["source"] == "replay"
    assert doc["devices"][0]["name"] == "NVIDIA H100 80GB HBM3"
    [gpu] = doc["gpus"]
    recorded = load_trace(TRACES / "h100" / "two_procs_one_leaks.nvml.jsonl")[0]
    assert any(gpu["mem_used"] == r["mem_used"] and gpu["temp_c"] == r["temp_c"] for r in recorded)


def test_snapshot_without_a_gpu_says_why_and_exits_2():
    proc = run("snapshot", check=False)
    # this machine has no NVIDIA driver (CI); on a GPU machine it prints the table
    if proc.returncode == 0:
        assert "GPU" in proc.stdout
    else:
        assert proc.returncode == 2
        said = proc.stdout + proc.stderr
        state = "nvml-missing" if "nvml-missing" in said else "driver-not-loaded"
        assert said.count(state) == 1, said  # said once, not twice
        assert proc.stderr.startswith("jupyter-gpu-panel snapshot: error: ")
        assert "Traceback" not in proc.stderr


def test_record_writes_a_trace_that_replays(tmp_path):
    out = tmp_path / "mine.nvml.jsonl"
    run("record", "--source", "replay", "--seconds", "0.6", "--interval", "0.1", "--out", str(out))
    samples = load_trace(out)[0]
    assert 3 <= len(samples) <= 8
    for rec in samples:
        assert set(rec) >= {
            "t",
            "mem_used",
            "mem_total",
            "util_gpu",
            "util_mem",
            "power_mw",
            "temp_c",
            "clock_sm",
            "procs",
        }
    side = json.loads((tmp_path / "mine.device.json").read_text())
    assert side["vendor"] == "nvidia" and side["nvml_version"]  # replayed H100: NVML's version kept
    # and the recording plays back through the replay source, name included
    doc = json.loads(run("snapshot", "--source", "replay", "--replay-file", str(out), "--json").stdout)
    assert doc["devices"][0]["name"] == "NVIDIA H100 80GB HBM3"
    assert doc["gpus"][0]["mem_used"] in {r["mem_used"] for r in samples}


def test_recording_says_its_vendor(tmp_path):
    """A source says whose GPUs it reads; the REST contract's nvml_version is NVML's only."""
    out = tmp_path / "amd.nvml.jsonl"
    shutil.copy(demo_trace_path(), out)
    side = json.loads(sidecar_path(demo_trace_path()).read_text())
    sidecar_path(out).write_text(json.dumps({**side, "vendor": "amd"}))
    src = ReplaySource(out)
    status = src.open()
    assert src.vendor == "amd" and status.library_version == side["nvml_version"]
    assert version_fields(status, src.vendor)["nvml_version"] is None
    src = ReplaySource()  # the bundled recording's sidecar names no vendor: it is NVML's
    status = src.open()
    assert src.vendor == "nvidia"
    assert version_fields(status, src.vendor)["nvml_version"] == status.library_version == side["nvml_version"]


def test_watch_refreshes(tmp_path):
    out = run("watch", "--source", "replay", "--interval", "0.1", "--count", "3").stdout
    assert out.count("NVIDIA H100 80GB HBM3") == 3


def test_bad_arguments_are_errors_not_tracebacks():
    proc = run("record", "--source", "replay", "--seconds", "0", "--out", "/tmp/x.jsonl", check=False)
    assert proc.returncode == 2 and "positive" in proc.stderr
    proc = run("snapshot", "--source", "bogus", check=False)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
