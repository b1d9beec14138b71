"""One way every subcommand reports a failure: ``jupyter-gpu-panel COMMAND: error: ...`` on stderr."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

#: Exit status for bad arguments or input files (argparse uses the same).
USAGE = 2


def fail(command: str, message: str, status: int = USAGE) -> int:
    print(f"jupyter-gpu-panel {command}: error: {message}", file=sys.stderr)
    return status


def note(command: str, message: str) -> None:
    print(f"jupyter-gpu-panel {command}: {message}", file=sys.stderr)


def os_error_text(err: OSError) -> str:
    """``[Errno 20] Not a directory: 'x'`` -> ``x: not a directory``."""
    where = err.filename if err.filename is not None else ""
    reason = (err.strerror or str(err)).lower()
    return f"{where}: {reason}" if where else reason


def unwritable(path: Path, makes_folders: bool = False) -> Optional[str]:
    """Why a new file cannot be written at ``path`` (its folder is missing or a file), or None.

    ``makes_folders``: the caller creates missing folders, so only a file in the way counts."""
    parent = path.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                return f"{path}: {folder} is a file, not a folder"
            if folder == parent and not os.access(folder, os.W_OK):
                return f"{path}: cannot write in {folder}"
            if folder != parent and not makes_folders:
                # named here: a later write would name whichever file it tried first
                return f"{path}: the folder {parent} does not exist"
            return None
    return None
