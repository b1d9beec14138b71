"""Reading and writing in the probe directory without trusting it.

The runtime directory is writable by any code the user runs, so a file there may be a FIFO
(an ``open()`` that never returns), a device, a symlink to somewhere else, another user's
file, or gigabytes long. Everything here opens with ``O_NOFOLLOW | O_NONBLOCK``, accepts
only regular files owned by this process's user, and reads at most a bounded number of bytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class UnsafeFile(OSError):
    """A path that is not a regular file of ours (or too large): refused, never read."""


def private_dir_problem(directory: Path) -> Optional[str]:
    """Why ``directory`` is not a private directory of this user (None when it is, or is absent)."""
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return f"{directory} is not a directory"
    if st.st_uid != os.getuid():
        return f"{directory} belongs to another user (uid {st.st_uid})"
    if st.st_mode & 0o077:
        return f"{directory} is readable or writable by others (mode {stat.S_IMODE(st.st_mode):o}, expected 700)"
    return None


def open_regular(path: Path) -> tuple[int, os.stat_result]:
    """A read-only descriptor on ``path`` if it is a regular file owned by us; UnsafeFile else."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as err:
        if err.errno in (getattr(os, "ELOOP", 40), getattr(os, "EMLINK", 31)):
            raise UnsafeFile(err.errno, "is a symbolic link", str(path)) from None
        raise
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = "is not a regular file"
    elif st.st_uid != os.getuid():
        problem = "belongs to another user"
    if problem:
        os.close(fd)
        raise UnsafeFile(0, problem, str(path))
    return fd, st


def read_small(path: Path, max_bytes: int) -> bytes:
    """The whole of a small regular file of ours; UnsafeFile when it is larger than ``max_bytes``."""
    fd, st = open_regular(path)
    try:
        if st.st_size > max_bytes:
            raise UnsafeFile(0, f"is larger than {max_bytes} bytes", str(path))
        return os.read(fd, max_bytes + 1)[:max_bytes]
    finally:
        os.close(fd)


def read_range(path: Path, offset: int, max_bytes: int) -> tuple[bytes, int, int]:
    """Up to ``max_bytes`` from ``offset`` of a regular file of ours: (data, file size, inode)."""
    fd, st = open_regular(path)
    try:
        if st.st_size <= offset:
            return b"", st.st_size, st.st_ino
        return os.pread(fd, min(max_bytes, st.st_size - offset), offset), st.st_size, st.st_ino
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes) -> None:
    """Replace ``path`` with a new private file (0600); a symlink there is removed, never followed."""
    try:
        os.unlink(path)  # unlinking a symlink removes the link, not its target
    except FileNotFoundError:
        pass
    fd = os.open(path, _CREATE_FLAGS, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
