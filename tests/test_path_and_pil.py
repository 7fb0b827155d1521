"""A path and the same image already decoded: why a JPEG can score a little differently (docs/newcomer.md).

A JPEG path is decoded at a reduced DCT scale when it is much larger than the model's input (the
protocol's ``decode_size``: 2x the input side is kept); a PIL image arrives decoded at full size.
Decoded the same way, the two score exactly alike; a PNG (no DCT scaling) always does.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import c2s_lightning
from c2s_lightning.data.records import IQARecord
from c2s_lightning.models.export import export_pretrained
from c2s_lightning.scoring.bank import AnchorBank


def _photo(seed: int, size=(480, 360)) -> Image.Image:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size[0])[None, :, None] * np.linspace(0, 1, size[1])[:, None, None] * 255
    return Image.fromarray(np.clip(ramp + rng.normal(0, 20 * seed, (size[1], size[0], 3)), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def metric(tmp_path_factory, tiny_backbone_cache):
    folder = tmp_path_factory.mktemp("path-pil")
    anchors = []
    for k in range(3):
        _photo(k + 1).save(folder / f"a{k}.png")
        anchors.append(IQARecord(path=folder / f"a{k}.png", mos=float(k), std=0.5, ref=None, dataset="x"))
    export = export_pretrained(tiny_backbone_cache("tiny-llava"), out_dir=folder / "export")
    metric = c2s_lightning.create_metric(export, device="cpu", anchors=AnchorBank(anchors, "x", "y"), cache=False)
    return metric, folder


def test_a_png_scores_the_same_as_a_path_and_decoded(metric):
    metric, folder = metric
    _photo(2).save(folder / "test.png")
    assert metric(folder / "test.png").item() == metric(Image.open(folder / "test.png")).item()


def test_a_large_jpeg_path_is_decoded_at_reduced_scale(metric):
    metric, folder = metric
    _photo(2).save(folder / "test.jpg", quality=90)
    as_path = metric(folder / "test.jpg").item()
    full = metric(Image.open(folder / "test.jpg")).item()
    drafted = Image.open(folder / "test.jpg")
    scale = metric.scorer.pipeline.draft_size(drafted.size)
    drafted.draft("RGB", scale)  # what the path's decoding does: 480x360 -> 120x90 for a 32 px model
    assert drafted.size == (120, 90)
    assert as_path == metric(drafted.convert("RGB")).item()
    assert as_path != full and abs(as_path - full) < 0.01
