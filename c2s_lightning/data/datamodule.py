"""``ComparisonDataModule``: pairs mixed across datasets as text-labelled comparison instructions.

The processor comes from the model, so the collate is bound late through ``connect(encoder)``
(the LightningModule's ``configure_model``/CLI does it); this module never looks at the model.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from PIL import Image
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset, Sampler

from c2s_lightning.data import prompts
from c2s_lightning.data.images import ImagePreprocessing
from c2s_lightning.data.levels import LEVELS
from c2s_lightning.data.pairs import Pair, format_histogram, level_histogram, rating_labels, sample_pairs
from c2s_lightning.data.records import IQARecord

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DatasetSpec:
    """One dataset of the mix.

    Args:
        name: Reader name (``live``, ``csiq``, ``kadid10k``, ``bid``, ``clive``, ``koniq10k``,
            ``tid2013``, ``spaq``, ``agiqa3k``, ``list``).
        root: Dataset folder as distributed (for ``list``: the list file).
        pairs: Ordered training pairs drawn from this dataset per epoch.
        pairs_per_image: Alternative amount: ordered pairs per training image. Leave both unset
            for an evaluation-only dataset (e.g. a cross-dataset test set).
        split: Split protocol: ``paper``, ``official``, ``random``, or ``none`` (all images are test).
        split_index: Which of the paper's 10 splits (1..10).
        split_options: Extra options of ``split_records`` (e.g. ``val_fraction``, ``test_refs``).
        reader_options: Extra options of ``read_dataset`` (e.g. ``check_images: false``).
        std_fallback: Std for images without one, on this dataset's MOS scale.
        label: Name used in metric keys; defaults to ``name``.
        evaluate: Whether the evaluation callback scores this dataset's test split.
        synthesize: Write the synthetic dataset to ``root`` first unless it already holds it
            (``data synth``; KADID-10k layout, so ``name`` must be ``kadid10k``). For the
            quickstart and tests.
        synth_options: Options of the synthetic dataset (``size``, ``crops``, ``seed``,
            ``distortions``, ``levels``), as ``data synth`` takes them.
    """

    name: str
    root: str
    pairs: int | None = None
    pairs_per_image: float | None = None
    split: str = "random"
    split_index: int = 1
    split_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    reader_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    std_fallback: float | None = None
    label: str | None = None
    evaluate: bool = True
    synthesize: bool = False
    synth_options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pairs is not None and self.pairs_per_image is not None:
            raise ValueError(f"dataset {self.key!r}: give pairs or pairs_per_image, not both")
        if self.synthesize and self.name != "kadid10k":
            raise ValueError(f"dataset {self.key!r}: synthesize writes KADID-10k's layout; set name: kadid10k")

    @property
    def key(self) -> str:
        return self.label or self.name

    @property
    def trains(self) -> bool:
        return self.pairs is not None or self.pairs_per_image is not None


class PairDataset(Dataset):
    """Comparison instructions; pairs are re-drawn per epoch when ``resample`` is on.

    With ``ratings`` (image path -> rating word) each item also carries ``rating_images``
    single-image rating examples made of its own images: the second image, then the first.
    Images load through ``pipeline`` (default: full resolution, ``pad_to_square``).
    """

    def __init__(self, draw: Callable[[int], list[Pair]], resample: bool, pad_to_square: bool,
                 ratings: dict[Path, str] | None = None, rating_images: int = 0, augment: bool = False,
                 pipeline: ImagePreprocessing | None = None):
        self._draw, self.resample, self.pad_to_square, self.augment = draw, resample, pad_to_square, augment
        self.pipeline = pipeline or ImagePreprocessing(pad_to_square=pad_to_square)
        self.ratings, self.rating_images = ratings or {}, rating_images
        self._cache: dict[int, list[Pair]] = {}
        self.epoch = 0

    def pairs(self, epoch: int | None = None) -> list[Pair]:
        key = (self.epoch if epoch is None else epoch) if self.resample else 0
        if key not in self._cache:
            self._cache = {key: self._draw(key)}
        return self._cache[key]

    def __len__(self) -> int:
        return len(self.pairs(0))

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Any]:
        epoch, i = index if isinstance(index, tuple) else (self.epoch, index)
        pair = self.pairs(epoch)[i]
        images = [self.pipeline.load(pair.first.path), self.pipeline.load(pair.second.path)]
        if self.augment:
            images = [_dihedral(image, f"{epoch}/{i}/{k}") for k, image in enumerate(images)]
        item = {
            "images": images,
            "prompt": prompts.COMPARISON_PROMPT,
            "answer": prompts.COMPARISON_ANSWER.format(level=pair.level),
            "level": LEVELS.index(pair.level),
            "dataset": pair.first.dataset,
        }
        if self.rating_images:
            shown = [(images[1], pair.second), (images[0], pair.first)][: self.rating_images]
            item["rating_examples"] = [_rating_example(image, self.ratings[r.path]) for image, r in shown]
        return item


def _dihedral(image, key: str):
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


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` so that workers read the pairs of the current epoch.

    Lightning calls ``set_epoch`` on the sampler at every epoch start. ``skip`` drops the first
    indices of the next pass only: a run resumed mid-epoch continues where it stopped instead of
    seeing the start of the epoch again.
    """

    def __init__(self, n: int, shuffle: bool, seed: int, skip: int = 0):
        self.n, self.shuffle, self.seed, self.epoch, self.skip = n, shuffle, seed, 0, skip

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        order = list(range(self.n))
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        skip, self.skip = self.skip, 0
        return iter((self.epoch, i) for i in order[skip:])


