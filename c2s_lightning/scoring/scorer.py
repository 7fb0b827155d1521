"""``Compare2Scorer``: soft comparisons against an anchor bank, then one MAP estimate per image.

The anchor-vs-anchor block is computed once per model and kept in the bank, so a test image needs
only its row against the ``n`` anchors (whole rows in one call from a ``FastComparator``, which
reuses its work on the anchors), and the MAP step runs once for all images. No Lightning import.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import torch
from PIL import Image

from c2s_lightning.data.images import ImagePreprocessing
from c2s_lightning.models.protocol import ComparisonProtocol
from c2s_lightning.scoring.bank import AnchorBank
from c2s_lightning.scoring.image_feed import ImageMemo, prefetch
from c2s_lightning.scoring.map import comparison_matrix, map_estimate, readoff
from c2s_lightning.scoring.soft import count_probability, soft_probability

ImageLike = str | os.PathLike | Image.Image


class LevelComparator(Protocol):
    """What the scorer needs from a model: level logits of (first, second) image pairs."""

    model_id: str

    def level_logits(self, first_images: Sequence[Image.Image], second_images: Sequence[Image.Image],
                     batch_size: int | None = None) -> torch.Tensor: ...


class Compare2Scorer:
    """Scores images by adaptive soft comparison against anchors (Compare2Score, section 4).

    Args:
        comparator: Gives ``[B, 5]`` level logits for (first, second) pairs and has a ``model_id``;
            if it also has ``anchor_rows`` (``[T, n, 5]`` for test images against anchors, anchor
            first), that is used for every anchor comparison.
        anchor_bank: The anchors; its anchor matrix is computed on first use when absent.
        matrix: ``probability`` (soft comparison, the method) or ``count`` (argmax wins, ablation).
        temperature: Softmax temperature of the soft comparison.
        link: MAP link function, ``normal`` (Thurstone Case V) or ``logistic``.
        readoff: ``raw`` MAP score of the test image, or ``minmax`` (the release's 0-100 rescaling).
        batch_size: Image pairs per forward pass.
        protocol: The model's comparison protocol (``compare2score.json``): its image preprocessing
            applies to every image, paths and PIL images alike; recorded in the bank with the matrix.
        pad_to_square: Pad images to a square with their mean colour; None: as the protocol (or
            ``pipeline``) says, no padding without one. Overriding the protocol logs a warning.
        recompute_anchors: Recompute the anchor matrix (once, on first use) even if the bank holds
            one; otherwise a matrix of another model, preprocessing or images is a ``StaleAnchorBankError``.
        pipeline: How paths and PIL images become the model's images without a ``protocol``
            (``ImagePreprocessing.for_encoder``: the one training used); default: full resolution.
        workers: Threads that load the next images while the model compares the current ones
            (0: load in this thread); the scores do not depend on it.
        memo: An ``ImageMemo`` that keeps loaded images between calls; it must load with the
            scorer's pipeline (which it gives when neither ``protocol`` nor ``pipeline`` does).
    """

    def __init__(self, comparator: LevelComparator, anchor_bank: AnchorBank, *, matrix: str = "probability",
                 temperature: float = 1.0, link: str = "normal", readoff: str = "raw", batch_size: int = 16,
                 protocol: ComparisonProtocol | None = None, pad_to_square: bool | None = None,
                 recompute_anchors: bool = False, pipeline: ImagePreprocessing | None = None, workers: int = 0,
                 memo: ImageMemo | None = None):
        if matrix not in ("probability", "count"):
            raise ValueError(f"matrix must be 'probability' or 'count', got {matrix!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.comparator, self.bank = comparator, anchor_bank
        self.matrix, self.temperature, self.link, self.readoff = matrix, temperature, link, readoff
        self.protocol = protocol.with_preprocessing(pad_to_square) if protocol is not None else None
        self.pipeline = _pipeline(self.protocol, pipeline, memo, pad_to_square)
        self.preprocessing = self.pipeline.to_dict()
        self.batch_size, self.pad_to_square = batch_size, self.pipeline.pad_to_square
        self.recompute_anchors, self.workers = recompute_anchors, workers
        self._load = memo if memo is not None else self.pipeline.load
        self._recomputed = False

    def _probability(self, level_logits: torch.Tensor) -> torch.Tensor:
        if self.matrix == "count":
            return count_probability(level_logits)
        return soft_probability(level_logits, self.temperature)

    def _compare(self, firsts: list[Image.Image], seconds: list[Image.Image]) -> torch.Tensor:
        """P(second beats first) for each pair."""
        logits = self.comparator.level_logits(firsts, seconds, batch_size=self.batch_size)
        return self._probability(logits.cpu().double())

    @functools.cached_property
    def anchor_images(self) -> list[Image.Image]:
        return list(prefetch(self._load, [a.path for a in self.bank.anchors], self.workers))

    def anchor_block(self) -> torch.Tensor:
        """``[n, n]`` P(anchor i beats anchor j): the bank's, or computed once (both orders).

        Raises:
            StaleAnchorBankError: the bank's matrix came from another model, preprocessing or
                anchor images and ``recompute_anchors`` is off.
        """
        model_id = str(self.comparator.model_id)
        if self.bank.matrix is None or (self.recompute_anchors and not self._recomputed):
            self._recomputed = True
            # pair (first=j, second=i) gives P(i beats j); comparison_matrix then averages the
            # two presentation orders as (A + 1 - A^T) / 2.
            block = self.rows(self.anchor_images) if self._fast else self._plain_block()
            block.fill_diagonal_(0.5)
            protocol = None if self.protocol is None else self.protocol.to_dict()
            self.bank.set_matrix(block.tolist(), model_id, self.preprocessing, protocol=protocol)
        return torch.tensor(self.bank.matrix_for(model_id, self.preprocessing), dtype=torch.float64)

    def rows(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """``[B, n]`` P(test image beats anchor j), anchor shown first, test image second."""
        n = len(self.bank.anchors)
        if self._fast:
            logits = self.comparator.anchor_rows(self.anchor_images, images, batch_size=self.batch_size)
            return self._probability(logits.cpu().double())
        firsts = [a for _ in images for a in self.anchor_images]
        seconds = [img for img in images for _ in range(n)]
        return self._compare(firsts, seconds).reshape(len(images), n)

    @property
    def _fast(self) -> bool:
        return hasattr(self.comparator, "anchor_rows")

    def _plain_block(self) -> torch.Tensor:
        """``[n, n]`` P(anchor i beats anchor j) pair by pair, diagonal left 0.5."""
        n = len(self.bank.anchors)
        i, j = (~torch.eye(n, dtype=torch.bool)).nonzero().unbind(-1)
        block = torch.full((n, n), 0.5, dtype=torch.float64)
        block[i, j] = self._compare([self.anchor_images[k] for k in j], [self.anchor_images[k] for k in i])
        return block

    def score(self, images: Iterable[ImageLike], progress: Any = None) -> torch.Tensor:
        """Scores ``[B]`` (float64) of images given as paths or PIL images; ``progress``, if given, is
        called with the number of images just scored."""
        block = self.anchor_block()
        images = list(images)
        if not images:
            return torch.empty(0, dtype=torch.float64)
        rows = []
        step = max(1, self.batch_size // max(1, len(self.bank.anchors)))
        # the next chunk loads in the workers while the model compares this one
        with contextlib.closing(prefetch(self._load, images, self.workers, ahead=step + 2 * self.workers)) as loaded:
            for _ in range(0, len(images), step):
                chunk = list(itertools.islice(loaded, step))
                rows.append(self.rows(chunk).double())
                if progress is not None:
                    progress(len(chunk))
        # One batched MAP for every image: [N, n+1, n+1] is small, and per-matrix Newton
        # iterates do not depend on the other matrices of the batch.
        P = comparison_matrix(block, torch.cat(rows))
        return readoff(map_estimate(P, link=self.link), self.readoff)


def _pipeline(protocol: ComparisonProtocol | None, pipeline: ImagePreprocessing | None, memo: ImageMemo | None,
              pad_to_square: bool | None) -> ImagePreprocessing:
    """The one pipeline a scorer loads with: the protocol's (its padding already overridden), else
    ``pipeline``, else the memo's, else full resolution; sources that disagree are an error."""
    chosen = pipeline or (memo.pipeline if memo is not None else None)
    if protocol is not None:
        own = ImagePreprocessing.from_dict(protocol.image_preprocessing)
        if pipeline is not None and pipeline != own:
            raise ValueError(f"pipeline {pipeline} contradicts the protocol's image preprocessing {own}")
        chosen = own
    elif chosen is None:
        chosen = ImagePreprocessing(pad_to_square=bool(pad_to_square))
    elif pad_to_square is not None and bool(pad_to_square) != chosen.pad_to_square:
        raise ValueError(f"pad_to_square={pad_to_square} contradicts the pipeline {chosen}")
    if memo is not None and memo.pipeline != chosen:
        raise ValueError(f"the memo loads with {memo.pipeline}, the scorer with {chosen}")
    return chosen
