"""The record every reader returns, and the error every reader raises."""

from __future__ import annotations

import dataclasses
from pathlib import Path


class DatasetError(ValueError):
    """Bad dataset input. The message always names the file and, where known, the row or field."""


@dataclasses.dataclass(frozen=True)
class IQARecord:
    """One labelled image.

    Attributes:
        path: Absolute path of the image file.
        mos: Quality score, higher is better, on the dataset's own scale.
        std: Standard deviation of the subjective ratings on the same scale as ``mos``, or None.
        ref: Identifier of the reference content the image was made from (synthetic datasets), or None.
        dataset: Short dataset name (``"live"``, ``"koniq10k"``, ...).
        name: The image's path relative to the dataset root, as the dataset distributes it; used to
            match split lists.
    """

    path: Path
    mos: float
    std: float | None
    ref: str | None
    dataset: str
    name: str = ""
