"""Train/val/test splits: the paper's 10 splits, KonIQ-10k's official split, and seeded random splits.

Records of several datasets are split dataset by dataset (``IQARecord.dataset``) and the parts are
concatenated, so each dataset keeps its own proportions and its own split lists.

Matching records to the paper's lists: the package ships, per dataset, the sorted native names of
all images and the indices of each split's test images (``splits_data/<dataset>.json``, built by
``tools/build_splits_data.py``). A record is matched on the lower-cased last ``match_depth``
components of its ``name`` (its ``path`` when the name is shorter): the file name for every dataset
except LIVE, whose file names repeat across distortion folders and so match on ``jp2k/img39.bmp``.
This is indifferent to whether a reader keeps the image folder (``images/``, ``1024x768/``) in the
name, and to the case of the extension.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import logging
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePath

from c2s_lightning.data.readers.text import koniq_official_sets
from c2s_lightning.data.records import DatasetError, IQARecord
from c2s_lightning.data.split_sizes import RANDOM_FRACTIONS, check_split_sizes

log = logging.getLogger(__name__)

N_PAPER_SPLITS = 10
_SET_NAMES = {"training": "train", "train": "train", "validation": "val", "val": "val",
              "valid": "val", "test": "test"}


@dataclasses.dataclass(frozen=True)
class Split:
    """The three parts of a split. Every input record is in exactly one part."""

    train: list[IQARecord]
    val: list[IQARecord]
    test: list[IQARecord]

    def describe(self) -> str:
        """One line with image and content counts per part, e.g. for logging."""
        parts = []
        for part in ("train", "val", "test"):
            records = getattr(self, part)
            refs = {(r.dataset, r.ref) for r in records if r.ref is not None}
            parts.append(f"{part} {len(records)}" + (f" ({len(refs)} contents)" if refs else ""))
        return " / ".join(parts)


def split_records(records: Sequence[IQARecord], protocol: str, index: int = 1, seed: int = 0, **options) -> Split:
    """Split records into train/val/test under one split scheme (the ``protocol`` argument).

    Args:
        records: Records of one or several datasets; each dataset is split on its own.
        protocol: The split scheme (the name is kept for callers): ``"paper"``: the Compare2Score/LIQE
            splits; test is split ``index``'s official test list, every other record is train (so
            records in no list are train), val is empty unless ``val_fraction`` is set.
            ``"official"``: KonIQ-10k's training/validation/test. ``"random"``: seeded 70/10/20, by
            reference content when every record has ``ref``, otherwise by image.
        index: Split number, 1..10 for ``"paper"``; mixed into the seed for ``"random"`` and for
            the val carving, so ``index`` 1..10 give ten different splits.
        seed: Random seed (``"random"``, and val carving under ``"paper"``).
        **options: ``paper``: ``val_fraction`` (float, carved from train by content),
            ``allow_partial`` (bool: log, instead of raising, when test images are missing).
            ``official``: ``sets`` (``{image: set}`` or ``{set: images}``, e.g. from
            ``koniq_official_sets``; images match on their file name), ``sets_file`` (path of
            ``koniq10k_distributions_sets.csv``; default: in the KonIQ root), ``allow_partial``
            (log, instead of raising, when records and sets differ; unlisted records are train).
            ``random``: ``fractions`` (train, val, test); ``test_refs`` (content ids; ``"I01"``
            also names ``"I01.png"``): a dataset holding any of them has exactly those contents
            as its test part, and its other contents are split train:val in the given ratio.

    Returns:
        The split; within each part, records keep their input order.

    Raises:
        ValueError: Unknown split scheme or option, or a bad index/fraction.
        DatasetError: Records that do not fit the scheme (missing images, unknown dataset), or
            too few of them (see ``split_sizes.check_split_sizes``).
    """
    if protocol not in _SCHEMES:
        raise ValueError(f"unknown split scheme {protocol!r}; choose one of {sorted(_SCHEMES)}")
    function, allowed = _SCHEMES[protocol]
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for split scheme {protocol!r}; "
                         f"accepted: {sorted(allowed)}")
    if protocol == "random" and options.get("test_refs"):
        _check_refs_exist(records, options["test_refs"])
    groups: dict[str, list[IQARecord]] = {}
    for record in records:
        groups.setdefault(record.dataset, []).append(record)
    parts = [function(group, index, seed, **options) for group in groups.values()]
    for (dataset, group), part in zip(groups.items(), parts):
        check_split_sizes(dataset, group, part, protocol, options)
    return Split(*([r for p in parts for r in getattr(p, name)] for name in ("train", "val", "test")))


@functools.lru_cache(maxsize=None)
def paper_membership(dataset: str) -> dict:
    """The shipped membership of one dataset's 10 test lists (built by ``tools/build_splits_data.py``)."""
    resource = importlib.resources.files("c2s_lightning.data") / "splits_data" / f"{dataset}.json"
    if not resource.is_file():
        raise DatasetError(f"no paper split lists for dataset {dataset!r} "
                           f"(splits_data/{dataset}.json); they exist for {paper_datasets()}")
    return json.loads(resource.read_text())


