"""jupyter-gpu-panel: live GPU metrics, kernel attribution, leak detection and
benchmark notebooks for Jupyter.

Importing this package is cheap and needs neither a GPU nor torch.
"""

from __future__ import annotations

from typing import Any

try:
    from ._version import __version__
except ImportError:  # a source checkout that was never built
    __version__ = "0.0.0.dev0"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-gpu-panel"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import GPUPanel

    return [{"module": "jupyter_gpu_panel", "app": GPUPanel}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_gpu_panel``: start the in-kernel memory probe."""
    from .probe import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .probe import unload_ipython_extension as _unload

    _unload(ipython)
