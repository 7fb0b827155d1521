"""The anchor bank: JSON round trip and refusal to serve another model's matrix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from c2s_lightning.data.records import IQARecord
from c2s_lightning.scoring.bank import AnchorBank


def _records() -> list[IQARecord]:
    return [
        IQARecord(Path(f"/data/koniq/{k}.jpg"), mos=1 + k / 5, std=0.3 + (k % 3) / 10,
                  ref=None, dataset="koniq10k", name=f"1024x768/{k}.jpg")
        for k in range(21)
    ]  # fmt: skip


@pytest.fixture
def bank() -> AnchorBank:
    return AnchorBank.from_records(_records(), "koniq10k", "paper split 1, train+val", alpha=4)


def test_from_records_selects_and_remembers(bank):
    assert [a.name for a in bank.anchors] == [
        "1024x768/0.jpg", "1024x768/6.jpg", "1024x768/12.jpg", "1024x768/15.jpg",
    ]  # fmt: skip
    assert (bank.rule, bank.alpha, bank.beta, bank.seed) == ("min_variance", 4, 1, 0)
    assert bank.matrix is None and bank.model_id is None


def test_round_trip_without_and_with_matrix(bank, tmp_path):
    assert AnchorBank.load(bank.save(tmp_path / "a" / "bank.json")) == bank
    matrix = [[0.5, 0.1, 0.05, 0.0], [0.9, 0.5, 0.2, 0.1], [0.95, 0.8, 0.5, 0.3], [1, 1, 1, 0.5]]
    bank.set_matrix(matrix, model_id="tiny-llava@abc123")
    path = bank.save(tmp_path / "bank.json")
    loaded = AnchorBank.load(path)
    assert loaded == bank
    assert loaded.anchors[0].path == Path("/data/koniq/0.jpg")
    assert loaded.require_model("tiny-llava@abc123") == matrix


def test_file_is_human_readable_json(bank, tmp_path):
    text = bank.save(tmp_path / "bank.json").read_text()
    assert text.startswith("{\n  ")
    data = json.loads(text)
    assert data["dataset"] == "koniq10k" and data["format_version"] == 1
    assert data["anchors"][1] == {
        "path": "/data/koniq/6.jpg", "mos": 2.2, "std": 0.3, "name": "1024x768/6.jpg",
        "dataset": "koniq10k", "ref": None,
    }  # fmt: skip


def test_refuses_matrix_of_another_model(bank):
    with pytest.raises(ValueError, match="no anchor matrix yet.*anchors build"):
        bank.require_model("model-a")
    bank.set_matrix([[0.5] * 4] * 4, model_id="model-a")
    message = "computed with model 'model-a', not 'model-b'.*anchors build"
    with pytest.raises(ValueError, match=message):
        bank.require_model("model-b")


@pytest.mark.parametrize(
    ("matrix", "message"), [([[0.5] * 3] * 3, "4 x 4"), ([[1.5] * 4] * 4, r"\[0, 1\]")]
)
def test_set_matrix_checks_shape_and_values(bank, matrix, message):
    with pytest.raises(ValueError, match=message):
        bank.set_matrix(matrix, model_id="m")


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"anchors": []}')
    with pytest.raises(ValueError, match="bad.json: not a valid anchor bank file"):
        AnchorBank.load(path)
