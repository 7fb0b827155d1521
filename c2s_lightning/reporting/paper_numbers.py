"""The Compare2Score paper's published numbers, as data, and which of them a run should be set beside.

Zhu et al., NeurIPS 2024 (arXiv 2405.19298): median SRCC / PLCC over the LIQE protocol's 10 splits,
one model trained on the six datasets jointly; keys are the project's reader names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

DATASET_NAMES = {
    "live": "LIVE", "csiq": "CSIQ", "kadid10k": "KADID-10k", "bid": "BID", "clive": "CLIVE",
    "koniq10k": "KonIQ-10k", "tid2013": "TID2013", "spaq": "SPAQ", "agiqa3k": "AGIQA-3K",
}
SIX = ("live", "csiq", "kadid10k", "bid", "clive", "koniq10k")

# The evaluation settings behind the paper's main table; ablations change one of them.
PAPER_SETTINGS = {"alpha": 5, "beta": 1, "rule": "min_variance", "matrix": "probability"}

# Released code's scoring cost, for context beside our seconds per image (different hardware).
PAPER_SECONDS_PER_IMAGE = "about 0.93 s per image on an RTX 3090 with the released code"
PAPER_BETA_FINDING = "beta > 1 does not raise SRCC, and the scoring time grows linearly with beta"


@dataclasses.dataclass(frozen=True)
class PaperRow:
    """One row of a paper table: where it comes from, SRCC and (where published) PLCC by dataset."""

    source: str
    srcc: dict[str, float]
    plcc: dict[str, float] = dataclasses.field(default_factory=dict)


def _row(source: str, datasets: tuple[str, ...], srcc: tuple, plcc: tuple = ()) -> PaperRow:
    return PaperRow(source, dict(zip(datasets, srcc)), dict(zip(datasets, plcc)))


# the main table's row (six datasets, trained jointly) with the cross-dataset SRCC added
COMPARE2SCORE = PaperRow("main table + cross-dataset: Compare2Score",
                         dict(zip(SIX, (.972, .950, .952, .919, .914, .931)), tid2013=.823, spaq=.906, agiqa3k=.730),
                         dict(zip(SIX, (.969, .943, .939, .939, .928, .939))))
ANCHOR_SELECTION = {
    "random": _row("anchor selection: random", SIX, (.954, .939, .944, .881, .890, .915)),
    "max_variance": _row("anchor selection: max variance", SIX, (.958, .940, .926, .885, .879, .919)),
    "min_variance": _row("anchor selection: min variance", SIX, (.972, .950, .952, .919, .914, .931)),
}
_FOUR = ("live", "csiq", "bid", "clive")
COMPARISON_MATRIX = {
    "count": _row("count vs probability matrix: count", _FOUR, (.888, .875, .778, .816)),
    "probability": _row("count vs probability matrix: probability", _FOUR, (.974, .942, .921, .934)),
}


def paper_reference(settings: dict[str, Any], varied: set[str] = frozenset()) -> PaperRow | None:
    """The paper row measured under the same evaluation ``settings`` (by short name; missing ones are
    the paper's defaults), if the paper has one. A sweep over ``matrix`` (in ``varied``, the settings
    the compared runs vary) is set beside the matrix ablation even for its default row (likewise ``rule``)."""
    changed = {k for k, default in PAPER_SETTINGS.items() if k in settings and settings[k] != default}
    if changed <= {"matrix"} and ("matrix" in varied or changed):
        return COMPARISON_MATRIX.get(str(settings.get("matrix", "probability")))
    if changed <= {"rule"} and ("rule" in varied or changed):
        return ANCHOR_SELECTION.get(str(settings.get("rule", "min_variance")))
    return COMPARE2SCORE if not changed else None
