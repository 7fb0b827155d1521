"""``ComparisonDataModule``: pairs mixed across datasets as text-labelled comparison instructions.

The processor comes from the model, so the collate is bound late through ``connect(encoder)``,
which the launcher calls before the loop starts; this module reads nothing else of the model, nor
Lightning's loops. Reading, splitting and drawing live in :mod:`~c2s_lightning.data.mix`, items and
collate in :mod:`~c2s_lightning.data.pair_dataset`, the resumable order in :mod:`~c2s_lightning.data.loader`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, Literal

import lightning as L
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from c2s_lightning.data.images import ImagePreprocessing
from c2s_lightning.data.loader import EpochSampler, ResumableLoader
from c2s_lightning.data.mix import Mix, MixEntry, check_entries, write_synthetic
from c2s_lightning.data.pair_dataset import PairDataset, collate, fixed_draw
from c2s_lightning.data.pairs import format_histogram, level_histogram
from c2s_lightning.data.records import IQARecord


class ComparisonDataModule(L.LightningDataModule):
    """Pairs drawn inside each dataset and mixed across datasets, plus single-image eval sets.

    Args:
        datasets: The datasets of the mix; those with an amount of pairs are trained on, all
            with ``evaluate`` are scored by the evaluation callback.
        batch_size: Training pairs per batch (per device).
        val_pairs: Held-out pairs per dataset for the validation loop's loss and level accuracy, from
            the validation parts (logged as ``val/loss``), or from the test parts when a trained
            dataset has no validation part (logged as ``test/loss``; ``Mix.held_out_part``).
        num_workers: DataLoader workers.
        seed: Seed of splits, pair draws and shuffling.
        resample_every_epoch: Draw new pairs at every epoch instead of reusing epoch 0's.
        pad_to_square: Pad images to a square before the processor, with ``pad_colour``.
        pad_colour: None: the processor's image mean (the paper's); ``"image_mean"``: each image's
            own (exports made before the colour was recorded; ``evaluate`` sets it for them).
        balance_levels: Draw training pairs so that each of the five levels is equally
            frequent in every dataset (``sample_pairs(balance_levels=True)``).
        rating_images_per_pair: 0 (default), 1 or 2: single-image rating examples per training pair
            for the module's optional rating loss (1: the second image, 2: both), worded by
            ``rating_labels`` (equal-width MOS intervals of the training part), batched under ``rating``.
        augment: Flip and rotate training images by multiples of 90 degrees (each image its own
            choice, fixed per epoch and pair), keeping noise, blur and JPEG statistics; training only.
        split_index: Set every dataset's ``split_index`` (one parameter for a sweep over the
            paper's 10 splits: ``sweeps/paper_splits.yaml``); None keeps each dataset's own.
    """

    def __init__(self, datasets: list[MixEntry], batch_size: int = 8, val_pairs: int = 64, num_workers: int = 0,
                 seed: int = 0, resample_every_epoch: bool = False, pad_to_square: bool = False,
                 balance_levels: bool = False, rating_images_per_pair: int = 0, augment: bool = False,
                 split_index: int | None = None, pad_colour: Literal["image_mean"] | None = None):
        super().__init__()
        if rating_images_per_pair not in (0, 1, 2):
            raise ValueError(f"rating_images_per_pair must be 0, 1 or 2, got {rating_images_per_pair}")
        if split_index is not None:
            datasets = [dataclasses.replace(d, split_index=split_index) for d in datasets]
        check_entries(datasets)
        self._entries = list(datasets)
        self._batch_size, self._val_pairs, self._num_workers = batch_size, val_pairs, num_workers
        self._seed, self._resample, self._pad = seed, resample_every_epoch, {"pad_to_square": pad_to_square}
        self._pad |= {} if pad_colour is None else {"pad_colour": pad_colour}
        self._balance_levels, self._rating_images, self._augment = balance_levels, rating_images_per_pair, augment
        self._mix: Mix | None = None
        self._encoder: Any = None

    def connect(self, encoder: Any) -> None:
        """Bind the model's encoder (an object with ``encode_train(examples)``) for the collate; it is
        read when a loader is made, so the model may build it later (in ``configure_model``)."""
        self._encoder = encoder

    def prepare_data(self) -> None:
        """Write the synthetic datasets asked for (one process per node writes, the others wait)."""
        write_synthetic(self._entries)

    def setup(self, stage: str | None = None) -> None:
        """Read and split every dataset once (later calls do nothing)."""
        if self._mix is None:
            self._mix = Mix(self._entries, seed=self._seed, val_pairs=self._val_pairs,
                            balance_levels=self._balance_levels)
            rank_zero_info(self._mix.summary())

    @property
    def mix(self) -> Mix:
        """The read and split datasets (read on first use)."""
        self.setup()
        return self._mix

    # -- what the evaluator needs -----------------------------------------------------------
    def anchor_records(self, label: str, part: str = "train") -> list[IQARecord]:
        """The part anchors are chosen from, each image with a std (``Mix.anchor_records``)."""
        return self.mix.anchor_records(label, part)

    def eval_records(self, part: str = "test") -> dict[str, list[IQARecord]]:
        """Single images with MOS per evaluated dataset label, for the evaluation callback."""
        return self.mix.eval_records(part)

    def default_anchor_dataset(self) -> str:
        """Label of the dataset anchors come from unless the evaluator names one: the first trained."""
        return self.mix.first_trained()

    @property
    def image_pipeline(self) -> ImagePreprocessing:
        """How training images load: ``image_options()`` at the connected model's input size (as the
        run's protocol records it); full resolution before ``connect``."""
        return ImagePreprocessing.for_encoder(self._encoder, **self.image_options())

    def image_options(self) -> dict[str, Any]:
        """How images are prepared before the processor; scoring must prepare them the same way."""
        return dict(self._pad)

    # -- loaders ----------------------------------------------------------------------------
    def train_dataloader(self) -> ResumableLoader:
        mix = self.mix
        ratings = mix.rating_words() if self._rating_images else None
        data = PairDataset(mix.train_pairs, self._resample, self.image_pipeline, ratings, self._rating_images,
                           self._augment)
        if len(data):
            rank_zero_info("training pairs per level:\n" + format_histogram(level_histogram(data.pairs(0))))
        return ResumableLoader(data, sampler=EpochSampler(len(data), self._seed), **self._loader_options())

    def val_dataloader(self) -> DataLoader | Sequence:
        data = PairDataset(fixed_draw(self.mix.validation_pairs()), False, self.image_pipeline)
        options = self._loader_options(part=self.mix.held_out_part())
        return DataLoader(data, shuffle=False, **options) if len(data) else []

    def _loader_options(self, part: str | None = None) -> dict[str, Any]:
        if self._encoder is None:
            raise RuntimeError("ComparisonDataModule.connect(encoder) must be called before loading batches")
        return dict(batch_size=self._batch_size, num_workers=self._num_workers, persistent_workers=False,
                    collate_fn=functools.partial(collate, encode=self._encoder.encode_train, part=part))
