"""Readers for the datasets distributed as Excel workbooks: CSIQ, BID and SPAQ."""

from __future__ import annotations

import functools
import importlib.resources
import json
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
BID_STDS = "labels_data/bid_std.json"
"""BID's per-image stds, relative to the ``c2s_lightning.data`` package."""


def read_csiq(root: Path, *, header_row: int = 4) -> list[LabelRow]:
    """CSIQ: ``mos = 1 - dmos``, ``std = dmos_std``, from csiq.DMOS.xlsx, sheet all_by_image.

    Args:
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


def read_bid(root: Path, *, std_file: str | Path | bool | None = None) -> list[LabelRow]:
    """BID: MOS 0-5 from DatabaseGrades.xlsx (column A image number, column B MOS), per-image std.

    The workbook has no std. By default each image's std comes from the shipped
    ``labels_data/bid_std.json`` (LIQE's ``bid_all.txt``, 3rd column, on the same 0-5 scale;
    ``tools/build_bid_std.py``), as the paper's labels used. An image with no std in the list is
    an error naming it: a made-up constant would silently change its comparison levels.

    Args:
        std_file: None (default): the shipped stds. A path: a list of ``path score std`` lines
            (tab or space separated, e.g. LIQE's bid_all.txt) used instead, matched on the file
            name. False: no std (every record's std is None; the pair sampler then uses its
            logged fallback).
    """
    path = root / "DatabaseGrades.xlsx"
    if std_file is False:
        stds, std_source = None, None
    elif std_file is None or std_file is True:
        stds, std_source = shipped_bid_stds(), f"the shipped BID std list ({BID_STDS})"
    else:
        stds, std_source = _bid_stds(Path(std_file)), str(std_file)
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
                raise DatasetError(f"{std_source}: no std for {Path(name).name} (listed at {where}); "
                                   "pass std_file= a list that has it, or std_file=False to read BID without std")
        rows.append(LabelRow(IQARecord(root / name, mos, std, None, "bid", name), where))
    return rows


@functools.cache
def shipped_bid_stds() -> dict[str, float]:
    """``{lower-cased file name: std}`` of the 586 BID images, from the package data."""
    resource = importlib.resources.files("c2s_lightning.data") / BID_STDS
    return {name.lower(): float(std) for name, std in json.loads(resource.read_text())["std"].items()}


def read_spaq(root: Path, *, image_dir: str = "TestImage") -> list[LabelRow]:
    """SPAQ: MOS 0-100 from the 'Image name' and 'MOS' columns of the annotation workbook; no std.

    Args:
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
    stds: dict[str, float] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}, line {number}"
        if len(fields) < 3:
            raise DatasetError(f"{where}: expected 'path score std', got {line!r}")
        key = Path(fields[0].replace("\\", "/")).name.lower()
        if key in lines:
            raise DatasetError(f"{where}: {fields[0]} is listed twice (first on line {lines[key]})")
        std = to_float(fields[2], where, "std")
        if std < 0:
            raise DatasetError(f"{where}: field 'std' is negative ({fields[2]!r})")
        stds[key], lines[key] = std, number
    return stds
