"""Friction a new user met (issue 16): each refusal is one short line that says what to do, exit 2.

No NVML is the fake ``pynvml`` (tests/fake_nvml.py) failing as the library does, or no module at
all; no torch is a real Python whose ``import torch`` fails (a meta-path finder refuses it), in a
kernel or a plain interpreter, in this venv that has torch.
"""

import json
import subprocess
import sys

import pynvml
import pytest

from jupyter_gpu_panel.cli import main
from jupyter_gpu_panel.probe.torch_install import torch_install_command

#: Prepended to a Python's code: from here on ``import torch`` fails as in an environment without it.
NO_TORCH = """\
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoTorch())
"""

NO_TORCH_KERNEL = {
    "argv": [
        sys.executable,
        "-c",
        NO_TORCH + "from ipykernel.kernelapp import launch_new_instance\nlaunch_new_instance()\n",
        "-f",
        "{connection_file}",
    ],
    "display_name": "Python 3 (no torch)",
    "language": "python",
}


def no_torch_kernelspec(data_dir):
    spec = data_dir / "kernels" / "notorch"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps(NO_TORCH_KERNEL))
    return "notorch"


def refusal(capsys, command):
    """The one stderr line of a refusal, after checking the shape every refusal has."""
    out = capsys.readouterr()
    assert out.out == "", out.out
    err = out.err
    assert err.startswith(f"jupyter-gpu-panel {command}: error: "), err
    assert err.count("error:") == 1 and "Traceback" not in err, err
    assert err.count("\n") == 1, err
    return err.strip()


# -- no NVML ---------------------------------------------------------------------------------------
def _no_module():
    return None  # sys.modules["pynvml"] = None: `import pynvml` raises ImportError


def _library_missing():
    from fake_nvml import FakeNVML

    return FakeNVML(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)


def _driver_not_loaded():
    from fake_nvml import FakeNVML

    return FakeNVML(init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)


@pytest.mark.parametrize(
    "nvml, state",
    [(_no_module, "nvml-missing"), (_library_missing, "nvml-missing"), (_driver_not_loaded, "driver-not-loaded")],
)
@pytest.mark.parametrize(
    "argv", [["snapshot"], ["watch", "--count", "1"], ["record", "--seconds", "1", "--out", "{tmp}/r.nvml.jsonl"]]
)
def test_without_nvml_every_reading_command_says_why_and_offers_replay(
    nvml, state, argv, monkeypatch, capsys, tmp_path
):
    monkeypatch.setitem(sys.modules, "pynvml", nvml())
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    line = refusal(capsys, argv[0])
    assert line.startswith(f"jupyter-gpu-panel {argv[0]}: error: {state}: ")
    assert line.endswith("try `--source replay`"), line
    assert list(tmp_path.iterdir()) == []  # record wrote nothing


# -- arguments ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["watch", "--interval", "-1"],
        ["watch", "--interval", "0"],
        ["watch", "--interval", "nan"],
        ["record", "--interval", "-1", "--seconds", "1", "--out", "{tmp}/r.nvml.jsonl"],
        ["record", "--interval", "0", "--seconds", "1", "--out", "{tmp}/r.nvml.jsonl"],
    ],
)
def test_an_interval_that_is_not_positive_is_refused(argv, capsys, tmp_path):
    argv = [a.format(tmp=tmp_path) for a in argv] + ["--source", "replay", *(["--count", "1"] * (argv[0] == "watch"))]
    assert main(argv) == 2
    line = refusal(capsys, argv[0])
    assert "--interval must be at least 0.1 seconds, got " in line
    assert list(tmp_path.iterdir()) == []


def test_a_negative_count_is_refused(capsys):
    assert main(["watch", "--source", "replay", "--count", "-1"]) == 2
    assert "--count must be 0" in refusal(capsys, "watch")


def test_replay_file_errors_say_error_once(capsys, tmp_path):
    empty = tmp_path / "empty.nvml.jsonl"
    empty.write_text("")
    for path, words in ((tmp_path / "nope.nvml.jsonl", "No such file"), (tmp_path, "Is a directory"), (empty, "")):
        assert main(["snapshot", "--source", "replay", "--replay-file", str(path)]) == 2
        line = refusal(capsys, "snapshot")
        assert words in line and "--source replay" not in line  # replay is already the source


def test_recording_into_a_missing_folder_names_that_folder(capsys, tmp_path):
    out = tmp_path / "missing" / "r.nvml.jsonl"
    assert main(["record", "--source", "replay", "--seconds", "1", "--out", str(out)]) == 2
    line = refusal(capsys, "record")
    assert line.endswith(f"{out}: the folder {out.parent} does not exist"), line
    assert "device.json" not in line
    assert list(tmp_path.iterdir()) == []


# -- no torch ----------------------------------------------------------------------------------------
def test_the_install_command_is_for_this_python_and_machine():
    how, why = torch_install_command()
    assert how.startswith(f"{sys.executable} -m pip install torch")
    cpu = "--index-url https://download.pytorch.org/whl/cpu"
    assert (cpu in how) == ("CPU" in why)


def test_load_ext_without_torch_gives_the_install_command():
    code = NO_TORCH + (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'jupyter_gpu_panel')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    how, why = torch_install_command()
    assert "jupyter-gpu-panel: torch is not installed" in proc.stderr
    assert f"Install it with: {how}   ({why})" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


async def test_track_memory_without_torch_gives_the_install_command(jp_fetch, jp_data_dir):
    """*Track memory* is ``POST kernels/{id}/probe``: a real kernel without torch answers."""
    name = no_torch_kernelspec(jp_data_dir)
    resp = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps({"path": "nt.ipynb", "type": "notebook", "name": "nt.ipynb", "kernel": {"name": name}}),
    )
    session = json.loads(resp.body)
    kid = session["kernel"]["id"]
    try:
        resp = await jp_fetch("api", "gpu-panel", "kernels", kid, "probe", method="POST", body="{}", request_timeout=60)
        doc = json.loads(resp.body)
        how, why = torch_install_command()
        assert doc["ok"] is False and doc["message"].startswith("jupyter-gpu-panel: torch is not installed")
        assert doc["message"].endswith(f"Install it with: {how}   ({why})"), doc["message"]
    finally:
        await jp_fetch("api", "sessions", session["id"], method="DELETE")


def test_benchmark_execute_without_torch_gives_the_install_command(tmp_path, monkeypatch, capsys):
    share = tmp_path / "share"
    monkeypatch.setenv("JUPYTER_PATH", str(share))
    kernel = no_torch_kernelspec(share)
    out = tmp_path / "check.ipynb"
    argv = ["benchmark", "--template", "gpu-health-check", "--out", str(out), "--execute", "--kernel", kernel]
    assert main(argv) == 2
    err = capsys.readouterr().err
    how, why = torch_install_command()  # this test's Python is the kernel's: the same command
    assert err.startswith(f"jupyter-gpu-panel benchmark: error: the {kernel} kernel cannot import torch")
    assert f"\n    {how}   # {why}\n" in err, err
    assert "CellExecutionError" not in err and "restart the kernel" not in err
    assert out.exists()  # written before it ran: the message says --force
    assert "--force" in err
