"""Generate a benchmark template and execute it headless with nbclient; print wall time.

usage: run_notebook.py TEMPLATE OUT_DIR [NAME=VALUE ...]   (VALUE is a Python literal)
"""

import ast
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from jupyter_gpu_panel.benchmarks import build_notebook

template, out_dir = sys.argv[1], Path(sys.argv[2])
overrides = {k: ast.literal_eval(v) for k, v in (a.split("=", 1) for a in sys.argv[3:])}
stem = template + ("-quick" if overrides.get("quick") else "")
out_dir.mkdir(parents=True, exist_ok=True)
nb = build_notebook(template, results_json=f"{stem}.results.json", overrides=overrides or None)
t0 = time.perf_counter()
try:
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(out_dir)}}).execute()
finally:
    wall = time.perf_counter() - t0
    nbformat.write(nb, out_dir / f"{stem}.ipynb")
    print(f"{stem}: executed in {wall:.1f} s (kernel start included)", flush=True)
    (out_dir / f"{stem}.wall_s").write_text(f"{wall:.1f}\n")
