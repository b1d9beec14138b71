"""Benchmark notebook templates: structure, and end-to-end execution on the CPU (nbclient)."""

import ast
import json
import math
import os
import subprocess
import sys
import time

import nbformat
import pytest

from jupyter_gpu_panel.benchmarks import TEMPLATES, build_notebook, list_templates
from jupyter_gpu_panel.benchmarks.notebook import dist_script
from jupyter_gpu_panel.probe.torch_install import torch_install_command

# what a handed-out notebook may import: torch, the optional nicety packages, and the standard library
ALLOWED_IMPORTS = {"torch", "matplotlib", "tqdm", "IPython", "ipywidgets"} | set(sys.stdlib_module_names)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_three_templates_with_descriptions():
    items = list_templates()
    assert {t["name"] for t in items} == {"gpu-health-check", "gpu-benchmark", "gpu-class-lab"}
    for t in items:
        assert set(t) == {"name", "title", "description"} and t["title"] and len(t["description"]) > 40


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_notebook_is_valid_self_contained_and_parameterised(name):
    nb = build_notebook(name, results_json="x.results.json")
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    params = [c for c in code_cells(nb) if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assert "results_json = 'x.results.json'" in params[0].source
    imported = set()
    for c in code_cells(nb):
        tree = ast.parse(c.source)  # every cell is valid Python
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS
    assert "jupyter_gpu_panel" not in "".join(c.source for c in code_cells(nb))


def test_benchmark_teaches_the_method_and_pitfalls():
    text = "\n".join(c.source for c in build_notebook("gpu-benchmark").cells)
    for phrase in (
        "CUDA events",
        "Warm-up",
        "Median",
        "L2",
        "allow_tf32",
        "synchronize",
        "zeros",
        "busbw = algbw x 2(n-1)/n",
        "throughput(N) / (N x throughput(1))",
        "compute capability 8.0",
        "is_bf16_supported",
        "SM clock",
        "torch.compile",
        "largest batch",
    ):
        assert phrase.lower() in text.lower(), phrase


def test_overrides_are_injected_after_the_parameters_cell():
    nb = build_notebook("gpu-benchmark", overrides={"quick": True, "matmul_sizes": [64]})
    cells = code_cells(nb)
    assert "parameters" in cells[0].metadata.tags
    assert "injected-parameters" in cells[1].metadata.tags
    assert "quick = True" in cells[1].source and "matmul_sizes = [64]" in cells[1].source
    with pytest.raises(KeyError):
        build_notebook("gpu-benchmark", overrides={"no_such_param": 1})


def test_dist_script_is_one_valid_program():
    src = dist_script()
    tree = ast.parse(src)
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert {"SmallNet", "synthetic_batch", "main"} <= names
    nb_src = "\n".join(c.source for c in code_cells(build_notebook("gpu-benchmark")))
    assert "DIST_SCRIPT = r'''" in nb_src


def _execute(name, tmp_path, overrides=None):
    from nbclient import NotebookClient

    nb = build_notebook(name, results_json=f"{name}.results.json", overrides=overrides)
    t = time.perf_counter()
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    wall = time.perf_counter() - t
    nbformat.write(nb, tmp_path / f"{name}.ipynb")
    results = json.loads((tmp_path / f"{name}.results.json").read_text())
    outputs = "\n".join(o.get("text", "") + json.dumps(o.get("data", {})) for c in code_cells(nb) for o in c.outputs)
    return results, outputs, wall


def _finite_positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


# Default parameters: on a machine without a GPU they pick the tiny CPU preset; this is the promise
# "runs to the end in under 2 minutes without a GPU".
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_executes_end_to_end_on_cpu(name, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.fail("these tests exercise the no-GPU path and must run on a machine without a GPU")
    results, outputs, wall = _execute(name, tmp_path)
    assert wall < 120
    assert results["errors"] == []
    assert "PosixPath(" not in outputs  # no stray Out[] of a section ending in save_results()
    assert results["template"] == name
    assert results["parameters"]["preset"] == "cpu"
    dev = results["device"]
    assert dev["has_gpu"] is False and dev["n_gpus"] == 0
    assert dev["no_gpu_reason"] and "NO GPU FOUND" in outputs and dev["no_gpu_reason"] in outputs
    env = results["environment"]
    assert env["torch"] == torch.__version__ and env["python"] == sys.version.split()[0]
    assert env["tf32_defaults"]["cudnn.allow_tf32"] is True
    assert results["summary"], "the summary table is empty"
    for row in results["summary"]:
        assert _finite_positive(row["value"]), row
    assert 0 < results["elapsed_s"] < 120
    if name == "gpu-health-check":
        assert {c["check"] for c in results["checks"]} >= {"torch imports", "torch.cuda.is_available()"}
        assert any(c["status"] == "FAIL" and c["fix"] for c in results["checks"])
        cpu = results["gpu_vs_cpu"]["cpu"]
        assert _finite_positive(cpu["tflops"]) and cpu["tflops"] < 50  # a CPU, not a datacenter GPU
    else:
        p = results["pitfalls"]
        assert all(_finite_positive(p[k]) for k in ("cold_s", "no_sync_s", "fp32_s", "random_s", "zeros_s"))
        sizes = results["parameters"]["matmul_sizes"]
        got = {(m["dtype"], m["n"]) for m in results["matmul"]}
        assert got == {(d, n) for d in ("fp32", "bf16") for n in sizes}
        for m in results["matmul"]:
            assert _finite_positive(m["tflops"]) and m["tflops"] < 50 and m["input_sets"] >= 3
        assert _finite_positive(results["copy"]["GBps"]) and results["copy"]["GBps"] < 5000
        assert results["host_device"] is None
    if name == "gpu-benchmark":
        modes = {r["mode"]: r for r in results["training"]}
        assert set(modes) == {"eager fp32", "eager AMP bfloat16"}
        assert all(_finite_positive(r["samples_per_s"]) for r in modes.values())
        assert results["multi_gpu"] == {"skipped": "0 GPU(s)"}
        assert "image/png" in outputs  # the plot
    if name == "gpu-class-lab":
        assert results["handin"]["student"].startswith("(write your name")
        assert "Exercises" in "\n".join(c.source for c in build_notebook(name).cells)


def test_dist_script_runs_under_torchrun_on_cpu(tmp_path):
    """The multi-GPU helper, with gloo on the CPU: all-reduce sums are right, busbw uses nccl-tests' formula."""
    script = tmp_path / "multi_gpu_bench.py"
    script.write_text(dist_script())
    out = tmp_path / "result.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def launch() -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node=2",
                str(script),
                "--out",
                str(out),
                "--backend",
                "gloo",
                "--max-bytes",
                str(1 << 20),
                "--min-bytes",
                str(1 << 16),
                "--iters",
                "3",
                "--warmup",
                "1",
                "--train-batch",
                "4",
                "--train-image",
                "16",
                "--train-width",
                "4",
                "--train-steps",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
        )

    proc = launch()
    for _ in range(2):
        if proc.returncode == 0 or "SIGABRT" not in proc.stderr:
            break
        # gloo aborts a rank whose peer misses a deadline on a machine busy elsewhere (seen
        # twice in CI's shape, each time while other heavy work ran): launch again, then judge
        proc = launch()
    assert proc.returncode == 0, proc.stderr[:3000] + "\n...\n" + proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["world_size"] == 2 and res["correct"] is True
    assert [r["bytes"] for r in res["allreduce"]] == [1 << 16, 1 << 18, 1 << 20]
    for r in res["allreduce"]:
        assert r["algbw_GBps"] == pytest.approx(r["bytes"] / (r["time_us"] / 1e6) / 1e9)
        assert r["busbw_GBps"] == pytest.approx(r["algbw_GBps"] * 2 * (2 - 1) / 2)
    assert _finite_positive(res["training"]["samples_per_s"])


def test_without_torch_the_first_cell_says_exactly_what_to_install():
    """A kernel without torch stops at the setup cell with the command for this machine (no NVIDIA
    driver here: the CPU wheel), not a bare ModuleNotFoundError."""
    nb = build_notebook("gpu-health-check")
    cells = [c.source for c in code_cells(nb)]
    at = next(i for i, src in enumerate(cells) if "import torch" in src)
    # a Python of its own, where torch cannot be imported (never this test process's torch), running
    # the cells up to the setup cell (the hidden one before it holds torch_install_command)
    prelude = "import sys\nsys.modules['torch'] = None  # this kernel has no torch\n"
    code = prelude + "\n".join(cells[: at + 1])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0, proc.stdout
    text = proc.stderr
    assert "needs PyTorch" in text and "restart the kernel" in text
    how, why = torch_install_command()  # the panel's and the CLI's command, the same words
    assert f"    {how}   # {why}\n" in text, text
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in text
