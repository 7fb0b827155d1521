"""The data side: native readers, splits, comparison levels and pairs, prompts, the datamodule.

Names are imported on first use so that ``import c2s_lightning.data`` stays cheap (the datamodule
pulls in Lightning).
"""

from __future__ import annotations

import importlib

from c2s_lightning.data.levels import LEVEL_WEIGHTS, LEVELS, comparison_level
from c2s_lightning.data.records import DatasetError, IQARecord

_LAZY = {
    "read_dataset": "c2s_lightning.data.datasets",
    "DATASETS": "c2s_lightning.data.datasets",
    "split_records": "c2s_lightning.data.splits",
    "Split": "c2s_lightning.data.splits",
    "sample_pairs": "c2s_lightning.data.pairs",
    "Mix": "c2s_lightning.data.mix",
    "MixEntry": "c2s_lightning.data.mix",
    "ComparisonDataModule": "c2s_lightning.data.datamodule",
    "ImagePreprocessing": "c2s_lightning.data.images",
}

__all__ = ["LEVELS", "LEVEL_WEIGHTS", "DatasetError", "IQARecord", "comparison_level", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'c2s_lightning.data' has no attribute {name!r}")
