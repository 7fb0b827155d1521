"""Splits: the shipped paper lists, KonIQ's official split, seeded random splits.

Records are generated in memory from the shipped membership (every image's native name), so no
image or shared folder is needed. LIVE's contents come from ``tests/data/live_refs.json`` (written
by ``tools/build_splits_data.py``); CSIQ's and KADID's are in their file names.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path, PurePath

import pytest

from c2s_lightning.data import DatasetError, IQARecord, Split, split_records
from c2s_lightning.data.splits import paper_datasets, paper_membership

ROOT = Path("/datasets")
LIVE_REFS = json.loads((Path(__file__).parent / "data" / "live_refs.json").read_text())
LIVE_REF_OF = {name: ref for ref, names in LIVE_REFS.items() for name in names}


def content(dataset: str, name: str) -> str | None:
    base = PurePath(name).name
    if dataset == "live":
        return LIVE_REF_OF[name]
    if dataset == "csiq":
        return base.split(".")[0]
    if dataset == "kadid10k":
        return base[:3]
    return None


def make_records(dataset: str, with_ref: bool = True) -> list[IQARecord]:
    """One record per image of the dataset, under its native name."""
    names = paper_membership(dataset)["keys"]
    return [IQARecord(ROOT / dataset / n, mos=i % 7 / 2, std=0.5,
                      ref=content(dataset, n) if with_ref else None, dataset=dataset, name=n)
            for i, n in enumerate(names)]


def names(records) -> set[str]:
    return {r.name for r in records}


def refs(records) -> set[str]:
    return {r.ref for r in records}


def test_shipped_data_covers_six_datasets():
    assert paper_datasets() == ["bid", "clive", "csiq", "kadid10k", "koniq10k", "live"]
    sizes = {d: len(paper_membership(d)["keys"]) for d in paper_datasets()}
    assert sizes == {"bid": 586, "clive": 1162, "csiq": 866, "kadid10k": 10125,
                     "koniq10k": 10073, "live": 779}


@pytest.mark.parametrize("dataset", ["bid", "clive", "csiq", "kadid10k", "koniq10k", "live"])
def test_paper_split_test_is_the_shipped_list(dataset):
    records = make_records(dataset)
    data = paper_membership(dataset)
    for index in (1, 7):
        split = split_records(records, "paper", index=index)
        expected = {data["keys"][i] for i in data["test"][index - 1]}
        assert names(split.test) == expected
        assert len(split.test) == len(data["test"][index - 1])
        assert split.val == []
        assert names(split.train) == names(records) - expected


def test_paper_test_sizes_are_about_a_fifth_and_vary_between_splits():
    records = make_records("live")
    tests = [names(split_records(records, "paper", index=k).test) for k in range(1, 11)]
    assert [len(t) for t in tests] == [160, 162, 160, 162, 159, 161, 160, 158, 161, 161]
    assert len(set(map(frozenset, tests))) == 10


@pytest.mark.parametrize("dataset", ["live", "csiq", "kadid10k"])
def test_paper_splits_of_synthetic_datasets_are_content_disjoint(dataset):
    records = make_records(dataset)
    for index in range(1, 11):
        split = split_records(records, "paper", index=index, val_fraction=0.125)
        assert not refs(split.train) & refs(split.test)
        assert not refs(split.val) & (refs(split.train) | refs(split.test))
        assert split.val


def test_paper_matching_ignores_image_folder_and_case():
    # a reader that drops KADID's "images/" folder and upper-cases names still matches
    records = [dataclasses.replace(r, name=PurePath(r.name).name.upper())
               for r in make_records("kadid10k")]
    split = split_records(records, "paper", index=3)
    assert len(split.test) == 2000
    # a reader that leaves name empty is matched on its path
    live = [dataclasses.replace(r, name="") for r in make_records("live")]
    assert len(split_records(live, "paper", index=1).test) == 160


def test_paper_missing_test_images_raise_unless_partial(caplog):
    records = make_records("csiq")
    test_names = names(split_records(records, "paper", index=2).test)
    dropped = sorted(test_names)[:5]
    partial = [r for r in records if r.name not in dropped]
    with pytest.raises(DatasetError, match=r"splits_test/2/csiq_test.json: 5 of 173"):
        split_records(partial, "paper", index=2)
    with caplog.at_level(logging.WARNING):
        split = split_records(partial, "paper", index=2, allow_partial=True)
    assert len(split.test) == 168 and "5 of 173" in caplog.text


def test_paper_unlisted_records_go_to_train():
    extra = IQARecord(ROOT / "bid/ImageDatabase/Extra.JPG", 3.0, 0.5, None, "bid", "ImageDatabase/Extra.JPG")
    split = split_records([*make_records("bid"), extra], "paper", index=1)
    assert extra in split.train


def test_paper_rejects_bad_index_and_unknown_dataset():
    with pytest.raises(ValueError, match="1..10"):
        split_records(make_records("bid"), "paper", index=11)
    other = [IQARecord(ROOT / "x.png", 1.0, None, None, "tid2013", "x.png")]
    with pytest.raises(DatasetError, match="no paper split lists for dataset 'tid2013'"):
        split_records(other, "paper")


def test_mixed_datasets_are_split_each_on_its_own():
    live, bid = make_records("live"), make_records("bid")
    split = split_records(live + bid, "paper", index=4)
    alone = [split_records(live, "paper", index=4), split_records(bid, "paper", index=4)]
    assert split.test == alone[0].test + alone[1].test
    assert split.train == alone[0].train + alone[1].train


@pytest.mark.parametrize("dataset,with_ref", [("kadid10k", True), ("live", True), ("koniq10k", False)])
def test_random_split_sizes_and_disjointness(dataset, with_ref):
    records = make_records(dataset, with_ref)
    split = split_records(records, "random", seed=3)
    assert sorted(names(split.train) | names(split.val) | names(split.test)) == sorted(names(records))
    assert len(split.train) + len(split.val) + len(split.test) == len(records)
    fractions = [len(p) / len(records) for p in (split.train, split.val, split.test)]
    assert fractions == pytest.approx([0.7, 0.1, 0.2], abs=0.04)
    if with_ref:
        assert not refs(split.train) & refs(split.test)
        assert not refs(split.val) & (refs(split.train) | refs(split.test))


def test_random_split_is_deterministic_per_seed_and_index():
    records = make_records("csiq")
    first = split_records(records, "random", seed=1, index=2)
    assert split_records(records, "random", seed=1, index=2) == first
    # membership does not depend on the input order; each part keeps the input order
    shuffled = split_records(records[::-1], "random", seed=1, index=2)
    assert shuffled.test == first.test[::-1] and shuffled.train == first.train[::-1]
    assert refs(first.test) != refs(split_records(records, "random", seed=2, index=2).test)
    assert refs(first.test) != refs(split_records(records, "random", seed=1, index=3).test)


def test_random_split_custom_fractions_and_bad_fractions():
    records = make_records("kadid10k")
    split = split_records(records, "random", fractions=(0.5, 0.0, 0.5))
    assert split.val == [] and len(refs(split.test)) in (40, 41)
    with pytest.raises(ValueError, match="summing to 1"):
        split_records(records, "random", fractions=(0.5, 0.1, 0.2))


def test_random_split_test_refs_pin_exactly_those_contents():
    records = make_records("kadid10k")
    split = split_records(records, "random", test_refs=["I05", "i06.png", "I81"])
    assert refs(split.test) == {"I05", "I06", "I81"}
    assert len(refs(split.val)) == round(78 * 0.1 / 0.8)
    with pytest.raises(DatasetError, match="I99"):
        split_records(records, "random", test_refs=["I99"])


def test_unknown_split_scheme_and_option_are_rejected():
    with pytest.raises(ValueError, match="unknown split scheme"):
        split_records(make_records("bid"), "kfold")
    with pytest.raises(ValueError, match="val_fraction"):
        split_records(make_records("bid"), "random", val_fraction=0.1)


def write_koniq_sets(root: Path, records: list[IQARecord]) -> dict[str, str]:
    sets = {}
    for i, r in enumerate(records):
        sets[PurePath(r.name).name] = "test" if i % 5 == 0 else "validation" if i % 7 == 0 else "training"
    lines = ["image_name,c1,MOS,set"] + [f"{n},1,3.0,{s}" for n, s in sets.items()]
    (root / "koniq10k_distributions_sets.csv").write_text("\n".join(lines) + "\n")
    return sets


def test_official_split_reads_the_sets_file_next_to_the_images(tmp_path):
    records = [IQARecord(tmp_path / r.name, r.mos, r.std, None, "koniq10k", r.name)
               for r in make_records("koniq10k")[:200]]
    sets = write_koniq_sets(tmp_path, records)
    split = split_records(records, "official")
    wanted = {"train": "training", "val": "validation", "test": "test"}
    for part, word in wanted.items():
        assert {PurePath(r.name).name for r in getattr(split, part)} == {
            n for n, s in sets.items() if s == word}
    by_part = {"training": set(), "validation": set(), "test": set()}
    for n, s in sets.items():
        by_part[s].add("1024x768/" + n)
    assert split_records(records, "official", sets=by_part) == split
    # the readers' koniq_official_sets form: {record name: set}
    by_name = {"1024x768/" + n: s for n, s in sets.items()}
    assert split_records(records, "official", sets=by_name) == split


def test_official_split_incomplete_data_raises(tmp_path):
    records = [IQARecord(tmp_path / r.name, r.mos, r.std, None, "koniq10k", r.name)
               for r in make_records("koniq10k")[:50]]
    write_koniq_sets(tmp_path, records)
    with pytest.raises(DatasetError, match="1 images of the official split are not among"):
        split_records(records[1:], "official")
    assert len(split_records(records[1:], "official", allow_partial=True).test) == 9
    extra = IQARecord(tmp_path / "1024x768/new.jpg", 3.0, 0.4, None, "koniq10k", "1024x768/new.jpg")
    with pytest.raises(DatasetError, match="1 records are not in the official split"):
        split_records([*records, extra], "official")
    assert extra in split_records([*records, extra], "official", allow_partial=True).train


def test_describe_counts_images_and_contents():
    split = split_records(make_records("kadid10k"), "random", fractions=(0.8, 0.0, 0.2))
    assert split.describe() == f"train {65 * 125} (65 contents) / val 0 / test {16 * 125} (16 contents)"
    assert isinstance(split, Split)
