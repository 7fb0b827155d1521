"""Files and folders written whole or not at all: built under a temporary name, then renamed.

A reader (or a rerun after a crash) sees the old file or the new one, never half of one. The
temporary name (starting with a dot, so report readers skip it) is in the same folder, so
``os.replace`` is a rename on one file system; the data is flushed (``fsync``) before the rename,
and the folder's entry after it, so a power cut cannot leave the new name pointing at blocks never
written. Every file the project writes goes through here (the comparison cache is SQLite's).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any


def _fsync_file(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: str | os.PathLike) -> None:
    # makes the rename itself durable; some platforms cannot open a folder, which is no error here
    with contextlib.suppress(OSError):
        _fsync_file(folder)


def _temp_name(path: Path, kind: str = "tmp") -> Path:
    # the real suffix stays last, so writers that pick a format by extension (savefig, PIL) still do
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.{kind}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix; the parent folder is created) for any writer
    (``savefig``, ``PIL.Image.save``, ``torch.save``); renamed to ``path`` when the block ends
    without error, removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(path)
    try:
        yield temp
        if not temp.is_file():
            raise FileNotFoundError(f"nothing was written for {path}")
        _fsync_file(temp)
        os.replace(temp, path)
    except BaseException as error:
        temp.unlink(missing_ok=True)
        if isinstance(error, OSError) and (error.filename is None or Path(error.filename) == temp):
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error  # name the file written
        raise
    _fsync_folder(path.parent)


def _new_file_mode(mode: str, kwargs: dict[str, Any], writer: str) -> None:
    # these writers make a new file; text is UTF-8 unless kwargs say otherwise
    if mode not in ("w", "wb"):
        raise ValueError(f"{writer} writes a new file: mode 'w' or 'wb', not {mode!r}")
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """``open(path, mode)`` on a temporary file that replaces ``path`` when the block ends without
    error (``mode`` ``"w"`` or ``"wb"``; ``kwargs`` as ``open``'s, e.g. ``newline=""`` for csv)."""
    _new_file_mode(mode, kwargs, "atomic_open")
    with atomic_path(path) as temp, open(temp, mode, **kwargs) as handle:
        yield handle


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; creates the parent folder."""
    with atomic_open(path, "w", newline="") as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, data: Any, **dumps: Any) -> Path:
    """``json.dumps(data, **dumps)`` plus a final newline, written atomically (indent 2 by default)."""
    return write_text(path, json.dumps(data, **{"indent": 2, **dumps}) + "\n")


def copy_file(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Copy the bytes of ``source`` to ``path`` atomically; creates the parent folder."""
    with atomic_path(path) as temp:
        shutil.copyfile(source, temp)
    return Path(path)


@contextlib.contextmanager
def streaming_file(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """A file written over time (a streamed log), open as ``<path>.partial`` while the block runs,
    so that ``tail -f`` follows it and ``path`` appears only complete; a block ending on an exception
    (a signal, Ctrl-C) leaves ``<path>.interrupted``, a writer killed outright ``<path>.partial``.
    ``mode`` and ``kwargs`` as ``atomic_open``'s."""
    path = Path(path)
    _new_file_mode(mode, kwargs, "streaming_file")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial, final = path.with_name(path.name + ".partial"), path.with_name(path.name + ".interrupted")
    handle = open(partial, mode, **kwargs)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        final = path
    finally:
        os.replace(partial, final)
        _fsync_folder(path.parent)


def is_nonempty_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` exists and is a file or a folder with anything in it."""
    path = Path(path)
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


def staging_folder(path: str | os.PathLike) -> Path:
    """A fresh empty folder beside ``path`` to build its contents in, before ``publish_folder``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = _temp_name(path)
    staged.mkdir()  # not mkdtemp: that one is private (0700), the export must be readable as usual
    return staged


def publish_folder(staged: str | os.PathLike, path: str | os.PathLike, replace: bool = False) -> Path:
    """Rename the finished ``staged`` folder to ``path`` (its files flushed to disk first).

    Args:
        replace: Replace a ``path`` that holds something: renamed aside, the new folder renamed in,
            the old one deleted (a crash in between leaves ``.<name>.<pid>-<token>.old``).

    Raises:
        FileExistsError: ``path`` holds something and ``replace`` is False (``staged`` is removed).
    """
    path, staged = Path(path), Path(staged)
    occupied = is_nonempty_folder(path)
    if occupied and not replace:
        shutil.rmtree(staged, ignore_errors=True)
        raise FileExistsError(f"{path} exists and is not empty; it is never replaced: choose another folder")
    for file in staged.rglob("*"):
        if file.is_file() and not file.is_symlink():
            _fsync_file(file)
    if not occupied:
        os.replace(staged, path)  # an empty folder at `path` is replaced in one rename (POSIX)
    else:
        old = _temp_name(path, "old")
        os.replace(path, old)
        try:
            os.replace(staged, path)
        except BaseException:
            os.replace(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    _fsync_folder(path.parent)
    return path


def check_output_file(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (),
                      option: str = "--out", input_folders: Iterable[str | os.PathLike] = ()) -> Path:
    """Check, before any work and creating nothing, that ``path`` can be written as a file: not a
    folder, not one of ``inputs``, not inside one of ``input_folders`` (an export, a bank's images),
    in a folder that takes a new file (or that can be created).

    Raises:
        ValueError: with one line naming ``option``, the path and what is wrong.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path} is a folder; give a file name, e.g. {path / 'scores.csv'}")
    resolved = path.resolve()
    for item in inputs:
        if Path(item).resolve() == resolved:
            raise ValueError(f"{option} {path} is also an input; writing it would destroy that input")
    for folder in input_folders:
        if resolved.is_relative_to(Path(folder).resolve()):
            raise ValueError(f"{option} {path} is inside {folder}, an input folder that is never written to; "
                             "give a path outside it")
    folder = path.parent
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ValueError(f"{option} {path}: {existing} is a file, not a folder")
    if existing is None or existing != folder:  # created when written: its nearest folder must take it
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"{option} {path}: cannot create {folder} ({existing} is not writable)")
        return path
    try:
        with tempfile.TemporaryFile(dir=folder):  # the rename needs a new file here, not only `path`
            pass
    except OSError as error:
        raise ValueError(f"{option} {path}: cannot write in {folder} ({error.strerror or error})") from None
    return path
