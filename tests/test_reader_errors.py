"""Native dataset readers on bad input: every error names the file and the row, entry or field."""

from __future__ import annotations

import csv
import logging
import re
from pathlib import PurePosixPath

import numpy as np
import openpyxl
import pytest
import scipy.io

import native_fixtures as nf
from c2s_lightning.data import DatasetError, read_dataset


def tiny(name, tmp_path, **kwargs):
    return nf.WRITERS[name](tmp_path / name, **kwargs)


def _edit_xlsx(path, cell, value, sheet=None):
    book = openpyxl.load_workbook(path)
    (book[sheet] if sheet else book.worksheets[0])[cell] = value
    book.save(path)


LABEL_FILES = {"live": "dmos_realigned.mat", "csiq": "csiq.DMOS.xlsx", "kadid10k": "dmos.csv",
               "bid": "DatabaseGrades.xlsx", "clive": "Data/AllMOS_release.mat",
               "koniq10k": "koniq10k_scores_and_distributions.csv", "tid2013": "mos_std.txt",
               "spaq": "Annotations/MOS and Image attribute scores.xlsx", "agiqa3k": "data.csv"}
WHERE = r"(row|entry|line) \d+"


@pytest.mark.parametrize("name", list(LABEL_FILES))
def test_missing_label_file(tmp_path, name):
    root = tiny(name, tmp_path)
    (root / LABEL_FILES[name]).unlink()
    with pytest.raises(DatasetError, match=re.escape(str(root / LABEL_FILES[name])) + ": label file not found"):
        read_dataset(name, root)


@pytest.mark.parametrize("name", list(LABEL_FILES))
def test_missing_image_raises_or_is_skipped_and_logged(tmp_path, caplog, name):
    root = tiny(name, tmp_path)
    records = read_dataset(name, root)
    records[1].path.unlink()
    listed = PurePosixPath(records[1].name).name  # TID2013 lists i01_.. for the file I01_..
    with pytest.raises(DatasetError, match=WHERE + r".*: listed image .*" + re.escape(listed)):
        read_dataset(name, root)
    with caplog.at_level(logging.INFO, logger="c2s_lightning.data.readers.checks"):
        kept = read_dataset(name, root, on_missing="skip", check_images=False)
    assert [r.name for r in kept] == [r.name for r in records if r is not records[1]]
    assert "skipped 1 listed image" in caplog.text and listed in caplog.text


@pytest.mark.parametrize("name", list(LABEL_FILES))
def test_corrupt_image_header(tmp_path, name):
    root = tiny(name, tmp_path)
    records = read_dataset(name, root)
    records[0].path.write_bytes(b"this is no image at all")
    unreadable = (r"1 of \d+ listed images cannot be read .*" + WHERE + r".*: .*" + re.escape(records[0].path.name)
                  + r" \(UnidentifiedImageError: cannot identify image file")
    for mode in ("full", "header"):
        with pytest.raises(DatasetError, match=unreadable):
            read_dataset(name, root, check_images=mode)
    assert len(read_dataset(name, root, check_images=False)) == len(records)


def _edit_csv(path, row, column, value):
    rows = list(csv.reader(path.open(newline="")))
    rows[row - 1][rows[0].index(column)] = value
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def _rename_sheet(path, old, new):
    book = openpyxl.load_workbook(path)
    book[old].title = new
    book.save(path)


def _edit_mat(path, key, index, value):
    content = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    content[key] = content[key].astype(float)
    content[key].flat[index] = value
    scipy.io.savemat(path, content)


def _edit_line(path, line, text):
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


