"""Checks shared by the native readers: label files, label values, and the images they list.

Every failure raises :class:`DatasetError` with a message that names the file and the row or field,
so a user with a damaged download knows which line to look at.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from c2s_lightning.data.records import DatasetError, IQARecord

log = logging.getLogger(__name__)

ON_MISSING = ("error", "skip")


@dataclasses.dataclass(frozen=True)
class LabelRow:
    """A record as a reader parsed it, plus where it came from (for error messages).

    Attributes:
        record: The parsed record; its ``path`` is ``root / name`` as listed (not yet checked).
        where: The label file and row it came from, e.g. ``"/data/kadid10k/dmos.csv, row 12"``.
    """

    record: IQARecord
    where: str


def require_file(path: Path, what: str = "label file") -> Path:
    """Return ``path`` if it is a file, else raise naming it."""
    if not path.is_file():
        raise DatasetError(f"{path}: {what} not found")
    return path


def to_float(value: object, where: str, field: str) -> float:
    """Parse one score-like cell; reject empty, non-numeric, NaN and infinite values.

    Args:
        value: The cell as read (str, int, float, numpy scalar or None).
        where: File and row, used in the error message.
        field: Column or variable name, used in the error message.
    """
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


def finish(rows: Iterable[LabelRow], check_images: bool = True, on_missing: str = "error") -> list[IQARecord]:
    """Resolve and check the listed images, returning the records.

    Args:
        rows: Parsed rows from a reader.
        check_images: Check that each image exists and that PIL can read its header (pixels are
            not decoded). Off: paths are returned as listed, untouched.
        on_missing: ``"error"`` raises on the first listed image missing on disk; ``"skip"`` drops
            it, counts it and logs it. Needs a look at the disk, so it works with either
            ``check_images`` setting.
    """
    if on_missing not in ON_MISSING:
        raise ValueError(f"on_missing must be one of {ON_MISSING}, got {on_missing!r}")
    rows = list(rows)
    if not check_images and on_missing == "error":
        return [row.record for row in rows]
    listings: dict[Path, dict[str, str]] = {}
    records, skipped = [], []
    for row in rows:
        path = _resolve(row.record.path, listings)
        if path is None:
            if on_missing == "error":
                raise DatasetError(f"{row.where}: listed image {row.record.path} not found")
            skipped.append(row)
            continue
        if check_images:
            _check_header(path, row.where)
        records.append(row.record if path == row.record.path else dataclasses.replace(row.record, path=path))
    _log_skipped(skipped)
    return records


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


def _check_header(path: Path, where: str) -> None:
    try:
        with Image.open(path) as image:
            image.size  # noqa: B018 - the header is parsed on open; size proves it was understood
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(f"{where}: image {path} cannot be read ({error})") from error


def _log_skipped(skipped: list[LabelRow]) -> None:
    if not skipped:
        return
    log.warning("skipped %d listed image(s) missing on disk (on_missing='skip')", len(skipped))
    for row in skipped:
        log.info("skipped %s (%s): not found", row.record.path, row.where)
