"""The anchor bank: JSON round trip with its images, moving it, old banks, refusing another model or image."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image

from c2s_lightning.cli import main
from c2s_lightning.data.datasets import read_dataset
from c2s_lightning.data.records import IQARecord
from c2s_lightning.scoring.anchors import select_anchors
from c2s_lightning.scoring.bank import AnchorBank, StaleAnchorBankError

from native_fixtures import write_koniq

PAD = {"pad_to_square": True, "pad_colour": "image_mean", "image_size": None}


@pytest.fixture
def dataset(tmp_path) -> list[IQARecord]:
    folder = tmp_path / "koniq" / "1024x768"
    folder.mkdir(parents=True)
    records = []
    for k in range(21):
        path = folder / f"{k}.png"
        Image.new("RGB", (6, 4), (10 * k, 0, 0)).save(path)
        records.append(IQARecord(path, mos=1 + k / 5, std=0.3 + (k % 3) / 10, ref=None, dataset="koniq10k",
                                 name=f"1024x768/{k}.png"))
    return records


@pytest.fixture
def bank(dataset) -> AnchorBank:
    return AnchorBank.from_records(dataset, "koniq10k", "paper split 1, train+val", alpha=4)


def test_from_records_selects_and_remembers(bank):
    assert [a.name for a in bank.anchors] == [
        "1024x768/0.png", "1024x768/6.png", "1024x768/12.png", "1024x768/15.png",
    ]  # fmt: skip
    assert (bank.rule, bank.alpha, bank.beta, bank.seed) == ("min_variance", 4, 1, 0)
    assert bank.matrix is None and bank.model_fingerprint is None


def test_save_copies_the_anchor_images_and_the_bank_moves_without_the_dataset(bank, dataset, tmp_path):
    matrix = [[0.5, 0.1, 0.05, 0.0], [0.9, 0.5, 0.2, 0.1], [0.95, 0.8, 0.5, 0.3], [1, 1, 1, 0.5]]
    bank.set_matrix(matrix, "sha256:abc", PAD, protocol={"levels": ["a"], "model_fingerprint": None})
    path = bank.save(tmp_path / "out" / "bank.json")
    data = json.loads(path.read_text())
    assert data["format_version"] == 3 and data["model_fingerprint"] == "sha256:abc"
    assert data["protocol"] == {"levels": ["a"], "model_fingerprint": "sha256:abc", "image_preprocessing": PAD}
    # each image's digest, recomputed here from the bytes with hashlib (the documented BLAKE2b)
    assert data["image_digests"] == [hashlib.blake2b(a.path.read_bytes(), digest_size=16, person=b"c2s-file").hexdigest()
                                     for a in bank.anchors]
    assert data["anchors"][1] == {"file": "bank/01_6.png", "mos": 2.2, "std": 0.3, "name": "1024x768/6.png",
                                  "dataset": "koniq10k", "ref": None}
    assert (tmp_path / "out" / "bank" / "01_6.png").read_bytes() == dataset[6].path.read_bytes()
    moved = shutil.move(tmp_path / "out", tmp_path / "elsewhere")
    shutil.rmtree(tmp_path / "koniq")  # the dataset is gone
    loaded = AnchorBank.load(Path(moved) / "bank.json")
    assert loaded.anchors[1].path == Path(moved) / "bank" / "01_6.png" and loaded.anchors[1].path.is_file()
    assert [a.name for a in loaded.anchors] == [a.name for a in bank.anchors]
    assert loaded.matrix_for("sha256:abc", PAD) == matrix
    loaded.save(Path(moved) / "bank.json")  # saving in place keeps its own images
    assert AnchorBank.load(Path(moved) / "bank.json").anchors == loaded.anchors


def test_a_bank_without_its_images_is_not_saved(bank, tmp_path):
    bank.anchors[2].path.unlink()
    with pytest.raises(FileNotFoundError, match="anchor 2 image .*12.png is missing"):
        bank.save(tmp_path / "bank.json")
    assert not (tmp_path / "bank.json").exists()


def test_file_is_human_readable_json(bank, tmp_path):
    text = bank.save(tmp_path / "bank.json").read_text()
    assert text.startswith("{\n  ")
    assert json.loads(text)["dataset"] == "koniq10k"


def test_refuses_matrix_of_another_model_or_preprocessing_in_one_line(bank):
    with pytest.raises(StaleAnchorBankError, match="no anchor matrix yet.*anchors build"):
        bank.matrix_for("sha256:a")
    bank.set_matrix([[0.5] * 4] * 4, "sha256:aaaa", PAD)
    for weights, preprocessing, message in [("sha256:bbbb", PAD, r"another model \(sha256:aaaa, this model is sha256:bbbb\)"),
                                            ("sha256:aaaa", {**PAD, "pad_to_square": False}, "preprocessed as")]:
        with pytest.raises(StaleAnchorBankError, match=message + ".*--recompute-anchors") as error:
            bank.matrix_for(weights, preprocessing)
        assert "\n" not in str(error.value)


def test_format_1_banks_load_and_their_matrix_asks_to_be_recomputed(bank, tmp_path):
    old = {"format_version": 1, "dataset": "koniq10k", "split": "train", "rule": "min_variance", "alpha": 4,
           "beta": 1, "seed": 0, "matrix": [[0.5] * 4] * 4, "model_id": "/old/export",
           "anchors": [{"path": str(a.path), "mos": a.mos, "std": a.std, "name": a.name, "dataset": a.dataset,
                        "ref": None} for a in bank.anchors]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    loaded = AnchorBank.load(tmp_path / "old.json")
    assert loaded.anchors == bank.anchors and loaded.model_fingerprint is None
    with pytest.raises(StaleAnchorBankError, match="none recorded.*--recompute-anchors"):
        loaded.matrix_for("sha256:abc")


def test_an_anchor_image_replaced_under_its_name_makes_the_matrix_stale(bank, tmp_path):
    saved = AnchorBank.load(_saved(bank, tmp_path))
    assert saved.matrix_for("sha256:aaaa", PAD) == [[0.5] * 4] * 4
    Image.new("RGB", (8, 6), (1, 2, 3)).save(saved.anchors[2].path, format="PNG")  # same name, other pixels
    with pytest.raises(StaleAnchorBankError, match=r"anchor 2 image .*02_12.png changed since.*--recompute-anchors") as error:
        saved.matrix_for("sha256:aaaa", PAD)
    assert "\n" not in str(error.value)
    saved.set_matrix([[0.5] * 4] * 4, "sha256:aaaa", PAD)  # recomputed on the new image: served again
    assert saved.matrix_for("sha256:aaaa", PAD) == [[0.5] * 4] * 4


def test_a_format_2_bank_records_no_image_digests_and_is_recomputed(bank, tmp_path):
    data = json.loads(_saved(bank, tmp_path).read_text())
    data["weights_fingerprint"] = data.pop("model_fingerprint")
    del data["image_digests"]
    (tmp_path / "v2.json").write_text(json.dumps({**data, "format_version": 2}))
    loaded = AnchorBank.load(tmp_path / "v2.json")
    assert loaded.model_fingerprint == "sha256:aaaa"
    with pytest.raises(StaleAnchorBankError, match="no digests of its anchor images.*--recompute-anchors"):
        loaded.matrix_for("sha256:aaaa", PAD)


def _saved(bank: AnchorBank, tmp_path: Path) -> Path:
    bank.set_matrix([[0.5] * 4] * 4, "sha256:aaaa", PAD)
    return bank.save(tmp_path / "saved" / "bank.json")


@pytest.mark.parametrize(
    ("matrix", "message"), [([[0.5] * 3] * 3, "4 x 4"), ([[1.5] * 4] * 4, r"\[0, 1\]")]
)
def test_set_matrix_checks_shape_and_values(bank, matrix, message):
    with pytest.raises(ValueError, match=message):
        bank.set_matrix(matrix, "m")


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"anchors": []}')
    with pytest.raises(ValueError, match="bad.json: not a valid anchor bank file"):
        AnchorBank.load(path)


def test_anchors_build_takes_a_mix_entry_and_selects_from_its_training_part(tmp_path, capsys):
    root = write_koniq(tmp_path / "koniq10k", n=24)
    out = tmp_path / "bank.json"
    assert main(["anchors", "build", "--dataset.name", "koniq10k", "--dataset.root", str(root),
                 "--dataset.split", "official", "--alpha", "3", "--out", str(out)]) == 0
    # independently: KonIQ's own sets file says which images train, the selection rule picks from them
    with (root / "koniq10k_distributions_sets.csv").open() as sets:
        training = {f"1024x768/{row['image_name']}" for row in csv.DictReader(sets) if row["set"] == "training"}
    pool = [r for r in read_dataset("koniq10k", root) if r.name in training]
    expected = select_anchors(pool, alpha=3)
    built = AnchorBank.load(out)
    assert len(pool) == 12 and [a.name for a in built.anchors] == [r.name for r in expected]
    assert [(a.mos, a.std) for a in built.anchors] == [(r.mos, r.std) for r in expected]
    assert built.split == "official split 1, train" and built.dataset == "koniq10k"
    assert "3 anchors (min_variance" in capsys.readouterr().out
    # the same entry written as a data.datasets item of an experiment YAML gives the same bank
    config = tmp_path / "bank.yaml"
    config.write_text(yaml.safe_dump({"dataset": {"name": "koniq10k", "root": str(root), "split": "official",
                                                  "pairs": 64, "reader_options": {"check_images": False}},
                                      "alpha": 3, "out": str(tmp_path / "again.json")}))
    assert main(["anchors", "build", "--config", str(config)]) == 0
    assert [a.name for a in AnchorBank.load(tmp_path / "again.json").anchors] == [r.name for r in expected]
