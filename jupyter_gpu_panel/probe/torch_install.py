"""The one command that installs torch into this Python on this machine.

Said wherever torch is missing: a benchmark notebook's setup cell (which embeds this function's
source, so the notebook stays self-contained), *Track memory* and ``%load_ext jupyter_gpu_panel``
(the probe's reason), and ``jupyter-gpu-panel benchmark --execute``. A plain ``pip install torch``
pulls the multi-GB CUDA build even where there is no NVIDIA driver, hence the CPU index there.
"""

from __future__ import annotations


def torch_install_command() -> tuple[str, str]:
    """(the pip command for this Python, which build it installs and why)."""
    # imports inside: the benchmark notebooks copy this function's source alone
    import os
    import shlex
    import shutil
    import sys

    python = shlex.quote(sys.executable)
    if shutil.which("nvidia-smi") is not None or os.path.exists("/proc/driver/nvidia/version"):
        return f"{python} -m pip install torch", "the CUDA build, for this machine's NVIDIA driver"
    return (
        f"{python} -m pip install torch --index-url https://download.pytorch.org/whl/cpu",
        "the CPU build: no NVIDIA driver here",
    )
