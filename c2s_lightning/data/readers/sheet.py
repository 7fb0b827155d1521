"""Readers for the datasets distributed as Excel workbooks: CSIQ, BID and SPAQ."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from c2s_lightning.data.readers.checks import LabelRow, require_file, to_float
from c2s_lightning.data.records import DatasetError, IQARecord

CSIQ_TYPES = {
    "noise": ("awgn", "AWGN"),
    "jpeg": ("jpeg", "JPEG"),
    "jpeg 2000": ("jpeg2000", "jpeg2000"),
    "fnoise": ("fnoise", "fnoise"),
    "blur": ("blur", "BLUR"),
    "contrast": ("contrast", "contrast"),
}
"""CSIQ's ``dst_type`` words -> (folder under dst_imgs/, token in the file name)."""

SPAQ_LABELS = "Annotations/MOS and Image attribute scores.xlsx"


def read_csiq(root: Path, *, header_row: int = 4) -> list[LabelRow]:
    """CSIQ: ``mos = 1 - dmos``, ``std = dmos_std``, from csiq.DMOS.xlsx, sheet all_by_image.

    Args:
        root: Folder holding csiq.DMOS.xlsx and dst_imgs/.
        header_row: 1-based row of the column names (row 4 in the distributed file).
    """
    path = root / "csiq.DMOS.xlsx"
    columns = ("image", "dst_type", "dst_lev", "dmos_std", "dmos")
    rows = []
    for where, cells in _records(path, "all_by_image", header_row, columns):
        image = _image_id(cells["image"], where)
        kind = str(cells["dst_type"] or "").strip().lower()
        if kind not in CSIQ_TYPES:
            raise DatasetError(f"{where}: field 'dst_type' is {cells['dst_type']!r}, not one of {sorted(CSIQ_TYPES)}")
        level = to_float(cells["dst_lev"], where, "dst_lev")
        if level != int(level):
            raise DatasetError(f"{where}: field 'dst_lev' is {cells['dst_lev']!r}, not a whole number")
        folder, token = CSIQ_TYPES[kind]
        name = f"dst_imgs/{folder}/{image}.{token}.{int(level)}.png"
        mos = 1.0 - to_float(cells["dmos"], where, "dmos")
        std = to_float(cells["dmos_std"], where, "dmos_std")
        rows.append(LabelRow(IQARecord(root / name, mos, std, image, "csiq", name), where))
    return rows


def read_bid(root: Path, *, std_file: str | Path | None = None) -> list[LabelRow]:
    """BID: MOS 0-5 from DatabaseGrades.xlsx (column A image number, column B MOS).

    Args:
        root: Folder holding DatabaseGrades.xlsx and ImageDatabase/.
        std_file: Optional list giving the std BID's workbook lacks: lines of ``path score std``
            (tab or space separated, e.g. LIQE's bid_all.txt), matched on the file name. Without
            it std is None.
    """
    path = root / "DatabaseGrades.xlsx"
    stds = _bid_stds(Path(std_file)) if std_file is not None else None
    rows = []
    for where, values in _numbered_rows(path):
        number = to_float(values[0], where, "image number (column A)")
        if number != int(number) or number < 1:
            raise DatasetError(f"{where}: image number (column A) is {values[0]!r}, not a positive whole number")
        mos = to_float(values[1] if len(values) > 1 else None, where, "MOS (column B)")
        name = f"ImageDatabase/DatabaseImage{int(number):04d}.JPG"
        std = None
        if stds is not None:
            std = stds.get(Path(name).name.lower())
            if std is None:
                raise DatasetError(f"{std_file}: no std for {Path(name).name} (listed at {where})")
        rows.append(LabelRow(IQARecord(root / name, mos, std, None, "bid", name), where))
    return rows


def read_spaq(root: Path, *, image_dir: str = "TestImage") -> list[LabelRow]:
    """SPAQ: MOS 0-100 from the 'Image name' and 'MOS' columns of the annotation workbook; no std.

    Args:
        root: Folder holding Annotations/ and the image folder.
        image_dir: Image folder under ``root`` (``TestImage`` in the release; set it for a resized copy).
    """
    path = root / SPAQ_LABELS
    rows = []
    for where, cells in _records(path, None, 1, ("image name", "mos")):
        image = cells["image name"]
        if not isinstance(image, str) or not image.strip():
            raise DatasetError(f"{where}: field 'Image name' is {image!r}, not a file name")
        name = f"{image_dir}/{image.strip()}" if image_dir else image.strip()
        mos = to_float(cells["mos"], where, "MOS")
        rows.append(LabelRow(IQARecord(root / name, mos, None, None, "spaq", name), where))
    return rows


def _sheet_rows(path: Path, sheet: str | None) -> Iterator[tuple]:
    """Cell values of a sheet (the first sheet when ``sheet`` is None), row by row."""
    require_file(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as error:
        raise DatasetError(f"{path}: not a readable .xlsx workbook ({error})") from error
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise DatasetError(f"{path}: no sheet {sheet!r} (sheets: {book.sheetnames})")
        chosen = book[sheet] if sheet is not None else book.worksheets[0]
        yield from chosen.iter_rows(values_only=True)
    finally:
        book.close()


def _records(path: Path, sheet: str | None, header_row: int, wanted: tuple[str, ...]) -> Iterator[tuple[str, dict]]:
    """Data rows below ``header_row`` as ``(where, {wanted column: value})``; blank rows skipped."""
    label = f"{path}, sheet {sheet!r}" if sheet else str(path)
    columns: dict[str, int] = {}
    for number, values in enumerate(_sheet_rows(path, sheet), start=1):
        if number == header_row:
            found = [str(v).strip().lower() if v is not None else "" for v in values]
            missing = [name for name in wanted if name not in found]
            if missing:
                raise DatasetError(f"{label}, row {number}: header lacks column(s) {missing} (found {found})")
            columns = {name: found.index(name) for name in wanted}
        elif number > header_row and any(v is not None for v in values):
            yield f"{label}, row {number}", {k: values[i] if i < len(values) else None for k, i in columns.items()}
    if not columns:
        raise DatasetError(f"{label}: no header row {header_row} (the sheet is shorter)")


def _numbered_rows(path: Path) -> Iterator[tuple[str, tuple]]:
    """Rows from the first one whose column A is a number on; header rows above it are passed over."""
    started = False
    for number, values in enumerate(_sheet_rows(path, None), start=1):
        if not any(v is not None for v in values):
            continue
        started = started or isinstance(values[0], (int, float))
        if started:
            yield f"{path}, row {number}", values
    if not started:
        raise DatasetError(f"{path}: no row with an image number in column A")


def _image_id(value: object, where: str) -> str:
    """CSIQ's image column: a content name, or a number for the reference stored as one (1600)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip() if value is not None else ""
    if not text:
        raise DatasetError(f"{where}: field 'image' is empty")
    return text


def _bid_stds(path: Path) -> dict[str, float]:
    """``{lower-cased file name: std}`` from a ``path score std`` list."""
    require_file(path, "std_file")
    stds = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 3:
            raise DatasetError(f"{path}, line {number}: expected 'path score std', got {line!r}")
        stds[Path(fields[0].replace("\\", "/")).name.lower()] = to_float(fields[2], f"{path}, line {number}", "std")
    return stds