def _collate(examples: list[dict], encode: Callable[[list[dict]], dict[str, torch.Tensor]]) -> dict:
    """Encoded comparisons with their level indices; rating examples, if any, under ``rating``."""
    batch = encode(examples)
    batch["levels"] = torch.tensor([e["level"] for e in examples], dtype=torch.long)
    ratings = [r for e in examples for r in e.get("rating_examples", ())]
    if ratings:
        batch["rating"] = encode(ratings)
        batch["rating"]["levels"] = torch.tensor([r["level"] for r in ratings], dtype=torch.long)
    return batch


class ComparisonDataModule(L.LightningDataModule):
    """Pairs drawn inside each dataset and mixed across datasets, plus single-image eval sets.

    Args:
        datasets: The datasets of the mix; those with an amount of pairs are trained on, all
            with ``evaluate`` are scored by the evaluation callback.
        batch_size: Training pairs per batch (per device).
        val_pairs: Pairs per dataset drawn from the validation part (or the test part when
            the split has no validation part) for ``val/loss`` and level accuracy.
        num_workers: DataLoader workers.
        seed: Seed of splits, pair draws and shuffling.
        resample_every_epoch: Draw new pairs at every epoch instead of reusing epoch 0's.
        pad_to_square: Pad images to a square with their mean colour before the processor.
        balance_levels: Draw training pairs so that each of the five levels is equally
            frequent in every dataset (``sample_pairs(balance_levels=True)``).
        rating_images_per_pair: 0 (default), 1 or 2: single-image rating examples added to
            each training pair for the module's optional rating loss (1: the second image,
            2: both). Their word comes from ``rating_labels``: equal-width MOS intervals of the
            dataset's training part. Batches then carry the encoded examples under ``rating``.
        augment: Flip and rotate training images by multiples of 90 degrees (each image its own
            choice, fixed per epoch and pair): more views of the same contents, while noise, blur
            and JPEG statistics stay as they are. Never applied to validation or evaluation.
    """

    def __init__(
        self,
        datasets: list[DatasetSpec],
        batch_size: int = 8,
        val_pairs: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        resample_every_epoch: bool = False,
        pad_to_square: bool = False,
        balance_levels: bool = False,
        rating_images_per_pair: int = 0,
        augment: bool = False,
    ):
        super().__init__()
        if rating_images_per_pair not in (0, 1, 2):
            raise ValueError(f"rating_images_per_pair must be 0, 1 or 2, got {rating_images_per_pair}")
        if not datasets:
            raise ValueError("ComparisonDataModule needs at least one dataset")
        keys = [d.key for d in datasets]
        if len(set(keys)) != len(keys):
            raise ValueError(f"dataset labels must be unique, got {keys}; set `label` to tell them apart")
        if not any(d.trains for d in datasets):
            log.warning("no dataset has an amount of pairs: nothing to train on (fine for evaluation)")
        self.specs = list(datasets)
        self.batch_size, self.val_pairs, self.num_workers = batch_size, val_pairs, num_workers
        self.seed, self.resample_every_epoch, self.pad_to_square = seed, resample_every_epoch, pad_to_square
        self.balance_levels, self.rating_images_per_pair = balance_levels, rating_images_per_pair
        self.augment = augment
        self.splits: dict[str, Any] = {}
        self._encode_train: Callable | None = None
        self.image_pipeline: ImagePreprocessing | None = None
        self._train: PairDataset | None = None
        self._val: PairDataset | None = None

    def connect(self, encoder: Any) -> None:
        """Bind the model's encoder (an object with ``encode_train(examples)``) for the collate,
        and load images at the size it needs (its ``image_size``, if any)."""
        self._encode_train = encoder.encode_train
        self.image_pipeline = ImagePreprocessing.for_encoder(encoder, self.pad_to_square)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        from c2s_lightning.data.datasets import read_dataset
        from c2s_lightning.data.splits import Split, split_records

        for spec in self.specs:
            if spec.synthesize:
                from c2s_lightning.data.synth import main_synth

                main_synth(Path(spec.root), **spec.synth_options)  # no-op when already written
            records = read_dataset(spec.name, spec.root, **spec.reader_options)
            if spec.split == "none":
                self.splits[spec.key] = Split(train=[], val=[], test=list(records))
            else:
                self.splits[spec.key] = split_records(
                    records, spec.split, index=spec.split_index, seed=self.seed, **spec.split_options)
            s = self.splits[spec.key]
            rank_zero_info(f"{spec.key}: {len(s.train)} train / {len(s.val)} val / {len(s.test)} test images")
        ratings = {}
        if self.rating_images_per_pair:
            for spec in self.specs:
                ratings |= rating_labels(self.splits[spec.key].train) if spec.trains else {}
        self._train = PairDataset(self._draw_train, self.resample_every_epoch, self.pad_to_square,
                                  ratings, self.rating_images_per_pair, self.augment)
        self._val = PairDataset(lambda _: self._draw_val(), False, self.pad_to_square)
        if len(self._train):
            rank_zero_info("training pairs per level:\n" + format_histogram(level_histogram(self._train.pairs(0))))

    def _draw_train(self, epoch: int) -> list[Pair]:
        out: list[Pair] = []
        for k, spec in enumerate(self.specs):
            if spec.trains:
                out += sample_pairs(self.splits[spec.key].train, pairs=spec.pairs,
                                    pairs_per_image=spec.pairs_per_image,
                                    seed=self.seed + 7919 * k + 104729 * epoch, std_fallback=spec.std_fallback,
                                    balance_levels=self.balance_levels)
        return out

    def _draw_val(self) -> list[Pair]:
        out: list[Pair] = []
        for k, spec in enumerate(self.specs):
            split = self.splits[spec.key]
            held_out = split.val or split.test
            if spec.trains and self.val_pairs > 0 and len(held_out) >= 2:
                out += sample_pairs(held_out, pairs=self.val_pairs, seed=self.seed + 31 * k,
                                    std_fallback=spec.std_fallback)
        return out

    def eval_records(self, part: str = "test") -> dict[str, list[IQARecord]]:
        """Single images with MOS per evaluated dataset label, for the evaluation callback."""
        self.setup()
        return {s.key: list(getattr(self.splits[s.key], part)) for s in self.specs if s.evaluate}

    def records(self, label: str, part: str = "train") -> list[IQARecord]:
        """One part (``train``, ``val``, ``test``) of a dataset's split, e.g. the anchor source."""
        self.setup()
        if label not in self.splits:
            raise KeyError(f"no dataset labelled {label!r}; configured: {sorted(self.splits)}")
        return list(getattr(self.splits[label], part))

    def _batches_done_this_epoch(self) -> int:
        """Batches of the current epoch already trained on, when fit resumes from a checkpoint."""
        fit_loop = getattr(self.trainer, "fit_loop", None)
        if fit_loop is None or not fit_loop.restarting:
            return 0
        # `processed`, not `completed`: a checkpoint written in on_train_batch_end has run the
        # step but not yet counted it as completed
        return fit_loop.epoch_loop.batch_progress.current.processed

    def _loader(self, data: PairDataset, shuffle: bool, skip_batches: int = 0) -> DataLoader:
        if self._encode_train is None:
            raise RuntimeError("ComparisonDataModule.connect(encoder) must be called before loading batches")
        data.pipeline = self.image_pipeline  # the model's, bound at connect (setup may come first)
        return DataLoader(
            data, batch_size=self.batch_size, num_workers=self.num_workers,
            sampler=EpochSampler(len(data), shuffle, self.seed, skip=skip_batches * self.batch_size),
            collate_fn=functools.partial(_collate, encode=self._encode_train),
            persistent_workers=False,
        )

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self._train, shuffle=True, skip_batches=self._batches_done_this_epoch())

    def val_dataloader(self) -> DataLoader | Sequence:
        self.setup()
        return self._loader(self._val, shuffle=False) if len(self._val) else []
