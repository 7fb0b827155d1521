"""Pretrained models by name: ``list_models``, ``create_metric("compare2score")``, ``score --export
compare2score``, offline, from a hub cache laid out as huggingface_hub writes it, holding the tiny
mPLUG-Owl2 in the release's folder layout and five anchor images."""

from __future__ import annotations

import csv
import socket

import numpy as np
import pytest
import torch
from fake_hub import ANCHORS_COMMIT, RELEASE_COMMIT, add_snapshot, write_released_folder
from PIL import Image

import c2s_lightning
from c2s_lightning.cli import main
from c2s_lightning.data.records import IQARecord
from c2s_lightning.models.backbones import build_backbone
from c2s_lightning.models.export import export_pretrained
from c2s_lightning.models.fingerprint import weights_fingerprint
from c2s_lightning.models.protocol import ComparisonProtocol
from c2s_lightning.scoring import named_models
from c2s_lightning.scoring.bank import AnchorBank

RELEASE = named_models.NAMED_MODELS["compare2score"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory, tiny_backbone_cache):
    """The fake hub cache, the released folder it was made from, and the anchor images (worst first)."""
    root = tmp_path_factory.mktemp("hub")
    released = write_released_folder(tiny_backbone_cache("tiny-mplug-owl2"), root / "release-source")
    anchors = root / "anchor-source" / "data" / "train"
    anchors.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for k in range(5):  # darker to brighter, noisy; names sort in anchor order, as an image folder does
        pixels = np.clip(rng.normal(40 + 45 * k, 30, (24, 40, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(anchors / f"{k:02d}_anchor.png")
    cache = root / "hub"
    add_snapshot(cache, RELEASE.hub_id, released, RELEASE_COMMIT)
    add_snapshot(cache, RELEASE.anchors_hub_id, root / "anchor-source", ANCHORS_COMMIT, repo_type="dataset")
    return {"cache": cache, "released": released, "anchors": sorted(anchors.iterdir())}


@pytest.fixture
def offline(hub, monkeypatch, tmp_path):
    """huggingface_hub reads only the fake cache, every socket connection fails, and the project's
    cache (where the export is assembled) is this test's own."""
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(hub["cache"]))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("C2S_CACHE_DIR", str(tmp_path / "c2s-cache"))

    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tmp_path / "c2s-cache"


def _photos(folder, n=3):
    folder.mkdir()
    rng = np.random.default_rng(3)
    for k in range(n):
        Image.fromarray(rng.integers(0, 256, (30 + 4 * k, 36, 3), dtype=np.uint8)).save(folder / f"p{k}.png")
    return sorted(folder.iterdir())


def test_list_models_names_the_release():
    models = c2s_lightning.list_models()
    assert "compare2score" in models
    assert models["compare2score"].hub_id == "q-future/Compare2Score"
    assert len(models["compare2score"].anchors) == 5


def test_create_metric_by_name_scores_as_a_hand_made_export_of_the_same_release(offline, hub, tmp_path):
    photos = _photos(tmp_path / "photos")
    metric = c2s_lightning.create_metric("compare2score", device="cpu", cache=False)
    scores = metric(photos)
    assert scores.shape == (3,) and torch.isfinite(scores).all()

    folder = offline / "models" / f"compare2score-{RELEASE_COMMIT[:12]}"
    protocol = ComparisonProtocol.load(folder)
    assert protocol.weights_fingerprint == weights_fingerprint(hub["released"])
    bank = AnchorBank.load(folder / "anchors.json")
    assert [a.path.read_bytes() for a in bank.anchors] == [p.read_bytes() for p in hub["anchors"]]
    assert [a.mos for a in bank.anchors] == [1.09, 2.02, 2.96, 3.21, 4.01]

    # the same weights and anchors through the ordinary route: released folder -> export with a bank
    backbone = build_backbone(str(hub["released"]))
    assert protocol.image_preprocessing == ComparisonProtocol.for_backbone(backbone).image_preprocessing
    records = [IQARecord(path=p, mos=m, std=s, ref=None, dataset="koniq10k")
               for p, (m, s) in zip(hub["anchors"], RELEASE.anchors)]
    by_hand = export_pretrained(backbone, out_dir=tmp_path / "by-hand")
    expected = c2s_lightning.score_images(photos, by_hand, anchors=AnchorBank(records, "koniq10k", "x"), device="cpu",
                                          cache=False)
    torch.testing.assert_close(scores, expected, rtol=0, atol=1e-6)
    # a folder is taken as the images under it, sorted, as `score` takes it
    torch.testing.assert_close(metric(tmp_path / "photos"), scores, rtol=0, atol=1e-9)


def test_the_export_is_assembled_once(offline, monkeypatch):
    first = named_models.resolve_export("compare2score")
    monkeypatch.setattr(named_models, "_assemble", lambda *a: pytest.fail("assembled a second time"))
    assert named_models.resolve_export("compare2score") == first
    assert {"compare2score.json", "anchors.json", "config.json"} <= {p.name for p in first.iterdir()}


def test_score_command_takes_the_name(offline, tmp_path):
    photos = _photos(tmp_path / "photos", n=2)
    out = tmp_path / "scores.csv"
    assert main(["score", str(tmp_path / "photos"), "--checkpoint", "compare2score", "--device", "cpu",
                 "--no-cache", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == [str(p) for p in photos] and all(r["score"] for r in rows)


def test_a_release_missing_from_the_offline_cache_says_how_to_get_it(offline, monkeypatch, tmp_path):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(FileNotFoundError, match="hf download q-future/Compare2Score"):
        named_models.resolve_export("compare2score")


@pytest.mark.parametrize("given, error, message", [
    ("compare2scor", FileNotFoundError, r"no such folder compare2scor, and 'compare2scor' is not a model name "
                                        r"\(compare2score\); did you mean 'compare2score'\?"),
    ("empty", ValueError, "is not an exported model folder"),
    ("file.txt", NotADirectoryError, "is a file, not an exported model folder"),
])
def test_a_wrong_checkpoint_says_what_it_is_not(tmp_path, monkeypatch, given, error, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(error, match=message):
        named_models.resolve_export(given)
