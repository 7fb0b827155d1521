"""Bad data fails at read time: label files that lie, paths that escape their root (images that do
not decode: test_image_decode_checks.py).

Every bad input is built here from the native fixtures, one class per section, applied to each
reader the class concerns. Each must give one clear error naming the file and row (or be handled
as documented) before any training could start.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path

import numpy as np
import openpyxl
import pytest
import scipy.io

import native_fixtures as nf
from c2s_lightning.data import DatasetError, IQARecord, read_dataset, split_records


def tiny(name, tmp_path, **kwargs):
    return nf.WRITERS[name](tmp_path / name, **kwargs)


# ---- 1. label files that lie ----------------------------------------------------------------------


def _csv_rows(path):
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def _write_csv(path, rows):
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def _csv_edit(file, row, column, value):
    def edit(root):
        rows = _csv_rows(root / file)
        rows[row - 1][rows[0].index(column)] = value
        _write_csv(root / file, rows)
    return edit


def _csv_repeat(file, row, column=None, value=None):
    """Append a copy of ``row`` (1-based), optionally with one cell changed."""
    def edit(root):
        rows = _csv_rows(root / file)
        copy = list(rows[row - 1])
        if column is not None:
            copy[rows[0].index(column)] = value
        _write_csv(root / file, rows + [copy])
    return edit


def _xlsx_edit(file, cells, sheet=None):
    def edit(root):
        book = openpyxl.load_workbook(root / file)
        chosen = book[sheet] if sheet else book.worksheets[0]
        for cell, value in cells.items():
            chosen[cell] = chosen[value[1:]].value if isinstance(value, str) and value.startswith("=") else value
        book.save(root / file)
    return edit


def _mat_edit(file, key, index, value):
    def edit(root):
        content = {k: v for k, v in scipy.io.loadmat(root / file).items() if not k.startswith("__")}
        array = content[key]
        if array.dtype == object:
            array.flat[index] = np.array([value])
        else:
            array = content[key] = array.astype(float)
            array.flat[index] = value
        scipy.io.savemat(root / file, content)
    return edit


def _line_edit(file, line, text):
    def edit(root):
        lines = (root / file).read_text().splitlines()
        lines[line - 1] = text(lines) if callable(text) else text
        (root / file).write_text("\n".join(lines) + "\n")
    return edit


KONIQ = "koniq10k_scores_and_distributions.csv"
SPAQ = "Annotations/MOS and Image attribute scores.xlsx"
CLIVE_NAMES = "Data/AllImages_release.mat"
TWICE = r"is listed twice \(first at .*{first}; scores [\d.]+ and [\d.]+\)"
DUPLICATES = [  # (dataset, edit, where the repeat is reported, where the first listing is)
    ("kadid10k", _csv_repeat("dmos.csv", 2, "dmos", "4.5"), r"dmos\.csv, row 14", r"dmos\.csv, row 2"),
    ("kadid10k", _csv_repeat("dmos.csv", 3), r"dmos\.csv, row 14", r"dmos\.csv, row 3"),  # same score too
    ("koniq10k", _csv_repeat(KONIQ, 3, "MOS", "1.5"), r"distributions\.csv, row 8", r"distributions\.csv, row 3"),
    ("agiqa3k", _csv_edit("data.csv", 4, "name", "AttnGAN_normal_000.jpg"), r"data\.csv, row 4", r"data\.csv, row 2"),
    ("csiq", _xlsx_edit("csiq.DMOS.xlsx", {"A7": "=A5", "C7": "=C5", "D7": "=D5"}, "all_by_image"),
     r"'all_by_image', row 7", r"'all_by_image', row 5"),
    ("bid", _xlsx_edit("DatabaseGrades.xlsx", {"A4": "=A2"}), r"DatabaseGrades\.xlsx, row 4",
     r"DatabaseGrades\.xlsx, row 2"),
    ("spaq", _xlsx_edit(SPAQ, {"A5": "=A2"}), r"scores\.xlsx, row 5", r"scores\.xlsx, row 2"),
    ("tid2013", _line_edit("mos_with_names.txt", 3, "4.00000 I01_01_1.bmp"), r"mos_with_names\.txt, line 3",
     r"mos_with_names\.txt, line 1"),
    ("clive", _mat_edit(CLIVE_NAMES, "AllImages_release", 9, "100.bmp"), r"AllMOS_release\.mat, entry 10 \(100\.bmp\)",
     r"AllMOS_release\.mat, entry 8 \(100\.bmp\)"),
]
# LIVE is absent: its names come from the folder order fixed by the release, not from a label file.


@pytest.mark.parametrize(("name", "edit", "where", "first"), DUPLICATES,
                         ids=[f"{d[0]}-{i}" for i, d in enumerate(DUPLICATES)])
def test_an_image_listed_twice_is_an_error_naming_both_rows(tmp_path, name, edit, where, first):
    root = tiny(name, tmp_path)
    edit(root)
    with pytest.raises(DatasetError, match=where + ": image .* " + TWICE.format(first=first)):
        read_dataset(name, root, check_images=False)  # a label check: no image is looked at


def test_names_that_differ_only_in_case_are_the_same_file(tmp_path):
    root = tiny("tid2013", tmp_path)  # line 2 lists i01_01_2.bmp for the file I01_01_2.bmp
    _line_edit("mos_with_names.txt", 1, "4.00000 I01_01_2.bmp")(root)
    with pytest.raises(DatasetError, match=r"line 2: image .*I01_01_2\.bmp \(as 'distorted_images/I01_01_2\.bmp' "
                                           r"and 'distorted_images/i01_01_2\.bmp'\) is listed twice \(first at .*line 1"):
        read_dataset("tid2013", root)


NEGATIVE_STD = [
    ("live", _mat_edit("dmos_realigned.mat", "dmos_std", 1, -2.0), r"dmos_realigned\.mat, entry 2 \(jp2k/img2\.bmp\)"),
    ("csiq", _xlsx_edit("csiq.DMOS.xlsx", {"E6": -0.05}, "all_by_image"), r"'all_by_image', row 6"),
    ("clive", _mat_edit("Data/AllStdDev_release.mat", "AllStdDev_release", 8, -1.0), r"AllMOS_release\.mat, entry 9 \(101\.JPG\)"),
    ("koniq10k", _csv_edit(KONIQ, 3, "SD", "-0.4"), r"distributions\.csv, row 3"),
    ("tid2013", _line_edit("mos_std.txt", 2, "-0.30000"), r"mos_with_names\.txt, line 2"),
    ("agiqa3k", _csv_edit("data.csv", 3, "std_quality", "-0.2"), r"data\.csv, row 3"),
]


@pytest.mark.parametrize(("name", "edit", "where"), NEGATIVE_STD, ids=[n[0] for n in NEGATIVE_STD])
def test_a_negative_std_is_an_error_naming_the_row(tmp_path, name, edit, where):
    root = tiny(name, tmp_path)
    edit(root)
    with pytest.raises(DatasetError, match=where + r": the std is negative \(-[\d.]+\)"):
        read_dataset(name, root)


def test_kadid_negative_variance_and_bid_std_file_lies(tmp_path):
    root = tiny("kadid10k", tmp_path)
    _csv_edit("dmos.csv", 4, "var", "-0.1")(root)
    with pytest.raises(DatasetError, match=r"dmos\.csv, row 4: field 'var' is negative"):
        read_dataset("kadid10k", root)
    bid = tiny("bid", tmp_path)
    names = [r.name for r in read_dataset("bid", bid)]
    std_file = tmp_path / "stds.txt"
    std_file.write_text("".join(f"{n}\t3.0\t{'-0.5' if k == 2 else '0.5'}\n" for k, n in enumerate(names)))
    with pytest.raises(DatasetError, match=r"stds\.txt, line 3: field 'std' is negative"):
        read_dataset("bid", bid, std_file=std_file)
    std_file.write_text("".join(f"{n}\t3.0\t0.5\n" for n in names + names[:1]))
    with pytest.raises(DatasetError, match=r"stds\.txt, line 5: .*DatabaseImage0001\.JPG is listed twice \(first on line 1\)"):
        read_dataset("bid", bid, std_file=std_file)


def _list(tmp_path, text, suffix=".csv"):
    nf.write_images(tmp_path, ["a.png", "b.png", "c.png"])
    path = tmp_path / f"labels{suffix}"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("a.png,1.0\nb.png,2.0\na.png,3.0\n", r"labels\.csv, row 3: image a\.png is listed twice \(first at .*row 1; "
                                          r"scores 1 and 3\)"),
    ("path,score\na.png,1.0\n./a.png,1.0\n", r"row 3: image \./a\.png is listed twice \(first at .*row 2"),
    ("a.png,1.0,-0.3\n", r"labels\.csv, row 1: the std is negative \(-0\.3\)"),
    ("a.png,good,0.3\nb.png,2.0,0.3\n", r"labels\.csv, row 1: field 'score' is not a number: 'good' "
                                        r"\(a header row must name a path column"),
    ("image\tquality\n", r"labels\.csv: the list has no rows below its header"),
    ("file,quality_score\na.png,2\n", r"labels\.csv, row 1: field 'score' is not a number: 'quality_score'"),
])
def test_list_files_that_lie(tmp_path, text, message):
    with pytest.raises(DatasetError, match=message):
        read_dataset("list", _list(tmp_path, text))


def test_empty_lists_and_label_files_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match=r"labels\.json: the list has no rows"):
        read_dataset("list", _list(tmp_path, "[]", ".json"))
    root = tiny("kadid10k", tmp_path)
    (root / "dmos.csv").write_text("dist_img,ref_img,dmos,var\n")
    with pytest.raises(DatasetError, match=re.escape(str(root)) + ": the label file\\(s\\) list no images"):
        read_dataset("kadid10k", root)


def _records(dataset, n, refs=1):
    return [IQARecord(Path(f"/x/{dataset}/{k}.png"), float(k), 0.5, f"c{k % refs}", dataset, f"{k}.png")
            for k in range(n)]


def test_a_dataset_too_small_to_split_is_an_error_naming_it(caplog):
    with pytest.raises(DatasetError, match=r"dataset 'mine' is too small to split: 3 images of 1 contents give "
                                           r"train 3 / val 0 / test 0 under the 'random' split, so its test part"):
        split_records(_records("mine", 3), "random")
    with pytest.raises(DatasetError, match=r"'tiny' .* 2 images of 2 contents give train 0 / val 0 / test 2 .* "
                                           r"its train part is empty"):
        split_records(_records("tiny", 2, refs=2), "random", fractions=(0.2, 0.0, 0.8))
    with caplog.at_level(logging.WARNING):
        split = split_records(_records("ok", 4, refs=4), "random")
    assert (len(split.train), len(split.val), len(split.test)) == (3, 0, 1)
    assert "dataset 'ok': 4 images of 4 contents give train 3 / val 0 / test 1" in caplog.text
    assert "val part is empty" in caplog.text
    split = split_records(_records("all_train", 3), "random", fractions=(1.0, 0.0, 0.0))  # asked for
    assert len(split.train) == 3


# ---- 2. paths that escape their root ----------------------------------------------------------------


ESCAPES = [  # (dataset, edit, where, the listed path as the error shows it)
    ("kadid10k", _csv_edit("dmos.csv", 3, "dist_img", "../../../../usr/share/x.png"), r"dmos\.csv, row 3",
     "images/../../../../usr/share/x.png"),
    ("koniq10k", _csv_edit(KONIQ, 2, "image_name", "../../etc/passwd"), r"distributions\.csv, row 2",
     "1024x768/../../etc/passwd"),
    ("agiqa3k", _csv_edit("data.csv", 2, "name", "/etc/passwd"), r"data\.csv, row 2", "/etc/passwd"),
    ("csiq", _xlsx_edit("csiq.DMOS.xlsx", {"A5": "../../../x"}, "all_by_image"), r"'all_by_image', row 5",
     "dst_imgs/awgn/../../../x.AWGN.1.png"),
    ("spaq", _xlsx_edit(SPAQ, {"A3": "../../../etc/passwd"}), r"scores\.xlsx, row 3", "TestImage/../../../etc/passwd"),
    ("tid2013", _line_edit("mos_with_names.txt", 2, "4.00000 ../../../etc/passwd"), r"mos_with_names\.txt, line 2",
     "distorted_images/../../../etc/passwd"),
    ("clive", _mat_edit(CLIVE_NAMES, "AllImages_release", 8, "../../etc/passwd"), r"AllMOS_release\.mat, entry 9 \(\.\./\.\./etc/passwd\)",
     "Images/../../etc/passwd"),
]
# LIVE and BID are absent: their image names are built from the release's fixed layout and numbers.


@pytest.mark.parametrize(("name", "edit", "where", "listed"), ESCAPES, ids=[e[0] for e in ESCAPES])
def test_native_label_paths_must_stay_under_the_root(tmp_path, name, edit, where, listed):
    root = tiny(name, tmp_path)
    edit(root)
    kind = "is absolute" if listed.startswith("/") else r"leaves the dataset root \('\.\.'\)"
    for check in ("full", False):  # refused from the name alone, before anything is opened
        with pytest.raises(DatasetError, match=f"{where}: image path {re.escape(repr(listed))} {kind}"):
            read_dataset(name, root, check_images=check)


def test_list_paths_must_stay_under_the_root_unless_absolute_is_allowed(tmp_path):
    outside = tmp_path / "outside"
    nf.write_images(outside, ["x.png"])
    root = tmp_path / "mine"
    path = _list(root, "a.png,1\n../outside/x.png,2\n")
    with pytest.raises(DatasetError, match=r"labels\.csv, row 2: image path '\.\./outside/x\.png' leaves the dataset root"):
        read_dataset("list", path)
    for listed in (str(outside / "x.png"), "/etc/passwd"):
        path.write_text(f"a.png,1\n{listed},2\n")
        with pytest.raises(DatasetError, match=f"row 2: image path '{re.escape(listed)}' is absolute; .*allow_absolute=True"):
            read_dataset("list", path, check_images=False)
    path.write_text(f"a.png,1\n{outside / 'x.png'},2\n")
    records = read_dataset("list", path, allow_absolute=True)
    assert [r.path for r in records] == [root / "a.png", outside / "x.png"]
    path.write_text(f"a.png,1\n{root}/../outside/x.png,2\n")
    with pytest.raises(DatasetError, match="leaves the dataset root"):
        read_dataset("list", path, allow_absolute=True)
    json_list = root / "labels.json"
    json_list.write_text('[{"image": "a.png", "score": 1}, {"image": "..\\\\..\\\\x.png", "score": 2}]')
    with pytest.raises(DatasetError, match=r"labels\.json, item 1: image path .* leaves the dataset root"):
        read_dataset("list", json_list)


def test_symlinks_inside_the_root_keep_working(tmp_path):
    elsewhere = tmp_path / "other_disk"
    nf.write_images(elsewhere, ["photos/p1.png", "p2.png"])
    root = tmp_path / "mine"
    root.mkdir()
    os.symlink(elsewhere / "photos", root / "photos")  # a folder kept on another disk
    os.symlink(elsewhere / "p2.png", root / "p2.png")  # a single linked file
    path = root / "labels.csv"
    path.write_text("path,score\nphotos/p1.png,1\np2.png,2\n")
    records = read_dataset("list", path)
    assert [r.path for r in records] == [root / "photos" / "p1.png", root / "p2.png"]
    kadid = tiny("kadid10k", tmp_path)
    (kadid / "images").rename(elsewhere / "kadid_images")
    os.symlink(elsewhere / "kadid_images", kadid / "images")
    assert len(read_dataset("kadid10k", kadid)) == 12
