"""Where a new benchmark notebook goes: a client's path checked, and a free name found.

Pure (the existence check is passed in), so the REST handler and the CLI share it.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Awaitable
from typing import Any, Callable, Optional

#: free-name attempts before giving up (a folder with 1000 copies is a mistake, not a use case)
MAX_SUFFIX = 1000
_DRIVE = re.compile(r"^[A-Za-z]:")
#: Control (Cc: C0, DEL, C1), format (Cf: bidi overrides such as U+202E, zero-width marks) and
#: line/paragraph separators (Zl, Zp: U+2028, U+2029): they make a name read differently than it is.
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
#: Most file systems cap a name at 255 bytes.
MAX_NAME_BYTES = 255
#: A notebook's name leaves room for its checkpoint's, ``<stem>-checkpoint.ipynb`` (Jupyter's
#: file checkpoints, written at the first save): a 250-byte notebook failed to save with a 500.
MAX_NOTEBOOK_BYTES = MAX_NAME_BYTES - len("-checkpoint")
MAX_DEPTH = 64


def normalize_api_path(path: Any) -> str:
    """Validate a client-supplied path relative to the server root; return it without leading/trailing '/'.

    Rejects (ValueError) anything that could leave the root or be read differently by another contents
    backend: absolute paths, Windows drives, backslashes, '..' segments, control and bidi characters,
    names over 255 bytes.
    """
    if path is None:
        return ""
    if not isinstance(path, str):
        raise ValueError("path must be a string")
    if path.startswith(("/", "~")) or _DRIVE.match(path):
        raise ValueError("path must be relative to the server root")
    bad = next((ch for ch in path if ch == "\\" or unicodedata.category(ch) in _BAD_CATEGORIES), None)
    if bad is not None:
        raise ValueError(f"path contains a character that is not allowed (U+{ord(bad):04X})")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ValueError("path must not contain '..'")
    if any(len(p.encode("utf-8")) > MAX_NAME_BYTES for p in parts):
        raise ValueError(f"a file or folder name is longer than {MAX_NAME_BYTES} bytes")
    if len(parts) > MAX_DEPTH:
        raise ValueError(f"path is deeper than {MAX_DEPTH} folders")
    return "/".join(parts)


def check_notebook_name(filename: str) -> None:
    """ValueError naming the limit when a notebook's name leaves no room for its checkpoint's."""
    if len(filename.encode("utf-8")) > MAX_NOTEBOOK_BYTES:
        raise ValueError(
            f"a notebook name is longer than {MAX_NOTEBOOK_BYTES} bytes (the file system's {MAX_NAME_BYTES}, "
            "less room for Jupyter's <name>-checkpoint.ipynb)"
        )


def fit_name(stem: str, suffix: str, limit: int = MAX_NAME_BYTES) -> str:
    """``stem + suffix``, the stem shortened (never mid-character) so that the name fits in
    ``limit`` bytes: an existing notebook of 255 bytes made its ``-1`` copy 257 bytes, which no
    file system takes."""
    room = limit - len(suffix.encode("utf-8"))
    return stem.encode("utf-8")[: max(0, room)].decode("utf-8", "ignore") + suffix


def candidate_names(filename: str) -> list[str]:
    """foo.ipynb, foo-1.ipynb, foo-2.ipynb, ... in the order they are tried; a long stem is
    shortened so that each numbered name fits ``MAX_NOTEBOOK_BYTES``."""
    stem, ext = posixpath.splitext(filename)
    return [filename] + [fit_name(stem, f"-{i}{ext}", MAX_NOTEBOOK_BYTES) for i in range(1, MAX_SUFFIX)]


async def first_free(directory: str, filename: str, exists: Callable[[str], Awaitable[bool]]) -> Optional[str]:
    """First candidate name in `directory` for which `exists` is False, or None."""
    for name in candidate_names(filename):
        path = f"{directory}/{name}" if directory else name
        if not await exists(path):
            return path
    return None


def results_name(notebook_name: str) -> str:
    """The results file that sits beside a notebook: foo.ipynb -> foo.results.json (a long stem
    shortened so that the name fits, as for a notebook's free name)."""
    stem = notebook_name[: -len(".ipynb")] if notebook_name.endswith(".ipynb") else notebook_name
    return fit_name(stem, ".results.json")
