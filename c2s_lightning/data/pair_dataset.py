"""The pairs of a mix as training items: images loaded and augmented, prompts, answers, collate.

An item is one comparison instruction (two images, the question, the level word as the answer),
optionally with single-image rating examples of the same images. The collate hands the items to
the model's encoder, which the data module receives through ``connect``.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from c2s_lightning.data import prompts
from c2s_lightning.data.images import ImagePreprocessing
from c2s_lightning.data.levels import LEVELS
from c2s_lightning.data.pairs import Pair


class PairDataset(Dataset):
    """Comparison instructions; pairs are re-drawn per epoch when ``resample`` is on.

    Indices are ``(epoch, i)`` (what :class:`~c2s_lightning.data.loader.EpochSampler` yields, so
    worker processes read the pairs of the epoch being trained) or a plain ``i`` (epoch 0's pairs:
    validation, or a sampler Lightning swapped in).

    Args:
        draw: ``draw(epoch) -> pairs`` (e.g. ``Mix.train_pairs``).
        resample: Call ``draw`` for every epoch; otherwise epoch 0's pairs serve every epoch.
        pipeline: How images load (the model's, from ``connect``).
        ratings: Image path -> rating word, needed when ``rating_images`` > 0.
        rating_images: Single-image rating examples per item, made of its own images: 0, 1 (the
            second image) or 2 (then the first).
        augment: Flip/rotate each image by multiples of 90 degrees, fixed per epoch, pair and image.
    """

    def __init__(self, draw: Callable[[int], list[Pair]], resample: bool, pipeline: ImagePreprocessing,
                 ratings: dict[Path, str] | None = None, rating_images: int = 0, augment: bool = False):
        self._draw, self.resample, self.pipeline, self.augment = draw, resample, pipeline, augment
        self.ratings, self.rating_images = ratings or {}, rating_images
        self._cache: dict[int, list[Pair]] = {}

    def pairs(self, epoch: int = 0) -> list[Pair]:
        key = epoch if self.resample else 0
        if key not in self._cache:
            self._cache = {key: self._draw(key)}
        return self._cache[key]

    def __len__(self) -> int:
        return len(self.pairs(0))

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Any]:
        epoch, i = index if isinstance(index, tuple) else (0, index)
        pair = self.pairs(epoch)[i]
        images = [self.pipeline.load(pair.first.path), self.pipeline.load(pair.second.path)]
        if self.augment:
            images = [dihedral(image, f"{epoch}/{i}/{k}") for k, image in enumerate(images)]
        item = {"images": images, "prompt": prompts.COMPARISON_PROMPT,
                "answer": prompts.COMPARISON_ANSWER.format(level=pair.level), "level": LEVELS.index(pair.level),
                "dataset": pair.first.dataset}
        if self.rating_images:
            shown = [(images[1], pair.second), (images[0], pair.first)][: self.rating_images]
            item["rating_examples"] = [_rating_example(image, self.ratings[r.path]) for image, r in shown]
        return item


def fixed_draw(pairs: list[Pair]) -> Callable[[int], list[Pair]]:
    """A ``draw`` that gives ``pairs`` at every epoch (a partial, so worker processes can pickle it)."""
    return functools.partial(_same_pairs, list(pairs))


def _same_pairs(pairs: list[Pair], epoch: int) -> list[Pair]:
    return pairs


def dihedral(image, key: str):
    """One of the 8 flips/rotations by 90 degrees, chosen by ``key`` (the same on every worker)."""
    choice = random.Random(key).randrange(8)
    if choice & 4:
        image = image.transpose(Image.Transpose.TRANSPOSE)
    if choice & 2:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image.transpose(Image.Transpose.FLIP_TOP_BOTTOM) if choice & 1 else image


def _rating_example(image, word: str) -> dict[str, Any]:
    return {"images": [image], "prompt": prompts.RATING_PROMPT,
            "answer": prompts.RATING_ANSWER.format(level=word), "level": prompts.RATING_LEVELS.index(word)}


def collate(examples: list[dict], encode: Callable[[list[dict]], dict[str, torch.Tensor]],
            part: str | None = None) -> dict:
    """Encoded comparisons with their level indices; rating examples, if any, under ``rating``;
    held-out batches name the split ``part`` their pairs come from (the prefix of their loss)."""
    batch = encode(examples)
    if part is not None:
        batch["part"] = part
    batch["levels"] = torch.tensor([e["level"] for e in examples], dtype=torch.long)
    ratings = [r for e in examples for r in e.get("rating_examples", ())]
    if ratings:
        batch["rating"] = encode(ratings)
        batch["rating"]["levels"] = torch.tensor([r["level"] for r in ratings], dtype=torch.long)
    return batch
