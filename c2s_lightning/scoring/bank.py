"""The anchor bank: the chosen anchors, how they were chosen, and their mutual probabilities.

Saved as human-readable JSON so that one anchor set can be inspected, versioned and reused.
The anchor-vs-anchor matrix depends on the model that compared the anchors, so the bank records
that model's id and refuses to serve the matrix to another model.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

from c2s_lightning.atomic_files import write_text
from c2s_lightning.data.records import IQARecord
from c2s_lightning.scoring.anchors import select_anchors

FORMAT_VERSION = 1
_RECORD_FIELDS = ("path", "mos", "std", "name", "dataset", "ref")


def _record_to_dict(record: IQARecord) -> dict:
    row = {field: getattr(record, field) for field in _RECORD_FIELDS}
    row["path"] = str(record.path)
    return row


def _record_from_dict(row: dict) -> IQARecord:
    return IQARecord(
        path=Path(row["path"]),
        mos=float(row["mos"]),
        std=None if row.get("std") is None else float(row["std"]),
        ref=row.get("ref"),
        dataset=row["dataset"],
        name=row.get("name", ""),
    )


@dataclasses.dataclass
class AnchorBank:
    """Anchors and, once computed, their anchor-vs-anchor win probabilities.

    Attributes:
        anchors: The anchor images, worst to best interval.
        dataset: Dataset the anchors come from (e.g. ``"koniq10k"``).
        split: Which part of it was eligible (e.g. ``"paper split 1, train+val"``).
        rule: Selection rule (``min_variance``, ``max_variance``, ``random``).
        alpha: Number of MOS intervals.
        beta: Anchors per interval.
        seed: Seed of the random rule.
        matrix: ``matrix[i][j]`` = P(anchor i beats anchor j), or None until computed.
        model_id: Identifier of the model that computed ``matrix`` (None while ``matrix`` is).
    """

    anchors: list[IQARecord]
    dataset: str
    split: str
    rule: str = "min_variance"
    alpha: int = 5
    beta: int = 1
    seed: int = 0
    matrix: list[list[float]] | None = None
    model_id: str | None = None

    @classmethod
    def from_records(
        cls,
        records: Sequence[IQARecord],
        dataset: str,
        split: str,
        alpha: int = 5,
        beta: int = 1,
        rule: str = "min_variance",
        seed: int = 0,
    ) -> AnchorBank:
        """Select anchors from ``records`` with ``select_anchors`` and remember how."""
        anchors = select_anchors(records, alpha=alpha, beta=beta, rule=rule, seed=seed)
        return cls(anchors, dataset, split, rule, alpha, beta, seed)

    def set_matrix(self, matrix: Sequence[Sequence[float]], model_id: str) -> None:
        """Store the anchor-vs-anchor probabilities computed by model ``model_id``."""
        rows = [[float(value) for value in row] for row in matrix]
        n = len(self.anchors)
        if len(rows) != n or any(len(row) != n for row in rows):
            raise ValueError(f"anchor matrix must be {n} x {n} for {n} anchors")
        if any(not 0 <= value <= 1 for row in rows for value in row):
            raise ValueError("anchor matrix must hold probabilities in [0, 1]")
        self.matrix, self.model_id = rows, str(model_id)

    def require_model(self, model_id: str) -> list[list[float]]:
        """The stored matrix, if it was computed by ``model_id``; a clear error otherwise."""
        if self.matrix is None:
            raise ValueError(
                f"the anchor bank ({self.dataset}, {self.split}) has no anchor matrix yet; "
                "compute it with `python -m c2s_lightning anchors build ...`"
            )
        if self.model_id != str(model_id):
            raise ValueError(
                f"the anchor matrix was computed with model {self.model_id!r}, not "
                f"{str(model_id)!r}; recompute it with `python -m c2s_lightning anchors build ...` "
                "using this model"
            )
        return self.matrix

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (paths as strings)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["anchors"] = [_record_to_dict(record) for record in self.anchors]
        return {"format_version": FORMAT_VERSION, **fields}

    @classmethod
    def from_dict(cls, data: dict) -> AnchorBank:
        """Inverse of ``to_dict``."""
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"unsupported anchor bank format_version {version!r}")
        fields = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        fields["anchors"] = [_record_from_dict(row) for row in data["anchors"]]
        return cls(**fields)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the bank as indented JSON (atomically); returns the path."""
        return write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> AnchorBank:
        """Read a bank written by ``save``."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls.from_dict(data)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}: not a valid anchor bank file ({error})") from error
