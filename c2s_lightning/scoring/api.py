"""``score_images``: score images with an exported checkpoint and an anchor bank, in one call."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from c2s_lightning.data.images import ImagePreprocessing
from c2s_lightning.scoring.bank import AnchorBank
from c2s_lightning.scoring.scorer import Compare2Scorer, ImageLike


def load_scorer(checkpoint: str | os.PathLike, anchors: str | os.PathLike | AnchorBank,
                batch_size: int = 16, recompute_anchors: bool = False, device: str | None = None,
                dtype: str = "float32", **options) -> Compare2Scorer:
    """A scorer over an exported Hugging Face folder (``export_pretrained``) and an anchor bank.

    Args:
        checkpoint: Exported model folder (merged weights or a LoRA adapter folder).
        anchors: Anchor bank JSON (``anchors build``) or an ``AnchorBank``.
        batch_size: Image pairs per forward pass.
        recompute_anchors: Recompute the anchor matrix if the bank's came from another model.
        device: Where the model runs (``cuda``, ``cpu``, ...); default: the first GPU if any.
        dtype: Weight dtype: ``float32``, ``bfloat16`` or ``float16`` (a 7B model in float32 needs
            ~33 GB of memory; bfloat16 halves it).
        **options: Further ``Compare2Scorer`` options (``matrix``, ``temperature``, ``link``,
            ``pad_to_square``, ``workers``, ...); without a ``pipeline``, images are decoded at the
            model's input size (``ImagePreprocessing.for_encoder``).
    """
    from c2s_lightning.models.export import load_backbone
    from c2s_lightning.models.fast_comparator import FastComparator

    bank = anchors if isinstance(anchors, AnchorBank) else AnchorBank.load(anchors)
    backbone = load_backbone(checkpoint, dtype=dtype)
    backbone.model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    comparator = FastComparator(backbone)
    if "pipeline" not in options:  # decode no larger than this model's input, as training does
        options["pipeline"] = ImagePreprocessing.for_encoder(backbone.encoder, options.pop("pad_to_square", False))
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
