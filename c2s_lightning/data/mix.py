"""The training mix: an experiment's datasets read, split and labelled, and the pairs drawn from them.

A :class:`MixEntry` says how an experiment uses one dataset; :class:`Mix` reads every entry once and
concatenates each dataset's own draw (pairs never cross datasets: :mod:`c2s_lightning.data.pairs`).
Nothing here imports Lightning, so a notebook can build a mix.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from c2s_lightning.data.pairs import Pair, rating_labels, sample_pairs, with_std_fallback
from c2s_lightning.data.records import IQARecord
from c2s_lightning.data.splits import Split

log = logging.getLogger(__name__)

PARTS = ("train", "val", "test")


@dataclasses.dataclass
class MixEntry:
    """One dataset of the experiment's mix.

    Args:
        name: Reader name (``live``, ``csiq``, ``kadid10k``, ``bid``, ``clive``, ``koniq10k``,
            ``tid2013``, ``spaq``, ``agiqa3k``, ``list``).
        root: Dataset folder as distributed (for ``list``: the list file).
        pairs: Ordered training pairs drawn from this dataset per epoch.
        pairs_per_image: Alternative amount: ordered pairs per training image. Leave both unset
            for an evaluation-only dataset (e.g. a cross-dataset test set).
        split: Split scheme: ``paper``, ``official``, ``random``, or ``none`` (all images are test).
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
        if self.std_fallback is not None and not self.std_fallback > 0:
            raise ValueError(f"dataset {self.key!r}: std_fallback must be a positive std on the dataset's MOS "
                             f"scale, got {self.std_fallback}")
        if self.synthesize and self.name != "kadid10k":
            raise ValueError(f"dataset {self.key!r}: synthesize writes KADID-10k's layout; set name: kadid10k")

    @property
    def key(self) -> str:
        return self.label or self.name

    @property
    def trains(self) -> bool:
        return self.pairs is not None or self.pairs_per_image is not None


def check_entries(entries: Sequence[MixEntry]) -> None:
    """Reject a mix that cannot work (no entries, two with one label: ValueError) before anything is read."""
    if not entries:
        raise ValueError("the mix needs at least one dataset")
    keys = [e.key for e in entries]
    if len(set(keys)) != len(keys):
        raise ValueError(f"dataset labels must be unique, got {keys}; set `label` to tell them apart")
    if not any(e.trains for e in entries):
        log.warning("no dataset has an amount of pairs: nothing to train on (fine for evaluation)")


def write_synthetic(entries: Sequence[MixEntry]) -> None:
    """Write the synthetic dataset of every entry with ``synthesize`` (no-op where already written)."""
    from c2s_lightning.data.synth import main_synth

    for entry in entries:
        if entry.synthesize:
            main_synth(Path(entry.root), **entry.synth_options)


def read_split(entry: MixEntry, seed: int) -> Split:
    """Read one entry's dataset (writing the synthetic one first when asked) and split it."""
    from c2s_lightning.data.datasets import read_dataset
    from c2s_lightning.data.splits import split_records

    write_synthetic([entry])
    records = read_dataset(entry.name, entry.root, **entry.reader_options)
    if entry.split == "none":
        return Split(train=[], val=[], test=list(records))
    return split_records(records, entry.split, index=entry.split_index, seed=seed, **entry.split_options)


class Mix:
    """Every entry read and split once; training pairs per epoch, validation pairs, rating words.

    Every draw is a pure function of ``seed`` (and the epoch), so each process and each resumed
    run draws the same pairs.

    Args:
        entries: The datasets of the mix (checked by :func:`check_entries`).
        seed: Seed of the splits and of every pair draw.
        val_pairs: Held-out pairs per trained dataset, from the part ``held_out_part`` names.
        balance_levels: Draw training pairs with the five levels equally frequent per dataset.
    """

    def __init__(self, entries: Sequence[MixEntry], seed: int = 0, val_pairs: int = 64, balance_levels: bool = False):
        check_entries(entries)
        self.entries = list(entries)
        self.seed, self.val_pairs, self.balance_levels = seed, val_pairs, balance_levels
        self.splits: dict[str, Split] = {e.key: read_split(e, seed) for e in self.entries}

    def train_pairs(self, epoch: int) -> list[Pair]:
        """The training pairs of ``epoch``: each trained dataset's draw, in entry order."""
        out: list[Pair] = []
        for k, entry in enumerate(self.entries):
            if entry.trains:
                # distinct large primes keep the per-dataset and per-epoch seeds from colliding
                out += sample_pairs(self.splits[entry.key].train, pairs=entry.pairs,
                                    pairs_per_image=entry.pairs_per_image,
                                    seed=self.seed + 7919 * k + 104729 * epoch, std_fallback=entry.std_fallback,
                                    balance_levels=self.balance_levels)
        return out

    def held_out_part(self) -> str:
        """The part the held-out pairs come from, and so the prefix of their loss: ``val`` when every
        trained dataset has a validation part, else ``test`` (the paper's splits have none), so a
        loss computed on test images is never logged as ``val/loss``."""
        trained = [self.splits[e.key] for e in self.entries if e.trains]
        return "val" if trained and all(split.val for split in trained) else "test"

    def validation_pairs(self) -> list[Pair]:
        """Fixed held-out pairs per trained dataset (``held_out_part``), for the loss and level accuracy."""
        out: list[Pair] = []
        part = self.held_out_part()
        for k, entry in enumerate(self.entries):
            held_out = getattr(self.splits[entry.key], part)
            if entry.trains and self.val_pairs > 0 and len(held_out) >= 2:
                out += sample_pairs(held_out, pairs=self.val_pairs, seed=self.seed + 31 * k,
                                    std_fallback=entry.std_fallback)
        return out

    def rating_words(self) -> dict[Path, str]:
        """Image path -> rating word for every training image (``rating_labels`` per dataset)."""
        words: dict[Path, str] = {}
        for entry in self.entries:
            if entry.trains:
                words |= rating_labels(self.splits[entry.key].train)
        return words

    def records(self, label: str, part: str = "train") -> list[IQARecord]:
        """One part (``train``, ``val``, ``test``) of a dataset's split."""
        if label not in self.splits:
            raise KeyError(f"no dataset labelled {label!r}; configured: {sorted(self.splits)}")
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        return list(getattr(self.splits[label], part))

    def anchor_records(self, label: str, part: str = "train") -> list[IQARecord]:
        """The images anchors are chosen from: one part of a dataset's split, every image given a std
        as the level rule gives it (the entry's ``std_fallback``, else ``with_std_fallback``'s
        default), so a list without stds still has its anchors chosen by the variance rules."""
        entry = next(e for e in self.entries if e.key == label) if label in self.splits else None
        return with_std_fallback(self.records(label, part), entry.std_fallback if entry else None)

    def eval_records(self, part: str = "test") -> dict[str, list[IQARecord]]:
        """One part of every evaluated dataset, by label."""
        return {e.key: self.records(e.key, part) for e in self.entries if e.evaluate}

    def first_trained(self) -> str:
        """Label of the first dataset trained on, the default anchor source (ValueError if none is)."""
        for entry in self.entries:
            if entry.trains:
                return entry.key
        raise ValueError("no dataset of the mix is trained on; name the anchor dataset explicitly")

    def summary(self) -> str:
        """Images (and contents) per part of every dataset, one line each."""
        return "\n".join(f"{key}: {split.describe()}" for key, split in self.splits.items())
