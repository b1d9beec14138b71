"""``jupyter-gpu-panel`` (also ``jupyter gpu-panel``): the command line.

Each subcommand lives beside the code it drives and registers itself through an
``add_parser(subparsers)`` function, so this module stays a thin dispatcher.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Optional

#: module that owns each subcommand; imported lazily so ``--help`` stays fast.
SUBCOMMANDS: dict[str, str] = {
    "snapshot": "jupyter_gpu_panel.cli.monitor",
    "watch": "jupyter_gpu_panel.cli.monitor",
    "record": "jupyter_gpu_panel.cli.monitor",
    "leaks": "jupyter_gpu_panel.cli.leaks",
    "benchmark": "jupyter_gpu_panel.cli.benchmark",
}


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The full parser, or (``only``) one with just that subcommand's module loaded."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="jupyter-gpu-panel",
        description="GPU metrics, leak detection and benchmark notebooks for Jupyter.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    seen: set[str] = set()
    modules = [SUBCOMMANDS[only]] if only in SUBCOMMANDS else list(SUBCOMMANDS.values())
    for module_name in modules:
        if module_name in seen:
            continue
        seen.add(module_name)
        importlib.import_module(module_name).add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