def paper_datasets() -> list[str]:
    """Names of the datasets with shipped paper split lists."""
    folder = importlib.resources.files("c2s_lightning.data") / "splits_data"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def match_key(record: IQARecord, depth: int) -> str:
    """The lower-cased last ``depth`` path components of a record's name (or path)."""
    parts = record.name.replace("\\", "/").split("/") if record.name else []
    if len(parts) < depth:
        parts = list(PurePath(record.path).parts)
    return "/".join(parts[-depth:]).lower()


def _paper(records: list[IQARecord], index: int, seed: int, val_fraction: float = 0.0,
           allow_partial: bool = False) -> Split:
    dataset = records[0].dataset
    if not 1 <= index <= N_PAPER_SPLITS:
        raise ValueError(f"paper split index must be 1..{N_PAPER_SPLITS}, got {index}")
    data = paper_membership(dataset)
    depth = data["match_depth"]
    key_to_id = {"/".join(k.lower().split("/")[-depth:]): i for i, k in enumerate(data["keys"])}
    by_id: dict[int, IQARecord] = {}
    for record in records:
        i = key_to_id.get(match_key(record, depth))
        if i is not None and by_id.setdefault(i, record) is not record:
            raise DatasetError(f"{dataset}: two records match the paper list entry "
                               f"{data['keys'][i]!r}: {by_id[i].path} and {record.path}")
    test_ids = data["test"][index - 1]
    missing = [data["keys"][i] for i in test_ids if i not in by_id]
    if missing:
        message = (f"splits_test/{index}/{dataset}_test.json: {len(missing)} of {len(test_ids)} test images of "
                   f"paper split {index} are not among the {len(records)} {dataset} records (e.g. {missing[0]})")
        if not allow_partial:
            raise DatasetError(message + "; pass allow_partial=True to split the images present")
        log.warning("%s; allow_partial is set, going on", message)
    unlisted = len(records) - len(by_id)
    if unlisted:
        log.info("%s: %d records are in no paper list; they go to train", dataset, unlisted)
    test_set = {id(by_id[i]) for i in test_ids if i in by_id}
    test = [r for r in records if id(r) in test_set]
    rest = [r for r in records if id(r) not in test_set]
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    carved = _random(rest, index, seed, fractions=(1 - val_fraction, val_fraction, 0))  # val by content
    return Split(carved.train, carved.val, test)


