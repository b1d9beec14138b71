"""``jupyter-gpu-panel benchmark``: list the notebook templates, or write (and optionally run) one.

Stable contract (external checks use it):
  jupyter-gpu-panel benchmark --list [--json]      JSON: [{"name", "title", "description"}, ...]
  jupyter-gpu-panel benchmark --template NAME --out PATH [--execute]
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Optional

import nbformat

from ..benchmarks.notebook import build_notebook
from ..benchmarks.paths import results_name
from ..benchmarks.templates import TEMPLATES, list_templates
from .errors import fail, os_error_text, unwritable

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _parse_param(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value  # a bare word is a string, as in papermill's -p


def execute_notebook(path: Path, kernel_name: str = "python3", timeout: Optional[int] = 3600) -> None:
    """Run a notebook headless in its own folder, saving outputs into it even when a cell fails."""
    from nbclient import NotebookClient  # optional dependency (the 'bench' extra)

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=kernel_name, resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute()
    finally:
        nbformat.write(nb, path)


def _torch_install_line(exc: Exception) -> Optional[str]:
    """The install command the setup cell printed when the kernel has no torch (its own Python's,
    from ``torch_install_command`` run in the kernel), or None for any other failure."""
    if getattr(exc, "ename", None) != "SystemExit":
        return None
    lines = str(getattr(exc, "evalue", "")).splitlines()
    return next((ln.strip() for ln in lines if " -m pip install torch" in ln), None)


def run(args: argparse.Namespace) -> int:
    if args.list:
        items = list_templates()
        if args.json:
            print(json.dumps(items, indent=1))
        else:
            for t in items:
                print(f"{t['name']:18} {t['title']}\n{'':18} {t['description']}")
        return 0
    if not args.template or not args.out:
        return fail("benchmark", "give --list, or --template NAME --out PATH")
    if args.template not in TEMPLATES:
        return fail("benchmark", f"unknown template {args.template!r}; choose from {', '.join(TEMPLATES)}")
    out = Path(args.out)
    if out.is_dir() or args.out.endswith(("/", "\\")):
        out = out / TEMPLATES[args.template].filename
    if out.suffix != ".ipynb":
        out = out.with_name(out.name + ".ipynb")
    if out.exists() and not args.force:
        return fail("benchmark", f"{out} exists (use --force to replace it)")
    problem = unwritable(out, makes_folders=True)
    if problem:
        return fail("benchmark", problem)
    overrides = dict(args.param or [])
    try:
        nb = build_notebook(args.template, results_json=results_name(out.name), overrides=overrides or None)
    except (KeyError, ValueError) as exc:
        return fail("benchmark", str(exc.args[0]))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
    except OSError as err:
        return fail("benchmark", os_error_text(err))
    print(f"wrote {out}")
    if args.execute:
        started = time.perf_counter()
        try:
            execute_notebook(out, kernel_name=args.kernel, timeout=args.timeout or None)
        except Exception as exc:  # noqa: BLE001 - nbclient raises many kinds: outputs are saved, say where it broke
            install = _torch_install_line(exc)
            if install:
                return fail(
                    "benchmark",
                    f"the {args.kernel} kernel cannot import torch; install it into that kernel's environment:\n"
                    f"    {install}\nthen run this command again with --force",
                )
            text = ANSI.sub("", str(exc)).strip()  # nbclient's error text carries terminal colours
            last = text.splitlines()[-1] if text else ""
            return fail(
                "benchmark",
                f"execution failed after {time.perf_counter() - started:.0f} s: {type(exc).__name__}: {last}",
                status=1,
            )
        print(f"executed in {time.perf_counter() - started:.0f} s; results in {out.parent / results_name(out.name)}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "benchmark",
        help="create (and run) a GPU benchmark notebook",
        description="Create a GPU health-check, benchmark or class-lab notebook.",
    )
    p.add_argument("--list", action="store_true", help="list the templates")
    p.add_argument("--json", action="store_true", help="with --list: JSON output")
    p.add_argument("--template", metavar="NAME", help="template name (see --list)")
    p.add_argument("--out", metavar="PATH", help="notebook file, or a folder for the template's default name")
    p.add_argument("--execute", action="store_true", help="run it headless in place, saving outputs")
    p.add_argument(
        "-p",
        "--param",
        action="append",
        type=_parse_param,
        metavar="NAME=VALUE",
        help="override a parameter (Python literal), e.g. -p quick=True -p 'matmul_sizes=[1024]'",
    )
    p.add_argument("--force", action="store_true", help="replace an existing notebook")
    p.add_argument("--kernel", default="python3", help="kernel for --execute (default: python3)")
    p.add_argument("--timeout", type=int, default=3600, help="per-cell timeout in seconds for --execute (0: none)")
    p.set_defaults(func=run)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    """Stand-alone entry (``python -m jupyter_gpu_panel.cli.benchmark``), same options."""
    parser = argparse.ArgumentParser(prog="jupyter-gpu-panel")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["benchmark", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
