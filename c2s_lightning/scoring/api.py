"""``score_images``: score images with an exported checkpoint and an anchor bank, in one call."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from c2s_lightning.scoring.bank import AnchorBank
from c2s_lightning.scoring.scorer import Compare2Scorer, ImageLike


def load_scorer(checkpoint: str | os.PathLike, anchors: str | os.PathLike | AnchorBank,
                batch_size: int = 16, recompute_anchors: bool = False, **options) -> Compare2Scorer:
    """A scorer over an exported Hugging Face folder (``export_pretrained``) and an anchor bank.

    Args:
        checkpoint: Exported model folder (merged weights or a LoRA adapter folder).
        anchors: Anchor bank JSON (``anchors build``) or an ``AnchorBank``.
        batch_size: Image pairs per forward pass.
        recompute_anchors: Recompute the anchor matrix if the bank's came from another model.
        **options: Further ``Compare2Scorer`` options (``matrix``, ``temperature``, ``link``, ...).
    """
    from c2s_lightning.models.comparator import Comparator
    from c2s_lightning.models.export import load_backbone

    bank = anchors if isinstance(anchors, AnchorBank) else AnchorBank.load(anchors)
    comparator = Comparator(load_backbone(checkpoint))
    return Compare2Scorer(comparator, bank, batch_size=batch_size, recompute_anchors=recompute_anchors,
                          **options)


def score_images(images: Sequence[ImageLike], checkpoint: str | os.PathLike,
                 anchors: str | os.PathLike | AnchorBank, batch_size: int = 16, **options) -> torch.Tensor:
    """Quality scores (higher is better) of images given as paths or PIL images.

    Args:
        images: Paths or PIL images.
        checkpoint: Exported model folder.
        anchors: Anchor bank JSON path or ``AnchorBank``.
        batch_size: Image pairs per forward pass.
        **options: See ``load_scorer``.

    Returns:
        Tensor ``[len(images)]`` of MAP scores.
    """
    return load_scorer(checkpoint, anchors, batch_size=batch_size, **options).score(images)
