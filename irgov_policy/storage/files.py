"""State files are the owner's alone: databases, their WAL and SHM files, keys and their folders.

A SQLite database is created empty with mode 0600 before SQLite opens it, because SQLite gives
its `-wal` and `-shm` files the mode of the database file. Folders created on the way are 0700.
Existing files and folders keep their mode: an operator may have chosen it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["FILE_MODE", "FOLDER_MODE", "make_private_file", "make_private_folder"]

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def make_private_folder(path: Path) -> None:
    """Create `path` and its missing parents owner-only (0700). Raises `OSError`."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode is narrowed by the umask, never widened


def make_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists, its folder owner-only if missing.
    Raises `OSError`."""
    make_private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)