KONIQ_CSV = "koniq10k_scores_and_distributions.csv"
SPAQ_XLSX = "Annotations/MOS and Image attribute scores.xlsx"
CSIQ_XLSX = "csiq.DMOS.xlsx"
BAD_VALUES = [  # (dataset, edit of the tiny fixture, expected message)
    ("kadid10k", lambda r: _edit_csv(r / "dmos.csv", 3, "dmos", "abc"),
     r"dmos\.csv, row 3: field 'dmos' is not a number"),
    ("kadid10k", lambda r: _edit_csv(r / "dmos.csv", 2, "var", "nan"), r"dmos\.csv, row 2: field 'var' is 'nan'"),
    ("koniq10k", lambda r: _edit_csv(r / KONIQ_CSV, 4, "MOS", ""), r"distributions\.csv, row 4: field 'MOS' is empty"),
    ("agiqa3k", lambda r: _edit_csv(r / "data.csv", 5, "mos_quality", "n/a"), r"data\.csv, row 5: field 'mos_quality'"),
    ("csiq", lambda r: _edit_xlsx(r / CSIQ_XLSX, "F6", "abc", "all_by_image"),
     r"csiq\.DMOS\.xlsx, sheet 'all_by_image', row 6: field 'dmos' is not a number"),
    ("csiq", lambda r: _edit_xlsx(r / CSIQ_XLSX, "C7", "ringing", "all_by_image"), r"row 7: field 'dst_type'"),
    ("bid", lambda r: _edit_xlsx(r / "DatabaseGrades.xlsx", "B3", "good"), r"DatabaseGrades\.xlsx, row 3: field 'MOS"),
    ("spaq", lambda r: _edit_xlsx(r / SPAQ_XLSX, "B2", None), r"scores\.xlsx, row 2: field 'MOS' is empty"),
    ("live", lambda r: _edit_mat(r / "dmos_realigned.mat", "dmos_new", 0, np.nan),
     r"dmos_realigned\.mat, entry 1 \(jp2k/img1\.bmp\): field 'dmos_new' is nan"),
    ("clive", lambda r: _edit_mat(r / "Data/AllStdDev_release.mat", "AllStdDev_release", 8, np.inf),
     r"AllStdDev_release\.mat, entry 9: field 'AllStdDev_release' is inf"),
    ("tid2013", lambda r: _edit_line(r / "mos_with_names.txt", 2, "abc i01_01_2.bmp"),
     r"mos_with_names\.txt, line 2: field 'mos' is not a number"),
]


def _overwrite(path, content):
    return lambda root: (root / path).write_bytes(content)


BAD_LAYOUTS = [
    ("csiq", lambda r: _rename_sheet(r / CSIQ_XLSX, "all_by_image", "Sheet9"),
     r"csiq\.DMOS\.xlsx: no sheet 'all_by_image'"),
    ("csiq", lambda r: _edit_xlsx(r / CSIQ_XLSX, "F4", "score", "all_by_image"),
     r"sheet 'all_by_image', row 4: header lacks column\(s\) \['dmos'\]"),
    ("spaq", lambda r: _edit_xlsx(r / SPAQ_XLSX, "A1", "file"), r"row 1: header lacks column\(s\) \['image name'\]"),
    ("koniq10k", lambda r: _edit_csv(r / KONIQ_CSV, 1, "SD", "sd"),
     r"distributions\.csv, row 1: header lacks column\(s\) \['SD'\]"),
    ("kadid10k", _overwrite("dmos.csv", b"\x00garbage"), r"dmos\.csv, row 1: header lacks"),
    ("live", lambda r: scipy.io.savemat(r / "refnames_all.mat", {"names": np.zeros(3)}),
     r"refnames_all\.mat: variable 'refnames_all' missing"),
    ("live", lambda r: scipy.io.savemat(r / "dmos_realigned.mat", {
        "dmos_new": np.zeros(980), "dmos_std": np.zeros(982), "orgs": np.zeros(982)}),
     r"dmos_realigned\.mat: variable 'dmos_new' has 980 entries, expected 982"),
    ("clive", _overwrite("Data/AllMOS_release.mat", b"not a mat file"), r"AllMOS_release\.mat: not a readable"),
    ("bid", _overwrite("DatabaseGrades.xlsx", b"not a workbook"), r"DatabaseGrades\.xlsx: not a readable"),
    ("tid2013", lambda r: _edit_line(r / "mos_std.txt", 8, ""),
     r"mos_std\.txt: 7 lines, but .*mos_with_names\.txt has 8"),
]


@pytest.mark.parametrize(("name", "edit", "message"), BAD_VALUES + BAD_LAYOUTS,
                         ids=[f"value-{b[0]}-{i}" for i, b in enumerate(BAD_VALUES)]
                         + [f"layout-{b[0]}-{i}" for i, b in enumerate(BAD_LAYOUTS)])
def test_bad_score_values_sheets_headers_or_variables(tmp_path, name, edit, message):
    root = tiny(name, tmp_path)
    edit(root)
    with pytest.raises(DatasetError, match=message):
        read_dataset(name, root)


def test_list_reader_rejects_rows_without_a_score(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text('[{"image": "a.png", "score": 1}, {"image": "b.png"}]')
    with pytest.raises(DatasetError, match=r"labels\.json, item 1: field 'score' missing"):
        read_dataset("list", path, check_images=False)
    path.write_text('[{"image": "a.png", "gt_score": "0.96"}]')  # agi.json stores scores as strings
    assert read_dataset("list", path, check_images=False)[0].mos == pytest.approx(0.96)


def test_bad_option_values_are_rejected(tmp_path):
    root = tiny("kadid10k", tmp_path)
    with pytest.raises(ValueError, match="on_missing"):
        read_dataset("kadid10k", root, on_missing="ignore")
    with pytest.raises(TypeError):
        read_dataset("kadid10k", root, realigned=True)
