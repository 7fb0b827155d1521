"""``create_metric``, ``list_backbones`` and ``list_datasets``: the pyiqa-style surface over an export folder."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

import c2s_lightning
from c2s_lightning.cli import main
from tiny_scorer import pool_bank, tiny_export

NINE = {"live", "csiq", "kadid10k", "bid", "clive", "koniq10k", "tid2013", "spaq", "agiqa3k"}


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A complete scorer folder: a tiny export plus its own anchor bank with a computed matrix."""
    tmp = tmp_path_factory.mktemp("metric")
    out = tiny_export(tmp)
    bank = pool_bank(tmp)
    from c2s_lightning.scoring.from_export import load_scorer

    load_scorer(out, bank, device="cpu", cache=False).anchor_block()
    bank.save(out / "anchors.json")
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(2)
    paths = []
    for i, size in enumerate([(20, 20), (28, 20), (20, 36)]):
        paths.append(folder / f"t{i}.png")
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(paths[-1])
    return paths


def score_command(images, export, out):
    # no comparison cache on either side: the two must compute the same scores independently
    assert main(["score", *map(str, images), "--checkpoint", str(export), "--out", str(out), "--device", "cpu",
                 "--no-cache"]) == 0
    return torch.tensor([float(r["score"]) for r in csv.DictReader(out.open())], dtype=torch.float64)


def test_the_metric_scores_paths_pil_and_tensors_as_the_score_command_loading_once(export, images, tmp_path,
                                                                                      monkeypatch):
    import c2s_lightning.models.export as export_module

    calls = []
    real = export_module.load_export
    monkeypatch.setattr(export_module, "load_export", lambda *a, **k: calls.append(a) or real(*a, **k))
    metric = c2s_lightning.create_metric(export, device="cpu", batch_size=7, cache=False)
    assert isinstance(metric, torch.nn.Module) and metric.lower_better is False
    assert metric.protocol.pad_to_square is True and metric.score_scale["readoff"] == "raw"
    by_path = metric([str(p) for p in images])
    one = metric(images[1])
    pil = metric([Image.open(p) for p in images])
    # same-size images as one [B, 3, H, W] batch: PNG pixels / 255 must give the PNG's scores back
    square = torch.stack([torch.from_numpy(np.array(Image.open(images[0]))).permute(2, 0, 1).double() / 255] * 2)
    tensor = metric(square.float())
    assert len(calls) == 1  # the model was loaded once, at creation
    expected = score_command(images, export, tmp_path / "s.csv")
    assert by_path.shape == (3,) and torch.allclose(by_path, expected, atol=1e-5)
    assert torch.allclose(one, expected[1:2], atol=1e-5)
    assert torch.allclose(pil, expected, atol=1e-5)
    assert torch.allclose(tensor, expected[[0, 0]], atol=1e-5)


def test_the_metric_rejects_tensors_it_cannot_read_as_images(export):
    metric = c2s_lightning.create_metric(export, device="cpu")
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        metric(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        metric(torch.rand(1, 3, 8, 8) * 255)


def test_the_listings_name_every_family_and_dataset():
    from c2s_lightning.models.tiny import TINY_FAMILIES

    backbones = c2s_lightning.list_backbones()
    assert set(TINY_FAMILIES) <= set(backbones) and {"mplug-owl2", "llava", "llava-next", "qwen2-vl",
                                                     "idefics3"} <= set(backbones)
    assert all(info.description and info.example for info in backbones.values())
    datasets = c2s_lightning.list_datasets()
    assert set(datasets) == NINE | {"list"}
    assert all(info.description and info.layout for info in datasets.values())
    assert datasets["koniq10k"].layout.startswith("koniq10k/")
