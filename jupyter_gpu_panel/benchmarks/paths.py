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


def candidate_names(filename: str) -> list[str]:
    """foo.ipynb, foo-1.ipynb, foo-2.ipynb, ... in the order they are tried."""
    stem, ext = posixpath.splitext(filename)
    return [filename] + [f"{stem}-{i}{ext}" for i in range(1, MAX_SUFFIX)]


async def first_free(directory: str, filename: str, exists: Callable[[str], Awaitable[bool]]) -> Optional[str]:
    """First candidate name in `directory` for which `exists` is False, or None."""
    for name in candidate_names(filename):
        path = f"{directory}/{name}" if directory else name
        if not await exists(path):
            return path
    return None


def results_name(notebook_name: str) -> str:
    """The results file that sits beside a notebook: foo.ipynb -> foo.results.json."""
    stem = notebook_name[: -len(".ipynb")] if notebook_name.endswith(".ipynb") else notebook_name
    return f"{stem}.results.json"
