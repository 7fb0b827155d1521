"""The smallest split worth running: a dataset too small for its split scheme fails before training.

Three images of one content under the default 70/10/20 random split give no test image (the test
share of one content rounds to zero); a run on it would train and report nothing. The rule: a part
the scheme means to fill must not come out empty. The test part always (unless a random split
gives it a zero fraction); the train part of a random split with a positive train fraction (under
``paper`` and ``official`` train is whatever the lists leave, which may legitimately be nothing
when only a test list's images are read). An empty val part that was asked for is only logged:
validation then falls back to the test part.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from c2s_lightning.data.records import DatasetError, IQARecord

log = logging.getLogger(__name__)

RANDOM_FRACTIONS = (0.7, 0.1, 0.2)
"""Default (train, val, test) fractions of the ``random`` split scheme."""


def check_split_sizes(dataset: str, records: Sequence[IQARecord], split, scheme: str, options: dict) -> None:
    """Raise a ``DatasetError`` naming the dataset and each part's count when ``split``, one
    dataset's ``records`` split under ``scheme`` with its ``options``, leaves a required part empty."""
    fractions = options.get("fractions", RANDOM_FRACTIONS)
    f_train, f_val, f_test = (float(f) for f in fractions) if scheme == "random" else (0.0, 0.0, 1.0)
    required = {"train": scheme == "random" and f_train > 0, "test": f_test > 0}
    contents = {r.ref for r in records if r.ref is not None}
    counts = (f"{len(records)} images" + (f" of {len(contents)} contents" if contents else "")
              + f" give train {len(split.train)} / val {len(split.val)} / test {len(split.test)}"
              + f" under the {scheme!r} split")
    for part in ("test", "train"):
        if required[part] and not getattr(split, part):
            raise DatasetError(f"dataset {dataset!r} is too small to split: {counts}, so its {part} part "
                               "is empty; add images, change the fractions, or use split 'none' to "
                               "evaluate on every image")
    val_wanted = f_val > 0 or scheme == "official" or bool(options.get("val_fraction"))
    if val_wanted and not split.val:
        log.warning("dataset %r: %s; its val part is empty, so validation uses the test part", dataset, counts)
