"""Native dataset readers: counts on full-size label files, flips, std scales, refs and names (bad input: test_reader_errors.py)."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path, PurePosixPath

import numpy as np
import openpyxl
import pytest
import scipy.io

import native_fixtures as nf
from shared_data import SHARED_DATA, require
from c2s_lightning.data import DATASETS, DatasetError, read_dataset
from c2s_lightning.data.datasets import koniq_official_sets

FULL_COUNTS = {"live": 779, "csiq": 866, "kadid10k": 10125, "bid": 586, "clive": 1162, "koniq10k": 10073,
               "tid2013": 3000, "spaq": 11125, "agiqa3k": 2982}
LARGE = {"kadid10k", "koniq10k", "spaq"}  # 10k+ images: counted from labels with the image check off
# Real entries of Compare2Score's split 1 / cross-dataset lists, with their dataset-folder prefix.
SPLIT_ENTRIES = {"live": "live/jp2k/img39.bmp", "csiq": "csiq/dst_imgs/awgn/sunset_sparrow.AWGN.1.png",
                 "kadid10k": "kadid10k/I71_01_01.png", "bid": "bid/DatabaseImage0190.JPG", "clive": "livec/481.bmp",
                 "koniq10k": "koniq/1814122396.jpg", "tid2013": "TID2013/distorted_images/i08_01_2.bmp",
                 "spaq": "spaq/05274.jpg", "agiqa3k": "agi-cgi/AttnGAN_normal_000.jpg"}


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """``full(name)`` -> records of a full-size fixture, written and read once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            root = nf.WRITERS[name](tmp_path_factory.mktemp(name), full=True, images=name not in LARGE)
            cache[name] = read_dataset(name, root, check_images=name not in LARGE)
        return cache[name]

    return get


def tiny(name, tmp_path, **kwargs):
    return nf.WRITERS[name](tmp_path / name, **kwargs)


def matches(entry: str, record_name: str) -> bool:
    """The naming rule documented in datasets.py: drop the folder, compare trailing components."""
    parts = PurePosixPath(entry).parts[1:]
    return PurePosixPath(record_name).parts[-len(parts):] == parts


@pytest.mark.parametrize("name", list(FULL_COUNTS))
def test_full_size_labels_give_the_paper_counts(full, name):
    records = full(name)
    spec = DATASETS[name]
    assert len(records) == FULL_COUNTS[name]
    assert len({r.name for r in records}) == len(records)
    assert all(r.dataset == name and r.path.is_absolute() and str(r.path).endswith(r.path.name) for r in records)
    assert all((r.ref is not None) == spec.has_ref for r in records)
    assert all((r.std is not None) == spec.has_std for r in records)
    if name != "live":  # realigned LIVE scores legitimately pass 100
        lo, hi = spec.scale
        assert all(lo <= r.mos <= hi for r in records)


@pytest.mark.parametrize("name", list(FULL_COUNTS))
def test_names_match_the_paper_split_lists(full, name):
    hits = [r for r in full(name) if matches(SPLIT_ENTRIES[name], r.name)]
    assert len(hits) == 1


def test_live_and_csiq_flip_to_liqe_scores(full):
    for name in ("live", "csiq"):
        expected = {row[0]: (row[-2], row[-1]) for row in nf.real_names()[name]}
        got = {r.name: (r.mos, r.std) for r in full(name)}
        assert got.keys() == expected.keys()
        assert all(got[k] == pytest.approx(expected[k], abs=1e-9) for k in expected)
    assert len({r.ref for r in full("live")}) == 29
    assert {"1600", "shroom"} <= {r.ref for r in full("csiq")} and len({r.ref for r in full("csiq")}) == 30


def test_live_flips_realigned_dmos_and_drops_reference_entries(tmp_path):
    root = tiny("live", tmp_path, n_per_folder=2)
    labels = scipy.io.loadmat(root / "dmos_realigned.mat")
    raw = scipy.io.loadmat(root / "dmos.mat")["dmos"].ravel()
    keep = np.flatnonzero(labels["orgs"].ravel() == 0)
    records = read_dataset("live", root)
    assert [r.name for r in records] == [f"{f}/img{k}.bmp" for f, _ in nf.LIVE_FOLDERS for k in (1, 2)]
    assert [r.mos for r in records] == pytest.approx(100 - labels["dmos_new"].ravel()[keep])
    assert [r.std for r in records] == pytest.approx(labels["dmos_std"].ravel()[keep])
    assert {r.ref for r in records} == {"womanhat", "parrots", "buildings"}
    unaligned = read_dataset("live", root, realigned=False)
    assert [r.mos for r in unaligned] == pytest.approx(100 - raw[keep])
    assert all(r.std is None for r in unaligned)


