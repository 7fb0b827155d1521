"""Decide at read time whether each listed image can be used: decode it, in parallel, remembered.

A damaged download is often a file cut short after an intact header: PIL opens it, and the error
comes only when the pixels are decoded, in the middle of training. So the ``"full"`` check decodes
every image first, on a thread pool (PIL releases the GIL while decoding), and remembers those that
decoded by (path, size, modification time) in the image-check record, so a rerun only stats them
(docs/data.md). The record is an optimisation only: one that cannot be read or written is ignored.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import PIL
from PIL import Image

from c2s_lightning.infra.atomic_files import write_text
from c2s_lightning.infra.cache_folders import IMAGE_CHECKS, cache_folder
from c2s_lightning.infra.input_files import special_kind

log = logging.getLogger(__name__)

CHECK_MODES = ("full", "header", "none")
"""``full``: decode every pixel; ``header``: PIL reads the header (fast, misses cut files); ``none``."""

_CACHE_VERSION = 1


def check_mode(check_images: bool | str) -> str:
    """The check mode of a ``check_images`` option: True -> ``"full"``, False -> ``"none"``."""
    if check_images is True:
        return "full"
    if check_images is False or check_images is None:
        return "none"
    if check_images not in CHECK_MODES:
        raise ValueError(f"check_images must be one of {CHECK_MODES} (or True/False), got {check_images!r}")
    return check_images


def unreadable_images(paths: Sequence[Path], mode: str, cache_key: str | None = None) -> dict[Path, str]:
    """``{path: reason}`` for the images among ``paths`` that PIL cannot read under ``mode``
    (``"full"`` or ``"header"``), e.g. ``{p: "OSError: image file is truncated"}``. ``cache_key``
    (the dataset root; None: none) names the image-check record that ``"full"`` consults."""
    if mode == "header":
        return _check_all(paths, functools.partial(_decode, full=False))
    cache_file = _cache_file(cache_key)
    known = _load(cache_file)
    stamps = {path: _stamp(path) for path in paths}
    todo = [path for path in paths if known.get(str(path)) != stamps[path]]
    bad = _check_all(todo, _decode)
    if cache_file is not None and todo:
        for path in todo:
            if path in bad or stamps[path] is None:
                known.pop(str(path), None)
            else:
                known[str(path)] = stamps[path]
        _save(cache_file, known)
    return bad


def _check_all(paths: Sequence[Path], check) -> dict[Path, str]:
    if len(paths) < 8:  # a pool costs more than it saves on a handful of files
        results = [check(path) for path in paths]
    else:
        with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
            results = list(pool.map(check, paths, chunksize=32))
    return {path: reason for path, reason in zip(paths, results) if reason is not None}


def _decode(path: Path, full: bool = True) -> str | None:
    """Why PIL cannot decode ``path`` (``full=False``: read its header), or None."""
    special = special_kind(path)
    if special:  # opening a FIFO would block for ever
        return f"{special}, not a regular file"
    try:
        with Image.open(path) as image:  # the header is parsed on open
            if full:
                image.load()
    except Exception as error:  # noqa: BLE001 - any failure to read the file makes it unusable
        text = str(error).strip()
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return None


def _stamp(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _cache_file(cache_key: str | None) -> Path | None:
    folder = cache_folder(IMAGE_CHECKS)
    if folder is None or cache_key is None:
        return None
    return folder / f"{hashlib.sha256(cache_key.encode()).hexdigest()[:20]}.json"


def _load(cache_file: Path | None) -> dict[str, list[int]]:
    if cache_file is None or not cache_file.is_file():
        return {}
    try:
        content = json.loads(cache_file.read_text())
    except (OSError, ValueError) as error:
        log.info("ignoring the unreadable image-check cache %s (%s)", cache_file, error)
        return {}
    # A new Pillow may decode differently: start afresh rather than trust its predecessor.
    if content.get("version") != _CACHE_VERSION or content.get("pillow") != PIL.__version__:
        return {}
    return content.get("images", {})


def _save(cache_file: Path, images: dict[str, list[int]]) -> None:
    content = {"version": _CACHE_VERSION, "pillow": PIL.__version__, "images": images}
    try:  # readers see the old file or the new one, never half of one
        write_text(cache_file, json.dumps(content, separators=(",", ":")))
    except OSError as error:
        log.info("could not write the image-check cache %s (%s)", cache_file, error)
