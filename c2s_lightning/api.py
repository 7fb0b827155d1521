"""The public Python API (``__all__``). A tensor becomes 8-bit images as saving it losslessly would
(``round(x * 255)``), so it scores like the same picture read from a PNG; a JPEG path may be decoded
at a reduced DCT scale, a decoded PIL image is not, so the two can differ in the third decimal
(``docs/newcomer.md``). The quickstart's export is a toy: its scores on real photos mean nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import torch
from PIL import Image

from c2s_lightning.scoring.bank import AnchorBank
from c2s_lightning.scoring.from_export import load_scorer
from c2s_lightning.scoring.image_feed import expand_image_paths
from c2s_lightning.scoring.named_models import list_models, resolve_export

__all__ = ["Compare2ScoreMetric", "create_metric", "list_backbones", "list_datasets", "list_models", "score_images"]

SCORE_SCALES = {
    "raw": "MAP score of Thurstone's Case V model: higher is better, standard normal units "
           "(N(0, 1) prior) on the scale the export's anchors span; comparable only under one bank",
    "minmax": "0-100: the image's MAP score min-max rescaled among itself and the anchors (the release's read-off)",
}


def tensor_to_images(batch: torch.Tensor) -> list[Image.Image]:
    """``[B, 3, H, W]`` (or ``[3, H, W]``) floats in [0, 1] as RGB PIL images, ``round(x * 255)``."""
    if batch.dim() == 3:
        batch = batch.unsqueeze(0)
    if batch.dim() != 4 or batch.shape[1] != 3:
        raise ValueError(f"a tensor of images must be [B, 3, H, W] (or [3, H, W]); got {list(batch.shape)}")
    if not batch.is_floating_point():
        raise ValueError(f"a tensor of images must hold floats in [0, 1]; got {batch.dtype}")
    low, high = batch.min().item(), batch.max().item()
    if low < 0.0 or high > 1.0:
        raise ValueError(f"a tensor of images must hold values in [0, 1]; got values in [{low:.4g}, {high:.4g}]")
    pixels = (batch.detach().float().cpu() * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(p, mode="RGB") for p in pixels]


def as_image_list(images) -> list:
    """Whatever ``forward`` accepts (a folder: the images under it, sorted), as paths and PIL images."""
    if isinstance(images, torch.Tensor):
        return tensor_to_images(images)
    if isinstance(images, Image.Image):
        return [images]
    if isinstance(images, (str, os.PathLike)):
        return expand_image_paths([images])
    if isinstance(images, Sequence):
        return [item for x in images for item in as_image_list(x)]
    raise TypeError(f"score a path, a list of paths, PIL images or a [B, 3, H, W] tensor; got {type(images).__name__}")


class Compare2ScoreMetric(torch.nn.Module):
    """A loaded Compare2Score scorer as a module (see ``create_metric``): model, protocol and anchor
    bank are loaded once; the anchor block is computed on the first call and kept.

    Attributes:
        lower_better: Always False: higher scores mean better quality.
        score_scale: ``{"readoff": ..., "meaning": ...}``, what a score's units are.
        protocol: The export's ``ComparisonProtocol`` (template, levels, preprocessing, fingerprint).
        scorer: The underlying ``Compare2Scorer``.
    """

    lower_better = False

    def __init__(self, scorer):
        super().__init__()
        self.scorer = scorer
        self._turn = threading.Lock()
        comparator = scorer.comparator
        while not hasattr(comparator, "backbone"):  # under a comparison cache's wrapper
            comparator = comparator.inner
        self.model = comparator.backbone.model  # registered: .to(device) / .parameters() reach the network
        self.protocol = scorer.protocol
        self.score_scale = {"readoff": scorer.readoff, "meaning": SCORE_SCALES[scorer.readoff]}

    @torch.no_grad()
    def forward(self, images) -> torch.Tensor:
        """1-D tensor of scores (float64, CPU), one per image, in the order given.

        Safe to call from several threads: calls take turns (the comparator keeps per-call state,
        and the comparison cache gives each thread its own database connection).
        """
        images = as_image_list(images)
        with self._turn:
            return self.scorer.score(images)

    def extra_repr(self) -> str:
        return f"lower_better=False, readoff={self.scorer.readoff!r}, anchors={len(self.scorer.bank.anchors)}"


def create_metric(export_dir: str | os.PathLike, device: str | torch.device | None = None,
                  dtype: str | torch.dtype | None = None, batch_size: int = 16,
                  anchors: str | os.PathLike | AnchorBank | None = None, **options) -> Compare2ScoreMetric:
    """A named model or an export folder as a metric module; call it on images to get their scores.

    Args:
        export_dir: A model name from ``list_models()`` (its export is assembled from the Hugging
            Face cache on first use, ``scoring/named_models.py``), or an exported model folder
            (``fit`` writes ``<run>/export``) holding ``compare2score.json`` and ``anchors.json``.
        device: Where the model runs; default: the first GPU if any, else the CPU.
        dtype: Weight dtype (``"float32"``, ``"bfloat16"``, ``"float16"`` or a ``torch.dtype``);
            default float32.
        batch_size: Image pairs per forward pass.
        anchors: Another anchor bank (path or ``AnchorBank``); default: the export's own.
        **options: Further ``load_scorer`` options (``readoff="minmax"``, ``pad_to_square``, ...).

    Returns:
        A ``Compare2ScoreMetric``: ``metric(images) -> Tensor[B]``, ``metric.lower_better``,
        ``metric.score_scale``, ``metric.protocol``.
    """
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).removeprefix("torch.")
    scorer = load_scorer(resolve_export(export_dir), anchors, batch_size=batch_size,
                         device=None if device is None else str(device), dtype=dtype or "float32", **options)
    return Compare2ScoreMetric(scorer)


def score_images(images, checkpoint: str | os.PathLike,
                 anchors: str | os.PathLike | AnchorBank | None = None, batch_size: int = 16,
                 **options) -> torch.Tensor:
    """Quality scores (raw MAP: higher is better) in one call, loading the model each time
    (``create_metric`` loads it once for many calls).

    Args:
        images: What a metric takes: paths, folders, PIL images, a ``[B, 3, H, W]`` tensor, or a list.
        checkpoint: A model name (``list_models()``) or an exported model folder.
        anchors: Anchor bank JSON path or ``AnchorBank``; default: the export's own bank.
        batch_size: Image pairs per forward pass.
        **options: See ``scoring.from_export.load_scorer``.

    Returns:
        Tensor ``[number of images]`` of MAP scores.
    """
    return create_metric(checkpoint, anchors=anchors, batch_size=batch_size, **options)(images)


def list_backbones() -> dict:
    """The backbone families ``model.model`` accepts (``BackboneInfo`` per name): every ``tiny-*``
    family, mPLUG-Owl2 and the Hugging Face families."""
    from c2s_lightning.models.backbone_list import list_backbones as listed

    return listed()


def list_datasets() -> dict:
    """The dataset names ``read_dataset`` and the configs accept (``DatasetInfo`` per name: its
    ``description`` and the ``layout`` its reader expects): the nine native datasets and ``list``."""
    from c2s_lightning.data.datasets import DATASETS

    return dict(DATASETS)