def _official(records: list[IQARecord], index: int, seed: int,
              sets: Mapping[str, str] | Mapping[str, Iterable[str]] | None = None,
              sets_file: str | Path | None = None, allow_partial: bool = False) -> Split:
    if sets is None and sets_file is None and records[0].dataset != "koniq10k":
        raise DatasetError(f"the official split is KonIQ-10k's; for {records[0].dataset} "
                           "records pass its sets (sets= or sets_file=)")
    if sets is None:
        sets = koniq_official_sets(_dataset_root(records[0]), sets_file=sets_file)
    assignment = _normalise_sets(sets)
    parts: dict[str, list[IQARecord]] = {"train": [], "val": [], "test": []}
    unlisted = []
    for record in records:
        part = assignment.pop(PurePath(match_key(record, 1)).name, None)
        (parts[part] if part else unlisted).append(record)
    problems = []
    if unlisted:
        problems.append(f"{len(unlisted)} records are not in the official split (e.g. {unlisted[0].path})")
    if assignment:
        problems.append(f"{len(assignment)} images of the official split are not among the records")
    if problems:
        message = f"KonIQ-10k official split: {'; '.join(problems)}"
        if not allow_partial:
            raise DatasetError(message + "; pass allow_partial=True to use the images present")
        log.warning("%s; allow_partial is set: unlisted records go to train", message)
    return Split(parts["train"] + unlisted, parts["val"], parts["test"])


def _normalise_sets(sets: Mapping) -> dict[str, str]:
    """``{lower-cased image basename: train|val|test}`` from either mapping direction."""
    by_image = all(isinstance(v, str) for v in sets.values())
    pairs = sets.items() if by_image else ((image, name) for name, images in sets.items() for image in images)
    out = {}
    for image, name in pairs:
        if name.lower() not in _SET_NAMES:
            raise DatasetError(f"KonIQ-10k official split: unknown set {name!r} for {image}")
        out[PurePath(str(image).replace("\\", "/")).name.lower()] = _SET_NAMES[name.lower()]
    return out


def _dataset_root(record: IQARecord) -> Path:
    """The dataset root: the record's path with its name's components removed."""
    depth = len(record.name.replace("\\", "/").split("/")) if record.name else 1
    return Path(record.path).parents[depth - 1]


def _random(records: list[IQARecord], index: int, seed: int, fractions: Sequence[float] = RANDOM_FRACTIONS,
            test_refs: Iterable[str] | None = None) -> Split:
    f_train, f_val, f_test = _check_fractions(fractions)
    by_ref = all(r.ref is not None for r in records)  # group by content, else each image alone
    key = (lambda r: str(r.ref)) if by_ref else (lambda r: str(r.path))
    groups = sorted({key(r) for r in records})
    random.Random(_mix(seed, index)).shuffle(groups)
    pinned = {_ref_key(t) for t in test_refs or ()}
    test_groups = {g for g in groups if by_ref and _ref_key(g) in pinned}
    if test_groups:  # this dataset holds pinned contents: they alone are its test part
        rest = [g for g in groups if g not in test_groups]
        n_val = round(len(rest) * f_val / (f_train + f_val)) if f_train + f_val else 0
        val_groups = set(rest[:n_val])
    else:
        n_test, n_val = round(len(groups) * f_test), round(len(groups) * f_val)
        test_groups, val_groups = set(groups[:n_test]), set(groups[n_test:n_test + n_val])
    held_out = test_groups | val_groups
    return Split([r for r in records if key(r) not in held_out],
                 [r for r in records if key(r) in val_groups],
                 [r for r in records if key(r) in test_groups])


def _ref_key(ref: str) -> str:
    """Normalised content id, so ``"I01"``, ``"i01"`` and ``"I01.png"`` name the same content."""
    return PurePath(str(ref).replace("\\", "/")).stem.lower()


def _check_refs_exist(records: Sequence[IQARecord], test_refs: Iterable[str]) -> None:
    refs = {_ref_key(r.ref) for r in records if r.ref is not None}
    unknown = sorted(str(t) for t in test_refs if _ref_key(t) not in refs)
    if unknown:
        raise DatasetError(f"test_refs {unknown} name no content of the records "
                           f"(contents: {sorted(refs)[:20]})")


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers (train, val, test) "
                         f"summing to 1, got {tuple(fractions)}")
    return tuple(float(f) for f in fractions)


def _mix(seed: int, index: int) -> int:
    """One integer seed from (seed, index), so split k of seed s is reproducible on its own."""
    return seed * 1_000_003 + index


_SCHEMES = {
    "paper": (_paper, {"val_fraction", "allow_partial"}),
    "official": (_official, {"sets", "sets_file", "allow_partial"}),
    "random": (_random, {"fractions", "test_refs"}),
}
