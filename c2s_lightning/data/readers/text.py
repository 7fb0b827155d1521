"""Readers for the datasets distributed as text label files: KADID-10k, KonIQ-10k, AGIQA-3K, TID2013."""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Iterator, Sequence
from pathlib import Path

from c2s_lightning.data.readers.checks import LabelRow, require_file, to_float
from c2s_lightning.data.records import DatasetError, IQARecord

KONIQ_LABELS = "koniq10k_scores_and_distributions.csv"
KONIQ_SETS = "koniq10k_distributions_sets.csv"
KONIQ_SET_NAMES = ("training", "validation", "test")


def read_kadid(root: Path) -> list[LabelRow]:
    """KADID-10k: MOS 1-5 from dmos.csv (higher is better despite the name), ``std = sqrt(var)``."""
    path = root / "dmos.csv"
    rows = []
    for where, row in read_csv(path, ("dist_img", "ref_img", "dmos", "var")):
        name = f"images/{_file_name(row, 'dist_img', where)}"
        variance = to_float(row["var"], where, "var")
        if variance < 0:
            raise DatasetError(f"{where}: field 'var' is negative ({row['var']!r})")
        ref = Path(_file_name(row, "ref_img", where)).stem
        mos = to_float(row["dmos"], where, "dmos")
        rows.append(LabelRow(IQARecord(root / name, mos, math.sqrt(variance), ref, "kadid10k", name), where))
    return rows


def read_koniq(root: Path, *, scale: str = "mos", image_dir: str = "1024x768") -> list[LabelRow]:
    """KonIQ-10k from koniq10k_scores_and_distributions.csv.

    Args:
        scale: ``"mos"``: MOS and SD on the 1-5 scale. ``"zscore"``: MOS_zscore (0-100) with SD
            multiplied by the least-squares slope of MOS_zscore on MOS over the whole file (about
            27.8 on the release), so that std and mos stay on one scale.
        image_dir: ``"1024x768"`` (the release size) or ``"512x384"``.
    """
    if scale not in ("mos", "zscore"):
        raise ValueError(f"scale must be 'mos' or 'zscore', got {scale!r}")
    path = root / KONIQ_LABELS
    parsed = []
    for where, row in read_csv(path, ("image_name", "MOS", "SD", "MOS_zscore")):
        values = tuple(to_float(row[key], where, key) for key in ("MOS", "SD", "MOS_zscore"))
        parsed.append((where, _file_name(row, "image_name", where), *values))
    slope = _zscore_slope(path, [p[2] for p in parsed], [p[4] for p in parsed]) if scale == "zscore" else 1.0
    rows = []
    for where, image, mos, sd, zscore in parsed:
        name = f"{image_dir}/{image}"
        score = zscore if scale == "zscore" else mos
        rows.append(LabelRow(IQARecord(root / name, score, sd * slope, None, "koniq10k", name), where))
    return rows


def koniq_official_sets(root: str | Path, image_dir: str = "1024x768",
                        sets_file: str | Path | None = None) -> dict[str, str]:
    """KonIQ-10k's official split from koniq10k_distributions_sets.csv.

    Args:
        image_dir: Image folder used in the returned names, as in :func:`read_koniq`.
        sets_file: The sets file when it is not ``root/koniq10k_distributions_sets.csv``.

    Returns:
        ``{record name: "training" | "validation" | "test"}``, e.g. ``{"1024x768/826373.jpg": "training"}``.
    """
    sets = {}
    for where, row in read_csv(Path(sets_file or Path(root) / KONIQ_SETS), ("image_name", "set")):
        value = (row["set"] or "").strip()
        if value not in KONIQ_SET_NAMES:
            raise DatasetError(f"{where}: field 'set' is {row['set']!r}, not one of {KONIQ_SET_NAMES}")
        sets[f"{image_dir}/{_file_name(row, 'image_name', where)}"] = value
    return sets


def read_agiqa(root: Path, *, image_dir: str = "") -> list[LabelRow]:
    """AGIQA-3K: ``mos_quality`` and ``std_quality`` (about 0-5) from data.csv.

    Args:
        image_dir: Folder of the images under ``root``; empty: the images lie beside data.csv.
    """
    path = root / "data.csv"
    rows = []
    for where, row in read_csv(path, ("name", "mos_quality", "std_quality")):
        image = _file_name(row, "name", where)
        name = f"{image_dir.strip('/')}/{image}" if image_dir else image
        mos = to_float(row["mos_quality"], where, "mos_quality")
        std = to_float(row["std_quality"], where, "std_quality")
        rows.append(LabelRow(IQARecord(root / name, mos, std, None, "agiqa3k", name), where))
    return rows


def read_tid2013(root: Path) -> list[LabelRow]:
    """TID2013: MOS 0-9 from mos_with_names.txt (``<mos> <name>``), std from mos_std.txt (same order).

    Names keep the case of the label file (some read ``i01_..``); the image check finds the file
    whatever its case on disk. ``ref`` is the upper-cased content prefix, e.g. ``"I01"``.
    """
    names_path, std_path = root / "mos_with_names.txt", root / "mos_std.txt"
    labelled = list(_text_lines(names_path))
    stds = list(_text_lines(std_path))
    if len(labelled) != len(stds):
        raise DatasetError(f"{std_path}: {len(stds)} lines, but {names_path} has {len(labelled)}")
    rows = []
    for (where, fields), (std_where, std_fields) in zip(labelled, stds):
        if len(fields) != 2:
            raise DatasetError(f"{where}: expected '<mos> <name>', got {' '.join(fields)!r}")
        if len(std_fields) != 1:
            raise DatasetError(f"{std_where}: expected one std, got {' '.join(std_fields)!r}")
        name = f"distorted_images/{fields[1]}"
        mos = to_float(fields[0], where, "mos")
        std = to_float(std_fields[0], std_where, "std")
        rows.append(LabelRow(IQARecord(root / name, mos, std, fields[1][:3].upper(), "tid2013", name), where))
    return rows


def read_csv(path: Path, required: Sequence[str]) -> Iterator[tuple[str, dict]]:
    """Rows of a headed CSV file as ``(where, row dict)``; raises if a required column is absent."""
    require_file(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        found = [name.strip() for name in reader.fieldnames or ()]
        missing = [name for name in required if name not in found]
        if missing:
            raise DatasetError(f"{path}, row 1: header lacks column(s) {missing} (found {found})")
        reader.fieldnames = found
        for row in reader:
            if any((value or "").strip() for value in row.values() if isinstance(value, str)):
                yield f"{path}, row {reader.line_num}", row


def _text_lines(path: Path) -> Iterator[tuple[str, list[str]]]:
    """Non-blank lines of a whitespace-separated text file as ``(where, fields)``."""
    require_file(path)
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if line.strip():
            yield f"{path}, line {number}", line.split()


def _file_name(row: dict, key: str, where: str) -> str:
    value = (row.get(key) or "").strip()
    if not value:
        raise DatasetError(f"{where}: field {key!r} is empty")
    return value


def _zscore_slope(path: Path, mos: list[float], zscore: list[float]) -> float:
    try:
        return statistics.linear_regression(mos, zscore).slope
    except statistics.StatisticsError:
        raise DatasetError(f"{path}: cannot relate MOS_zscore to MOS (needs two or more distinct MOS)") from None
