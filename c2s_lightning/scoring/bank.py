"""The anchor bank: the chosen anchors, how they were chosen, and their mutual probabilities.

JSON with its anchor images copied beside it, so it scores without the dataset; the matrix is served
only to the model, image preprocessing and image files it was computed with, and banks of formats 1
and 2 load but their matrix is refused until recomputed (docs/exports.md, "Anchor banks you can move").
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from c2s_lightning.cache.digests import file_digest
from c2s_lightning.infra.atomic_files import is_nonempty_folder, publish_folder, staging_folder, write_text
from c2s_lightning.data.records import IQARecord
from c2s_lightning.scoring.anchors import select_anchors

FORMAT_VERSION = 3
_RECORD_FIELDS = ("mos", "std", "name", "dataset", "ref")
RECOMPUTE_HINT = "rerun with --recompute-anchors (recompute_anchors=True) to recompute it with this model"


class StaleAnchorBankError(ValueError):
    """The bank's matrix does not belong to this model, preprocessing or these images (a one-line message)."""


@dataclasses.dataclass
class AnchorBank:
    """Anchors and, once computed, their anchor-vs-anchor win probabilities.

    Attributes:
        anchors: The anchor images, worst to best interval.
        dataset: Dataset the anchors come from (e.g. ``"koniq10k"``).
        split: Which part of it was eligible (e.g. ``"paper split 1, train+val"``).
        rule, alpha, beta, seed: How ``select_anchors`` chose them (rule, intervals, anchors per
            interval, seed of the random rule).
        matrix: ``matrix[i][j]`` = P(anchor i beats anchor j), or None until computed.
        model_fingerprint: The model that computed ``matrix`` (an export's model fingerprint).
        image_preprocessing: How the anchor images were preprocessed for ``matrix``.
        protocol: The comparison protocol (``ComparisonProtocol.to_dict()``) ``matrix`` was
            computed under, when known.
        image_digests: ``file_digest`` of each anchor image file ``matrix`` was computed on.
    """

    anchors: list[IQARecord]
    dataset: str
    split: str
    rule: str = "min_variance"
    alpha: int = 5
    beta: int = 1
    seed: int = 0
    matrix: list[list[float]] | None = None
    model_fingerprint: str | None = None
    image_preprocessing: dict[str, Any] | None = None
    protocol: dict[str, Any] | None = None
    image_digests: list[str] | None = None

    @classmethod
    def from_records(cls, records: Sequence[IQARecord], dataset: str, split: str, alpha: int = 5, beta: int = 1,
                     rule: str = "min_variance", seed: int = 0) -> AnchorBank:
        """Select anchors from ``records`` with ``select_anchors`` and remember how."""
        anchors = select_anchors(records, alpha=alpha, beta=beta, rule=rule, seed=seed)
        return cls(anchors, dataset, split, rule, alpha, beta, seed)

    def set_matrix(self, matrix: Sequence[Sequence[float]], model_fingerprint: str,
                   image_preprocessing: dict[str, Any] | None = None, protocol: dict[str, Any] | None = None) -> None:
        """Store the anchor-vs-anchor probabilities computed by the model ``model_fingerprint`` on
        the anchor image files as they are now, preprocessed as ``image_preprocessing``, under
        ``protocol``."""
        rows = [[float(value) for value in row] for row in matrix]
        n = len(self.anchors)
        if len(rows) != n or any(len(row) != n for row in rows):
            raise ValueError(f"anchor matrix must be {n} x {n} for {n} anchors")
        if any(not 0 <= value <= 1 for row in rows for value in row):
            raise ValueError("anchor matrix must hold probabilities in [0, 1]")
        if protocol is not None:
            protocol = {**protocol, "model_fingerprint": str(model_fingerprint)}
            if image_preprocessing is not None:
                protocol["image_preprocessing"] = image_preprocessing
        self.matrix, self.model_fingerprint = rows, str(model_fingerprint)
        self.image_preprocessing, self.protocol = image_preprocessing, protocol
        self.image_digests = self._digests()

    def _digests(self) -> list[str]:
        return [file_digest(a.path) for a in self.anchors]

    def matrix_for(self, model_fingerprint: str, image_preprocessing: dict[str, Any] | None = None) -> list[list[float]]:
        """The stored matrix, if the model ``model_fingerprint`` computed it on these anchor image
        files preprocessed as ``image_preprocessing``; otherwise a ``StaleAnchorBankError`` with a
        one-line message."""
        where = f"the anchor bank ({self.dataset}, {self.split})"
        if self.matrix is None:
            raise StaleAnchorBankError(f"{where} has no anchor matrix yet; compute it with "
                                       "`python -m c2s_lightning anchors build --export ...` or --recompute-anchors")
        if self.model_fingerprint != str(model_fingerprint):
            recorded = (self.model_fingerprint or "none recorded")[:19]
            raise StaleAnchorBankError(f"{where} holds a matrix computed by another model ({recorded}, this "
                                       f"model is {str(model_fingerprint)[:19]}); {RECOMPUTE_HINT}")
        if self.image_digests is None:
            raise StaleAnchorBankError(f"{where} records no digests of its anchor images (an older bank); "
                                       f"{RECOMPUTE_HINT}")
        if len(self.image_digests) != len(self.anchors):
            raise StaleAnchorBankError(f"{where} records {len(self.image_digests)} image digests for "
                                       f"{len(self.anchors)} anchors; {RECOMPUTE_HINT}")
        if changed := [k for k, (old, new) in enumerate(zip(self.image_digests, self._digests())) if old != new]:
            raise StaleAnchorBankError(f"{where}: anchor {changed[0]} image {self.anchors[changed[0]].path} "
                                       f"changed since its matrix was computed; {RECOMPUTE_HINT}")
        if None not in (self.image_preprocessing, image_preprocessing) and self.image_preprocessing != image_preprocessing:
            raise StaleAnchorBankError(
                f"{where} holds a matrix of images preprocessed as {self.image_preprocessing}, not "
                f"{image_preprocessing}; preprocess as the bank did (--pad-to-square / --no-pad-to-square) or "
                f"{RECOMPUTE_HINT}")
        return self.matrix

    def to_dict(self, files: Sequence[str] | None = None) -> dict:
        """Plain JSON-ready dict; each anchor's ``file`` is ``files[k]`` (default: its path)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        files = [str(a.path) for a in self.anchors] if files is None else list(files)
        fields["anchors"] = [{"file": file, **{key: getattr(a, key) for key in _RECORD_FIELDS}}
                             for a, file in zip(self.anchors, files)]
        return {"format_version": FORMAT_VERSION, **fields}

    @classmethod
    def from_dict(cls, data: dict, folder: str | os.PathLike | None = None) -> AnchorBank:
        """Inverse of ``to_dict``; relative ``file`` entries resolve against ``folder``."""
        version = data.get("format_version")
        if version not in (1, 2, FORMAT_VERSION):
            raise ValueError(f"unsupported anchor bank format_version {version!r} (this version reads 1 to 3)")
        fields = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        if version == 2:  # its weights fingerprint covered the tensors only: never a model fingerprint
            fields["model_fingerprint"] = data.get("weights_fingerprint")
        base = Path(folder) if folder is not None else Path()
        key = "path" if version == 1 else "file"
        fields["anchors"] = [IQARecord(path=base / row[key], mos=float(row["mos"]), ref=row.get("ref"),
                                       std=None if row.get("std") is None else float(row["std"]),
                                       dataset=row["dataset"], name=row.get("name", "")) for row in data["anchors"]]
        return cls(**fields)

    @staticmethod
    def images_folder(path: str | os.PathLike) -> Path:
        """Where ``save(path)`` puts the anchor images: ``bank.json`` -> ``bank/``."""
        path = Path(path)
        return path.with_name(path.stem if path.suffix else f"{path.name}_images")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the bank as indented JSON and copy its anchor images beside it; returns the path.

        The images go to a new folder (``images_folder``), built under a temporary name and renamed
        into place whole, so a bank never writes over files already there (``FileExistsError``); a
        bank whose images are already that folder's (loaded from ``path``) is saved in place. A
        missing anchor image is a ``FileNotFoundError``: a bank must carry its images.
        """
        path = Path(path)
        folder = self.images_folder(path)
        for k, anchor in enumerate(self.anchors):
            if not anchor.path.is_file():
                raise FileNotFoundError(f"anchor {k} image {anchor.path} is missing; a bank carries its images")
        in_place = folder.is_dir() and all(a.path.parent.resolve() == folder.resolve() for a in self.anchors)
        targets = [a.path for a in self.anchors] if in_place else self._publish_images(folder)
        files = [Path(os.path.relpath(target, path.parent)).as_posix() for target in targets]
        try:
            return write_text(path, json.dumps(self.to_dict(files), indent=2) + "\n")
        except BaseException:
            if not in_place:  # the folder was made for this bank only: no orphan left to block a rerun
                shutil.rmtree(folder, ignore_errors=True)
            raise

    def _publish_images(self, folder: Path) -> list[Path]:
        if is_nonempty_folder(folder):
            raise FileExistsError(f"{folder} exists and is not empty; a bank's images go to a new folder: "
                                  "choose another bank file name")
        names = [f"{k:02d}_{anchor.path.name}" for k, anchor in enumerate(self.anchors)]
        staged = staging_folder(folder)
        try:
            for anchor, name in zip(self.anchors, names):
                shutil.copyfile(anchor.path, staged / name)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        publish_folder(staged, folder)
        return [folder / name for name in names]

    @classmethod
    def load(cls, path: str | os.PathLike) -> AnchorBank:
        """Read a bank written by ``save`` (format 3) or by earlier versions (formats 1 and 2)."""
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")), folder=path.parent)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}: not a valid anchor bank file ({error})") from error
