"""Checks shared by the native readers: label files, label values, and the images they list.

Every failure raises :class:`DatasetError` naming the file and the row or field, so a user with a
damaged download knows which line to look at. The rules: docs/data.md, "What is checked at read time".
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath

from c2s_lightning.data.image_checks import check_mode, unreadable_images
from c2s_lightning.data.records import DatasetError, IQARecord
from c2s_lightning.infra.input_files import not_regular_reason

log = logging.getLogger(__name__)

ACTIONS = ("error", "skip")
"""What ``on_missing`` and ``on_bad_image`` accept."""
_SHOWN = 3
"""Bad files named in one error line; the rest are counted (and logged when skipped)."""


@dataclasses.dataclass(frozen=True)
class LabelRow:
    """A record as a reader parsed it, plus where it came from (for error messages).

    Attributes:
        record: The parsed record; its ``path`` is ``root / name`` as listed (not yet checked).
        where: The label file and row it came from, e.g. ``"/data/kadid10k/dmos.csv, row 12"``.
        allow_absolute: The reader was told to accept an absolute ``name`` (``list``'s
            ``allow_absolute`` option); relative names must still stay under the root.
    """

    record: IQARecord
    where: str
    allow_absolute: bool = False


def require_file(path: Path, what: str = "label file") -> None:
    """Raise naming ``path`` unless it is a regular file (a FIFO or device too: reading one would
    block or never end)."""
    special = not_regular_reason(path)
    if special:
        raise DatasetError(f"{what} {special}")
    if not path.is_file():
        raise DatasetError(f"{path}: {what} not found")


def to_float(value: object, where: str, field: str) -> float:
    """Parse one score-like cell (str, int, float, numpy scalar or None); reject empty, non-numeric,
    NaN and infinite values with an error naming ``where`` (file and row) and ``field``."""
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()  # numpy scalars from .mat files: show 'nan', not 'np.float64(nan)'
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise DatasetError(f"{where}: field {field!r} is empty or not a number: {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: field {field!r} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise DatasetError(f"{where}: field {field!r} is {value!r}, not a finite number")
    return number


def finish(
    rows: Iterable[LabelRow],
    check_images: bool | str = "full",
    on_missing: str = "error",
    on_bad_image: str = "error",
    *,
    source: str | os.PathLike | None = None,
) -> list[IQARecord]:
    """Check the parsed rows and the images they list, returning the records.

    ``check_images``, ``on_missing`` and ``on_bad_image`` are :func:`~c2s_lightning.data.datasets.read_dataset`'s
    options; ``on_missing="skip"`` needs a look at the disk, so it works with any ``check_images``.
    ``source`` is the dataset root or list file, for messages and the decode cache.

    Raises:
        DatasetError: A row names a path outside the root, repeats an image or has a negative
            std; an image is missing or unreadable; or nothing is left to read.
    """
    mode = check_mode(check_images)
    for option, value in (("on_missing", on_missing), ("on_bad_image", on_bad_image)):
        if value not in ACTIONS:
            raise ValueError(f"{option} must be one of {ACTIONS}, got {value!r}")
    rows = list(rows)
    if not rows:
        raise DatasetError(f"{source}: the label file(s) list no images")
    check_rows(rows)
    if mode == "none" and on_missing == "error":
        return [row.record for row in rows]
    found = _find_images(rows, on_missing)
    if mode != "none":
        found = _drop_unreadable(found, mode, on_bad_image, source)
    if not found:
        raise DatasetError(f"{source}: none of the {len(rows)} listed images is left to read "
                           f"(on_missing={on_missing!r}, on_bad_image={on_bad_image!r})")
    return [row.record if path == row.record.path else dataclasses.replace(row.record, path=path)
            for row, path in found]


def check_rows(rows: list[LabelRow]) -> None:
    """Refuse rows that leave the root, repeat an image or carry a negative std (no disk access)."""
    seen: dict[str, LabelRow] = {}
    for row in rows:
        key = _checked_name(row)
        std = row.record.std
        if std is not None and std < 0:
            raise DatasetError(f"{row.where}: the std is negative ({std:g}); a std must be >= 0")
        first = seen.setdefault(key, row)
        if first is not row:
            raise _listed_twice(first, row, row.record.name)


def _checked_name(row: LabelRow) -> str:
    """The row's image name, checked to stay under the dataset root; the key for duplicates.

    Lexical on purpose: nothing is opened before the check, and a symlink inside the root
    (a folder of images kept on another disk) is still followed when the image is read.
    """
    name = row.record.name.replace("\\", "/")
    pure = PurePosixPath(name)
    if ".." in pure.parts or ".." in Path(row.record.path).parts:
        raise DatasetError(f"{row.where}: image path {row.record.name!r} leaves the dataset root "
                           "('..'); paths must stay under it")
    if (pure.is_absolute() or PureWindowsPath(name).drive) and not row.allow_absolute:
        raise DatasetError(f"{row.where}: image path {row.record.name!r} is absolute; paths must be "
                           "relative to the dataset root (a 'list' dataset accepts absolute paths "
                           "with allow_absolute=True)")
    return pure.as_posix()


def _listed_twice(first: LabelRow, again: LabelRow, shown: object) -> DatasetError:
    return DatasetError(
        f"{again.where}: image {shown} is listed twice (first at {first.where}; scores "
        f"{first.record.mos:g} and {again.record.mos:g}); each image may be listed once")


def _find_images(rows: list[LabelRow], on_missing: str) -> list[tuple[LabelRow, Path]]:
    """Each row with its file on disk; missing files raise or are skipped (``on_missing``)."""
    listings: dict[Path, dict[str, str]] = {}
    found, skipped = [], []
    by_file: dict[Path, LabelRow] = {}
    for row in rows:
        path = _resolve(row.record.path, listings)
        if path is None:
            if on_missing == "error":
                problem = not_regular_reason(row.record.path) or f"{row.record.path} not found"
                raise DatasetError(f"{row.where}: listed image {problem}")
            skipped.append(row)
            continue
        # Two names that differ only in case can find the same file (TID2013's lookup).
        first = by_file.setdefault(path, row)
        if first is not row:
            raise _listed_twice(first, row, f"{path} (as {first.record.name!r} and {row.record.name!r})")
        found.append((row, path))
    if skipped:
        log.warning("skipped %d listed image(s) missing on disk (on_missing='skip')", len(skipped))
        for row in skipped:
            log.info("skipped %s (%s): not found", row.record.path, row.where)
    return found


def _drop_unreadable(found: list[tuple[LabelRow, Path]], mode: str, on_bad_image: str,
                     source: str | os.PathLike | None) -> list[tuple[LabelRow, Path]]:
    bad = unreadable_images([path for _, path in found], mode, str(source) if source else None)
    if not bad:
        return found
    listed = [f"{row.where}: {path} ({bad[path]})" for row, path in found if path in bad]
    summary = f"{len(bad)} of {len(found)} listed images cannot be read (check_images={mode!r})"
    if on_bad_image == "error":
        more = f"; and {len(listed) - _SHOWN} more" if len(listed) > _SHOWN else ""
        raise DatasetError(f"{summary}: {'; '.join(listed[:_SHOWN])}{more}. Replace them, or pass "
                           "on_bad_image='skip' to leave them out")
    log.warning("%s; left out (on_bad_image='skip'): %s%s", summary, "; ".join(listed[:_SHOWN]),
                " ..." if len(listed) > _SHOWN else "")
    for line in listed:
        log.info("left out %s", line)
    return [(row, path) for row, path in found if path not in bad]


def _resolve(path: Path, listings: dict[Path, dict[str, str]]) -> Path | None:
    """The path on disk, allowing a different letter case (TID2013 lists ``i01_..`` for ``I01_..``)."""
    if path.is_file():
        return path
    folder = path.parent
    if folder not in listings:
        # One listing per folder keeps the fallback cheap when many names differ in case.
        entries = os.listdir(folder) if folder.is_dir() else []
        listings[folder] = {entry.lower(): entry for entry in entries}
    actual = listings[folder].get(path.name.lower())
    return folder / actual if actual is not None and (folder / actual).is_file() else None
