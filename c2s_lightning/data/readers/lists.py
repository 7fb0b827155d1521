"""Reader for a plain list of labelled images (the user's own data): CSV, TSV, text or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

from c2s_lightning.data.readers.checks import LabelRow, require_file, to_float
from c2s_lightning.data.records import DatasetError, IQARecord

PATH_KEYS = ("path", "image", "name", "file", "filename", "image_name")
SCORE_KEYS = ("score", "mos", "gt_score", "quality")


def read_list(list_file: Path, *, image_root: str | Path | None = None, dataset: str = "list",
              allow_absolute: bool = False) -> list[LabelRow]:
    """Read a list of ``path, score[, std[, ref]]`` rows; scores must be higher-is-better.

    Formats, by suffix: ``.json`` (a list of objects) and ``.jsonl`` (one object per line) with keys
    ``path``/``image``, ``score``/``mos``/``gt_score`` and optional ``std``, ``ref``; anything else is
    a delimited table (tab if the first line has a tab, else comma if it has one, else whitespace).
    Its first row is a header only when it names a path column and a score column (any of
    ``PATH_KEYS`` and ``SCORE_KEYS``); otherwise every row is data, in the order path, score, std,
    ref, so a first row with a bad score is reported as the bad row 1 it is.

    Args:
        list_file: The list.
        image_root: Folder that relative paths resolve against; default: the list's folder.
            Paths must stay under it (no ``..``).
        dataset: Name stored in the records' ``dataset`` field.
        allow_absolute: Accept absolute image paths (refused by default, like paths with ``..``,
            so that a list cannot point the reader at files outside its image folder).
    """
    require_file(list_file)
    base = Path(image_root).expanduser().resolve() if image_root is not None else list_file.parent
    suffix = list_file.suffix.lower()
    items = _json_items(list_file) if suffix in (".json", ".jsonl") else _table_items(list_file)
    rows = []
    for where, item in items:
        listed = _pick(item, PATH_KEYS, where, "path")
        if not isinstance(listed, str) or not listed.strip():
            raise DatasetError(f"{where}: field 'path' is {listed!r}, not a path")
        name = listed.strip().replace("\\", "/")
        score = to_float(_pick(item, SCORE_KEYS, where, "score"), where, "score")
        std, ref = item.get("std"), item.get("ref")
        std = None if std is None or std == "" else to_float(std, where, "std")
        ref = None if ref is None or ref == "" else str(ref)
        rows.append(LabelRow(IQARecord(base / name, score, std, ref, dataset, name), where, allow_absolute))
    return rows


def _pick(item: dict, keys: tuple[str, ...], where: str, field: str) -> object:
    for key in keys:
        if key in item:
            return item[key]
    raise DatasetError(f"{where}: field {field!r} missing (accepted keys: {', '.join(keys)})")


def _json_items(path: Path) -> Iterator[tuple[str, dict]]:
    text = path.read_text(encoding="utf-8-sig")
    try:
        if path.suffix.lower() == ".jsonl":
            lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
            items = [(f"{path}, line {n}", json.loads(line)) for n, line in lines]
        else:
            content = json.loads(text)
            if not isinstance(content, list):
                raise DatasetError(f"{path}: expected a JSON list of objects, got {type(content).__name__}")
            items = [(f"{path}, item {i}", item) for i, item in enumerate(content)]
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: not valid JSON ({error})") from error
    if not items:
        raise DatasetError(f"{path}: the list has no rows")
    for where, item in items:
        if not isinstance(item, dict):
            raise DatasetError(f"{where}: expected an object, got {item!r}")
        yield where, item


def _table_items(path: Path) -> Iterator[tuple[str, dict]]:
    text = path.read_text(encoding="utf-8-sig")
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise DatasetError(f"{path}: the list is empty")
    delimiter = "\t" if "\t" in first else "," if "," in first else None
    rows = _rows(text, delimiter)
    cells = [cell.strip().lower() for cell in rows[0][1]]
    if set(cells) & set(PATH_KEYS) and set(cells) & set(SCORE_KEYS):
        header, rows = cells, rows[1:]
        if not rows:
            raise DatasetError(f"{path}: the list has no rows below its header")
    else:
        header = ["path", "score", "std", "ref"]
        if len(cells) > 1 and not _is_number(cells[1]):
            raise DatasetError(
                f"{path}, row {rows[0][0]}: field 'score' is not a number: {rows[0][1][1].strip()!r} "
                f"(a header row must name a path column {PATH_KEYS} and a score column {SCORE_KEYS})")
    for number, fields in rows:
        cells = [cell.strip() for cell in fields]
        if len(cells) > len(header):
            raise DatasetError(f"{path}, row {number}: {len(cells)} fields, expected at most {len(header)}")
        yield f"{path}, row {number}", dict(zip(header, cells))


def _rows(text: str, delimiter: str | None) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a table as (number of the line it starts on, fields).

    A delimited table is parsed whole by ``csv``, so a quoted field may hold the delimiter or a
    line break (a file name with a newline); whitespace-separated text has no quoting.
    """
    if delimiter is None:
        return [(n, line.split()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows, start = [], 1
    for fields in reader:
        if any(field.strip() for field in fields):
            rows.append((start, fields))
        start = reader.line_num + 1
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