def test_csiq_flips_dmos_and_maps_type_words_to_files(tmp_path):
    root = tiny("csiq", tmp_path, n_refs=2)
    sheet = openpyxl.load_workbook(root / "csiq.DMOS.xlsx")["all_by_image"]
    rows = list(sheet.iter_rows(min_row=5, values_only=True))
    records = read_dataset("csiq", root)
    assert [r.mos for r in records] == pytest.approx([1 - row[5] for row in rows])
    assert [r.std for r in records] == pytest.approx([row[4] for row in rows])
    assert rows[0][0] == 1600 and records[0].ref == "1600"
    assert records[0].name == "dst_imgs/awgn/1600.AWGN.1.png"
    assert {PurePosixPath(r.name).parts[1] for r in records} == set(nf.CSIQ_TYPES)


def test_kadid_std_is_the_square_root_of_var(tmp_path):
    root = tiny("kadid10k", tmp_path)
    rows = list(csv.DictReader((root / "dmos.csv").open()))
    records = read_dataset("kadid10k", root)
    assert [r.mos for r in records] == pytest.approx([float(row["dmos"]) for row in rows])
    assert [r.std for r in records] == pytest.approx([math.sqrt(float(row["var"])) for row in rows])
    assert [r.ref for r in records[:5]] == ["I01"] * 4 + ["I02"]


def test_koniq_zscore_scale_rescales_std_by_the_fitted_slope(tmp_path):
    root = tiny("koniq10k", tmp_path, n=8)
    rows = list(csv.DictReader((root / "koniq10k_scores_and_distributions.csv").open()))
    mos, sd, z = (np.array([float(row[k]) for row in rows]) for k in ("MOS", "SD", "MOS_zscore"))
    slope = np.polyfit(mos, z, 1)[0]
    default = read_dataset("koniq10k", root)
    assert [r.mos for r in default] == pytest.approx(mos) and [r.std for r in default] == pytest.approx(sd)
    rescaled = read_dataset("koniq10k", root, scale="zscore")
    assert [r.mos for r in rescaled] == pytest.approx(z)
    assert [r.std for r in rescaled] == pytest.approx(sd * slope)
    assert 20 < slope < 40
    with pytest.raises(ValueError, match="scale"):
        read_dataset("koniq10k", root, scale="percent")


def test_koniq_official_sets_use_record_names(tmp_path):
    root = tiny("koniq10k", tmp_path, n=8)
    sets = koniq_official_sets(root)
    assert set(sets) == {r.name for r in read_dataset("koniq10k", root)}
    assert sorted(sets.values()).count("training") == 4 and list(sets.values())[2:4] == ["validation", "test"]


def test_tid2013_keeps_listed_case_and_finds_files_across_case(tmp_path):
    root = tiny("tid2013", tmp_path)
    records = read_dataset("tid2013", root)
    lower = [r for r in records if r.name.startswith("distorted_images/i")]
    assert lower and all(r.path.name == PurePosixPath(r.name).name.capitalize() for r in lower)
    assert all(r.path.is_file() for r in records)
    assert {r.ref for r in records} == {"I01", "I02"}
    assert [r.mos for r in records[:2]] == pytest.approx([nf.score_at(0, 0.2, 7.2), nf.score_at(1, 0.2, 7.2)])


LIQE_BID = SHARED_DATA / "liqe" / "bid_all.txt"
BID_STDS_BY_HAND = {"DatabaseImage0456.JPG": 1.166392, "DatabaseImage0124.JPG": 0.233858,
                    "DatabaseImage0452.JPG": 0.596184, "DatabaseImage0001.JPG": 0.534734}
"""A few rows of LIQE's bid_all.txt (3rd column), copied by hand, for machines without the file."""


def test_bid_default_stds_are_liqe_per_image_stds(full):
    records = full("bid")
    got = {r.path.name: r.std for r in records}
    assert all(std is not None and std > 0 for std in got.values())
    assert {k: got[k] for k in BID_STDS_BY_HAND} == pytest.approx(BID_STDS_BY_HAND, abs=1e-12)
    assert len(set(got.values())) > 400  # per image, not one made-up constant
    require(LIQE_BID)  # the hand-copied rows above are checked either way
    liqe = {}
    for line in LIQE_BID.read_text().splitlines():
        path, _, std = line.split("\t")
        liqe[PurePosixPath(path).name] = float(std)
    assert got == pytest.approx(liqe, abs=1e-12)


