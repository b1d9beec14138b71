"""Reference peaks table and the pure formulas embedded in the benchmark notebooks."""

import inspect

import pytest

from jupyter_gpu_panel.benchmarks import build_notebook
from jupyter_gpu_panel.benchmarks.peaks import (
    EMBEDDED,
    allreduce_busbw,
    load_peaks,
    matmul_tflops,
    median,
    percent_of,
    reference_for,
    scaling_efficiency,
)

GB = 10**9


@pytest.mark.parametrize(
    "name, mem_gb, key",
    [
        ("NVIDIA H100 80GB HBM3", 85, "H100-SXM"),
        ("NVIDIA H100 PCIe", 85, "H100-PCIe"),
        ("NVIDIA H200", 150, "H200-SXM"),
        ("NVIDIA A100-SXM4-80GB", 85, "A100-80GB-SXM"),
        ("NVIDIA A100-SXM4-40GB", 42, "A100-40GB"),
        ("NVIDIA A100-PCIE-40GB", 42, "A100-40GB"),
        ("NVIDIA A100 80GB PCIe", 85, "A100-80GB-PCIe"),
        ("NVIDIA A10", 24, "A10"),
        ("NVIDIA L4", 24, "L4"),
        ("NVIDIA L40S", 48, "L40S"),
        ("Tesla T4", 16, "T4"),
        ("Tesla V100-SXM2-16GB", 16, "V100-SXM2"),
        ("Tesla V100-PCIE-32GB", 34, "V100-PCIe"),
        ("NVIDIA GeForce RTX 4090", 25, "RTX-4090"),
        ("NVIDIA GeForce RTX 3090", 25, "RTX-3090"),
    ],
)
def test_match_known_cards(name, mem_gb, key):
    row = reference_for(name, mem_gb * GB)
    assert row is not None and row["key"] == key


@pytest.mark.parametrize(
    "name",
    ["NVIDIA A10G", "NVIDIA H100 NVL", "NVIDIA GeForce RTX 3090 Ti", "NVIDIA L40", "AMD Instinct MI300X", "", None],
)
def test_unknown_cards_get_no_row(name):
    # a wrong row would print a wrong "% of peak": better no comparison than a false one
    assert reference_for(name, 80 * GB) is None


def test_every_row_is_sourced_and_plausible():
    rows = load_peaks()
    assert len({r["key"] for r in rows}) == len(rows)
    for r in rows:
        assert r["source"], r["key"]
        assert r["fp32"] > 0 and r["mem_bw_GBps"] > 0
        for k in ("tf32", "fp16", "bf16", "fp8"):
            assert r[k] is None or r[k] >= r["fp32"], (r["key"], k)
        if r["measured"]:
            assert r["measured_source"], r["key"]
            for k, v in r["measured"].items():
                base = r["mem_bw_GBps"] if k == "copy_GBps" else r[k.replace("_tflops", "")]
                # measured-achievable never exceeds the datasheet figure
                assert 0 < v <= base, (r["key"], k)


def test_h100_row_matches_the_shared_reference():
    r = reference_for("NVIDIA H100 80GB HBM3", 85 * GB)
    assert (r["fp32"], r["tf32"], r["bf16"], r["mem_bw_GBps"]) == (67.0, 494.5, 989.0, 3350)
    assert r["measured"]["bf16_tflops"] == 794.5


def test_busbw_follows_nccl_tests():
    # 1 GiB in 10 ms: algbw 107.4 GB/s; busbw = algbw * 2(n-1)/n
    alg = (1 << 30) / 0.01 / 1e9
    assert allreduce_busbw(1 << 30, 0.01, 2) == pytest.approx(alg)
    assert allreduce_busbw(1 << 30, 0.01, 8) == pytest.approx(alg * 1.75)
    assert allreduce_busbw(1 << 30, 0.01, 1) == 0
    with pytest.raises(ValueError):
        allreduce_busbw(1, 0, 2)


def test_scaling_efficiency_and_helpers():
    assert scaling_efficiency(1800.0, 1000.0, 2) == pytest.approx(0.9)
    assert scaling_efficiency(1.0, 0, 2) is None
    assert matmul_tflops(8192, 8192, 8192, 1.0) == pytest.approx(2 * 8192**3 / 1e12)
    assert median([3, 1, 2]) == 2 and median([4, 1, 3, 2]) == 2.5
    assert percent_of(50, 200) == 25 and percent_of(None, 3) is None and percent_of(3, None) is None
    with pytest.raises(ValueError):
        median([])


def test_notebooks_embed_the_tested_functions_verbatim():
    nb = build_notebook("gpu-benchmark")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for fn in EMBEDDED:
        assert inspect.getsource(fn) in code, fn.__name__
