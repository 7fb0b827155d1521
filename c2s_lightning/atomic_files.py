"""Files and folders written whole or not at all: built under a temporary name, then renamed.

A reader (or a rerun after a crash) sees the old file or the new one, never half of one. The
temporary name is in the same folder, so the final ``os.replace`` is a rename on one file system.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp's files are private (0600)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temp, _FILE_MODE)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def copy_file(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Copy the bytes of ``source`` to ``path`` atomically; creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        shutil.copyfile(source, temp)
        os.chmod(temp, _FILE_MODE)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def is_nonempty_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` exists and is a file or a folder with anything in it."""
    path = Path(path)
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


def staging_folder(path: str | os.PathLike) -> Path:
    """A fresh empty folder beside ``path`` to build its contents in, before ``publish_folder``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    staged.mkdir()  # not mkdtemp: that one is private (0700), the export must be readable as usual
    return staged


def publish_folder(staged: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Rename the finished ``staged`` folder to ``path``, which must be missing or empty.

    Raises:
        FileExistsError: ``path`` holds something; it is never replaced (the staged folder is removed).
    """
    path = Path(path)
    if is_nonempty_folder(path):
        shutil.rmtree(staged, ignore_errors=True)
        raise FileExistsError(f"{path} exists and is not empty; it is never replaced: choose another folder")
    os.replace(staged, path)  # an empty folder at `path` is replaced in one rename (POSIX)
    return path
