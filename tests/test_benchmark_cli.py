"""``jupyter-gpu-panel benchmark``: the stable --list/--template contract."""

import json

import nbformat
import pytest

from jupyter_gpu_panel.benchmarks.paths import results_name
from jupyter_gpu_panel.cli import main


def test_list_json_contract(capsys):
    assert main(["benchmark", "--list", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [sorted(t) for t in items] == [["description", "name", "title"]] * 3
    assert {t["name"] for t in items} == {"gpu-health-check", "gpu-benchmark", "gpu-class-lab"}


def test_list_text(capsys):
    assert main(["benchmark", "--list"]) == 0
    assert "gpu-class-lab" in capsys.readouterr().out


def test_template_into_folder_then_refuses_to_overwrite(tmp_path, capsys):
    assert main(["benchmark", "--template", "gpu-benchmark", "--out", str(tmp_path)]) == 0
    path = tmp_path / "gpu-benchmark.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert "results_json = 'gpu-benchmark.results.json'" in nb.cells[2].source
    before = path.read_bytes()
    assert main(["benchmark", "--template", "gpu-benchmark", "--out", str(path)]) == 2  # as every refusal
    assert "exists" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert main(["benchmark", "--template", "gpu-class-lab", "--out", str(path), "--force"]) == 0
    assert nbformat.read(path, as_version=4).metadata.jupyter_gpu_panel.template == "gpu-class-lab"


def test_params_and_bad_input(tmp_path, capsys):
    out = tmp_path / "lab" / "mine"
    assert (
        main(
            [
                "benchmark",
                "--template",
                "gpu-class-lab",
                "--out",
                str(out),
                "-p",
                "student=Ada",
                "-p",
                "matmul_sizes=[64, 128]",
            ]
        )
        == 0
    )
    nb = nbformat.read(tmp_path / "lab" / "mine.ipynb", as_version=4)
    injected = nb.cells[3]
    assert "injected-parameters" in injected.metadata.tags
    assert "student = 'Ada'" in injected.source and "matmul_sizes = [64, 128]" in injected.source
    assert main(["benchmark", "--template", "nope", "--out", str(tmp_path / "x.ipynb")]) == 2
    assert main(["benchmark", "--template", "gpu-benchmark", "--out", str(tmp_path / "y.ipynb"), "-p", "bogus=1"]) == 2
    assert main(["benchmark", "--template", "gpu-benchmark"]) == 2
    assert not (tmp_path / "x.ipynb").exists() and not (tmp_path / "y.ipynb").exists()
    with pytest.raises(SystemExit):
        main(["benchmark", "--template", "gpu-benchmark", "--out", "z.ipynb", "-p", "not-a-name"])


def test_execute_in_place_saves_outputs_and_results(tmp_path, capsys):
    path = tmp_path / "check.ipynb"
    assert (
        main(
            [
                "benchmark",
                "--template",
                "gpu-health-check",
                "--out",
                str(path),
                "--execute",
                "-p",
                "matmul_size=64",
                "-p",
                "cpu_matmul_size=64",
            ]
        )
        == 0
    )
    nb = nbformat.read(path, as_version=4)
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
    assert any(o.get("name") == "stdout" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    # no stray Out[] of a cell whose last expression returns a path (save_results() ends sections)
    assert "PosixPath(" not in json.dumps([c.outputs for c in nb.cells if c.cell_type == "code"])
    assert not any(o.output_type == "execute_result" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    res = json.loads((tmp_path / results_name("check.ipynb")).read_text())
    assert res["errors"] == [] and res["gpu_vs_cpu"]["cpu"]["n"] == 64
    # the summary shows the CPU's small TFLOP/s with the digits it needs, not "0.0"
    cpu = res["gpu_vs_cpu"]["cpu"]["tflops"]
    shown = "".join(
        o.get("data", {}).get("text/markdown", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    row = next(line for line in shown.splitlines() if line.startswith("| fp32 matmul on the CPU"))
    assert row.split("|")[2].strip() == f"{cpu:.3g}", row


def test_a_mistyped_parameter_is_refused(tmp_path, capsys):
    """``-p quick=Tru e`` would reach the notebook as the truthy string 'Tru e'."""
    for param in ("quick=Tru e", "quick=Flase", "repeats=ten"):
        out = tmp_path / "p.ipynb"
        assert main(["benchmark", "--template", "gpu-benchmark", "--out", str(out), "-p", param]) == 2
        assert not out.exists()
        err = capsys.readouterr().err
        assert err.startswith("jupyter-gpu-panel benchmark: error: parameter ") and "must be" in err


def test_out_paths_that_cannot_be_written_are_clear_errors(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for out in ("/proc/x.ipynb", str(blocker / "x.ipynb")):
        assert main(["benchmark", "--template", "gpu-benchmark", "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.startswith("jupyter-gpu-panel benchmark: error: ") and "Traceback" not in err
