"""The five comparison levels and the rule that assigns one to a pair of images."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from c2s_lightning.data.records import IQARecord

LEVELS = ("inferior", "worse", "similar", "better", "superior")
"""Level of the SECOND image relative to the FIRST, worst to best."""

LEVEL_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Probability that the second image is better, for each level in ``LEVELS`` order."""


def level_from_scores(mos_first: float, mos_second: float, std_first: float, std_second: float) -> str:
    """Level of the second image from the two scores and stds (Compare2Score's rule).

    With ``q = mos_first - mos_second`` and ``s = sqrt(std_first**2 + std_second**2)``:
    inferior if ``q > 2s``; worse if ``s < q <= 2s``; similar if ``-s < q <= s``;
    better if ``-2s < q <= -s``; superior if ``q <= -2s``.
    """
    s = math.sqrt(std_first**2 + std_second**2)
    if not s > 0:
        raise ValueError(f"combined std must be positive, got {s} (std {std_first}, {std_second})")
    q = mos_first - mos_second
    if q > 2 * s:
        return "inferior"
    if q > s:
        return "worse"
    if q > -s:
        return "similar"
    if q > -2 * s:
        return "better"
    return "superior"


def comparison_level(first: IQARecord, second: IQARecord) -> str:
    """Level of ``second`` relative to ``first``; both must be from one dataset and carry a std."""
    if first.dataset != second.dataset:
        raise ValueError(f"pairs never cross datasets: {first.dataset!r} vs {second.dataset!r}")
    if first.std is None or second.std is None:
        missing = first.path if first.std is None else second.path
        raise ValueError(f"{missing}: record has no std; give the dataset a std fallback first")
    return level_from_scores(first.mos, second.mos, first.std, second.std)


def interval_edges(mos_min: float, mos_max: float, n: int) -> list[float]:
    """The ``n + 1`` edges of ``n`` equal-width intervals over ``[mos_min, mos_max]``."""
    width = (mos_max - mos_min) / n
    return [mos_min + k * width for k in range(n)] + [mos_max]


def interval_indices(scores: Sequence[float], n: int) -> tuple[list[float], list[int]]:
    """Cut ``[min, max]`` of ``scores`` into ``n`` equal-width intervals (anchor selection and
    the rating words share this rule): the edges, and each score's interval, worst first.

    A score equal to an inner edge opens the next interval; the maximum falls into the last one.
    """
    edges = interval_edges(min(scores), max(scores), n)
    return edges, [bisect.bisect_right(edges[1:-1], score) for score in scores]
