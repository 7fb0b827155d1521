"""A scorer over a model as it is now (during or right after training), not over an export.

The evaluation and export callbacks both build it here, so they load images exactly as the data
module trained on them (``ImagePreprocessing.for_encoder``, as the run's protocol records). No Lightning import.
"""

from __future__ import annotations

from typing import Any

from c2s_lightning.data.images import ImagePreprocessing
from c2s_lightning.scoring.bank import AnchorBank
from c2s_lightning.scoring.image_feed import ImageMemo
from c2s_lightning.scoring.scorer import Compare2Scorer, LevelComparator


def training_pipeline(comparator: LevelComparator, image_options: dict[str, Any]) -> ImagePreprocessing:
    """How training loads images for ``comparator``'s backbone (``image_options``: the data
    module's ``image_options()``)."""
    encoder = getattr(getattr(comparator, "backbone", None), "encoder", None)
    return ImagePreprocessing.for_encoder(encoder, **image_options)


def live_scorer(comparator: LevelComparator, bank: AnchorBank, image_options: dict[str, Any], *,
                memo: ImageMemo | None = None, **options) -> Compare2Scorer:
    """A ``Compare2Scorer`` (``options``: its further options) over the model's comparator, possibly
    wrapped by the comparison cache, that loads images as training does.

    Args:
        memo: Decoded images kept between calls, built with ``training_pipeline`` (its pipeline is
            then the scorer's; the caller rebuilds it when the model's pipeline changes).
    """
    pipeline = memo.pipeline if memo is not None else training_pipeline(comparator, image_options)
    return Compare2Scorer(comparator, bank, pipeline=pipeline, memo=memo, **options)


def live_anchor_bank(comparator: LevelComparator, bank: AnchorBank, image_options: dict[str, Any],
                     **options) -> AnchorBank:
    """``bank`` with its anchor matrix computed by ``comparator`` as it is now."""
    scorer = live_scorer(comparator, bank, image_options, **options)
    scorer.anchor_block()
    return scorer.bank
