"""Scoring against anchors: anchor selection, soft comparison, MAP estimation, the anchor bank.

Nothing here imports Lightning, so it can be used from a notebook or another trainer.
``Compare2Scorer`` (which needs a comparator model) is imported on first use.
"""

from __future__ import annotations

import importlib

from c2s_lightning.scoring.anchors import RULES, select_anchors
from c2s_lightning.scoring.bank import AnchorBank, StaleAnchorBankError
from c2s_lightning.scoring.map import LINKS, comparison_matrix, map_estimate, readoff
from c2s_lightning.scoring.soft import count_probability, level_probabilities, soft_probability

_LAZY = {"Compare2Scorer": "c2s_lightning.scoring.scorer"}

__all__ = ["LINKS", "RULES", "AnchorBank", "StaleAnchorBankError", "comparison_matrix", "count_probability",
           "level_probabilities", "map_estimate", "readoff", "select_anchors", "soft_probability", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'c2s_lightning.scoring' has no attribute {name!r}")