def test_bid_std_file_overrides_or_turns_off_the_shipped_stds(tmp_path):
    root = tiny("bid", tmp_path)
    records = read_dataset("bid", root)
    assert [r.name for r in records] == [f"ImageDatabase/DatabaseImage{k:04d}.JPG" for k in (1, 3, 4, 5)]
    assert records[0].std == pytest.approx(BID_STDS_BY_HAND["DatabaseImage0001.JPG"])
    assert all(r.std is None for r in read_dataset("bid", root, std_file=False))
    std_file = tmp_path / "bid_all.txt"
    std_file.write_text("".join(f"{r.name}\t{r.mos}\t{0.5 + i}\n" for i, r in enumerate(records)))
    assert [r.std for r in read_dataset("bid", root, std_file=std_file)] == [0.5, 1.5, 2.5, 3.5]
    std_file.write_text("".join(f"{r.name}\t{r.mos}\t0.5\n" for r in records[1:]))
    with pytest.raises(DatasetError, match=r"bid_all\.txt: no std for DatabaseImage0001\.JPG .*row 2.*std_file=False"):
        read_dataset("bid", root, std_file=std_file)
    grades = openpyxl.load_workbook(root / "DatabaseGrades.xlsx")
    grades.worksheets[0]["A2"] = 2  # BID has no image 2, so the shipped list has no std
    grades.save(root / "DatabaseGrades.xlsx")
    with pytest.raises(DatasetError, match=r"shipped BID std list .*: no std for DatabaseImage0002\.JPG"):
        read_dataset("bid", root, check_images=False)


def test_clive_drops_the_training_images(tmp_path):
    records = read_dataset("clive", tiny("clive", tmp_path, n=3))
    assert [r.name for r in records] == ["Images/100.bmp", "Images/101.JPG", "Images/102.bmp"]
    assert [r.mos for r in records] == pytest.approx([nf.score_at(i, 3, 92) for i in (7, 8, 9)])
    assert [r.std for r in records] == pytest.approx([nf.score_at(i, 5, 25) for i in (7, 8, 9)])


def test_spaq_and_agiqa_read_their_columns(tmp_path):
    spaq = read_dataset("spaq", tiny("spaq", tmp_path))
    assert [r.mos for r in spaq] == pytest.approx([nf.score_at(i, 2, 98) for i in range(5)])
    assert spaq[0].name == "TestImage/00001.jpg" and spaq[0].std is None
    agiqa = read_dataset("agiqa3k", tiny("agiqa3k", tmp_path))
    assert np.array([(r.mos, r.std) for r in agiqa]) == pytest.approx(
        np.array([(nf.score_at(i, 0.3, 4.8), nf.score_at(i, 0.1, 1.0)) for i in range(4)]))
    moved = tmp_path / "agiqa3k" / "AGIQA-3K"
    moved.mkdir()
    for record in agiqa:
        record.path.rename(moved / record.path.name)
    moved_records = read_dataset("agiqa3k", tmp_path / "agiqa3k", image_dir="AGIQA-3K")
    assert moved_records[0].name == "AGIQA-3K/AttnGAN_normal_000.jpg"


@pytest.mark.parametrize(("suffix", "header"), [(".csv", True), (".tsv", True), (".txt", False), (".json", True),
                                                (".jsonl", True)])
def test_list_reader_formats(tmp_path, suffix, header):
    path = nf.write_list(tmp_path / "mine", suffix=suffix, header=header)
    records = read_dataset("list", path)
    assert [r.path for r in records] == [(tmp_path / "mine" / f"imgs/{k}.png").resolve() for k in range(3)]
    assert np.array([(r.mos, r.std) for r in records]) == pytest.approx(
        np.array([(nf.score_at(k, 0, 10), nf.score_at(k, 0.1, 1)) for k in range(3)]))
    assert [r.ref for r in records] == ([None] * 3 if not header else ["c0", "c1", "c0"])


def test_list_reader_image_root_option(tmp_path):
    path = nf.write_list(tmp_path / "labels", images=False)
    nf.write_images(tmp_path / "pictures", [f"imgs/{k}.png" for k in range(3)])
    records = read_dataset("list", path, image_root=tmp_path / "pictures", dataset="mine")
    assert records[0].path == (tmp_path / "pictures" / "imgs" / "0.png").resolve() and records[0].dataset == "mine"
    with pytest.raises(DatasetError, match=r"labels\.csv, row 2: listed image .*0\.png not found"):
        read_dataset("list", path)


def test_table_is_plain_frozen_data():
    assert set(DATASETS) == set(FULL_COUNTS) | {"list"}
    assert [n for n, s in DATASETS.items() if not s.higher_better] == ["live", "csiq"]
    assert {n for n, s in DATASETS.items() if s.has_ref} == {"live", "csiq", "kadid10k", "tid2013"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        DATASETS["live"].has_std = False
    with pytest.raises(ValueError, match="unknown dataset 'livee'"):
        read_dataset("livee", ".")
