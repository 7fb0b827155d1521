"""One image through training, evaluation and ``score``: the model receives the same pixels."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import LlavaForConditionalGeneration

from c2s_lightning.evaluation.evaluator import SoftComparisonEvaluator
from c2s_lightning.cli import main
from c2s_lightning.data.datamodule import ComparisonDataModule
from c2s_lightning.data.images import ImagePreprocessing, load_image
from c2s_lightning.data.mix import MixEntry
from c2s_lightning.models.export import export_pretrained
from c2s_lightning.models.module import Compare2ScoreModule
from c2s_lightning.scoring.bank import AnchorBank


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Two non-square JPEGs large enough for DCT scaling at the tiny model's 32 px; X is scored."""
    tmp = tmp_path_factory.mktemp("paths")
    rng = np.random.default_rng(0)
    for name, (w, h) in {"anchor.jpg": (180, 260), "x.jpg": (300, 200)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp / name, quality=90)
    (tmp / "labels.csv").write_text("path,score,std\nanchor.jpg,4.0,0.1\nx.jpg,2.0,1.0\n")
    dm = ComparisonDataModule([MixEntry(name="list", root=str(tmp / "labels.csv"), pairs=2, split="random",
                                           split_options={"fractions": [1.0, 0.0, 0.0]})],
                              batch_size=2, val_pairs=0, pad_to_square=True)
    module = Compare2ScoreModule(model="tiny-llava")
    module.configure_model()
    dm.connect(module)  # what the CLI does before training
    export = export_pretrained(module.backbone, out_dir=tmp / "export")
    bank = AnchorBank.from_records(dm.mix.records("list", "train"), dataset="list", split="train", alpha=1, beta=1)
    bank.save(tmp / "bank.json")
    return tmp, dm, module, export


@pytest.fixture
def seen(monkeypatch):
    """``pixel_values`` of every call of the vision tower (the fast scorer's entry for pixels)."""
    calls: list[torch.Tensor] = []
    original = LlavaForConditionalGeneration.get_image_features

    def spy(self, pixel_values=None, **kwargs):
        calls.append(pixel_values.detach().clone())
        return original(self, pixel_values=pixel_values, **kwargs)

    monkeypatch.setattr(LlavaForConditionalGeneration, "get_image_features", spy)
    return calls


def test_training_evaluation_and_score_give_the_model_identical_pixels(setup, seen):
    tmp, dm, module, export = setup
    x = tmp / "x.jpg"
    # tiny LLaVA's SigLIP processor: image_mean 0.5 x 255 = 127.5, truncated, pads every image
    assert dm.image_pipeline == ImagePreprocessing(pad_to_square=True, decode_size=32, pad_colour=(127, 127, 127))

    train_rows = next(iter(dm.train_dataloader()))["pixel_values"]  # both pairs: 4 images

    evaluator = SoftComparisonEvaluator(alpha=1, beta=1, eval_part="train", workers=2)
    evaluator.scorer(SimpleNamespace(datamodule=dm), module).score([x])
    evaluation = seen[-1]  # the anchor is encoded first and kept; then the test image

    assert main(["score", str(x), "--checkpoint", str(export), "--anchors", str(tmp / "bank.json"),
                 "--pad-to-square", "--workers", "2", "--out", str(tmp / "x.csv")]) == 0
    scoring = seen[-1]

    assert evaluation.shape == scoring.shape == (1, 3, 32, 32)
    assert torch.equal(evaluation, scoring)
    assert sum(torch.equal(row, evaluation[0]) for row in train_rows) == 2  # X is in both training pairs
    # padding matters: the unpadded image gives other pixels
    unpadded = module.backbone.processor.image_processor(images=[load_image(x)], return_tensors="pt")
    assert not torch.equal(unpadded["pixel_values"], evaluation)


def test_score_gives_identical_scores_with_and_without_image_feed_workers(setup, tmp_path):
    tmp, _, _, export = setup
    rng = np.random.default_rng(1)
    images = []
    for i in range(7):
        images.append(tmp_path / f"img{i}.jpg")
        Image.fromarray(rng.integers(0, 256, (120 + 10 * i, 90, 3), dtype=np.uint8)).save(images[-1])
    tables = []
    for workers in (0, 3):
        out = tmp_path / f"w{workers}.csv"
        assert main(["score", *map(str, images), "--checkpoint", str(export), "--anchors",
                     str(tmp / "bank.json"), "--workers", str(workers), "--batch-size", "2", "--out", str(out)]) == 0
        tables.append(list(csv.DictReader(out.open())))
    assert tables[0] == tables[1] and len(tables[0]) == 7 and all(r["score"] for r in tables[0])
