"""A tiny scorer's parts for tests that run commands or the API on an export: random PNGs, a tiny
LLaVA export that pads to a square, and an anchor bank chosen from a pool of ten such PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from c2s_lightning.data.records import IQARecord
from c2s_lightning.models.backbones import build_backbone
from c2s_lightning.models.export import export_pretrained
from c2s_lightning.models.protocol import ComparisonProtocol, image_preprocessing
from c2s_lightning.scoring.bank import AnchorBank


def png(path: Path, seed: int, size=(24, 32)) -> Path:
    """A random RGB PNG of ``size`` (height, width) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def tiny_export(folder: Path) -> Path:
    """``folder/export``: a tiny-llava (seed 5) export whose protocol pads images to a square; no bank."""
    backbone = build_backbone("tiny-llava", seed=5)
    return export_pretrained(backbone, out_dir=folder / "export",
                             protocol=ComparisonProtocol.for_backbone(backbone, image_preprocessing(True)))


def pool_bank(folder: Path) -> AnchorBank:
    """A bank chosen from ``folder/pool``: ten random PNGs with MOS 0 to 9 (std 0.5); no matrix yet."""
    records = [IQARecord(path=png(folder / "pool" / f"a{i}.png", i), mos=float(i), std=0.5, ref=None,
                         dataset="pool") for i in range(10)]
    return AnchorBank.from_records(records, dataset="pool", split="all images")
