"""Seeded sampling of comparison pairs inside one dataset, and the level histogram.

Pairs never cross datasets: absolute scores of two datasets live on different scales, while the
level rule only needs a difference over stds inside one dataset.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import random
import statistics
from collections.abc import Sequence

from c2s_lightning.data.levels import LEVELS, comparison_level
from c2s_lightning.data.records import IQARecord

log = logging.getLogger(__name__)

RELATIVE_STD_FALLBACK = 0.14
"""Fallback std as a fraction of the MOS range when a dataset carries no std at all. KonIQ-10k's
median std (0.57 on its 1-5 scale) is about 0.14 of its range, so a dataset without std gets a
comparable spread of levels."""


@dataclasses.dataclass(frozen=True)
class Pair:
    """Two images of one dataset and the level of the second relative to the first."""

    first: IQARecord
    second: IQARecord
    level: str


def with_std_fallback(records: Sequence[IQARecord], std_fallback: float | None = None) -> list[IQARecord]:
    """Give every record a positive std, so the level rule never meets a zero spread.

    Records whose std is missing or not positive get, in order of preference: ``std_fallback``
    (on the dataset's MOS scale) when given; the median of the positive stds in ``records``; or
    ``RELATIVE_STD_FALLBACK`` times the MOS range. Records that already have a positive std are
    returned unchanged.

    Raises:
        ValueError: if a fallback is needed and none is positive (e.g. all scores equal).
    """
    needs = [r for r in records if r.std is None or not r.std > 0]
    if not needs:
        return list(records)
    fallback, source = _fallback_value(records, std_fallback)
    if not fallback > 0:
        raise ValueError(
            f"dataset {records[0].dataset!r}: {len(needs)} records lack a positive std and the "
            f"fallback from {source} is {fallback}; set std_fallback to a positive number"
        )
    log.info("%s: std %.4g (%s) given to %d of %d records without a positive std",
             records[0].dataset, fallback, source, len(needs), len(records))
    return [r if r.std is not None and r.std > 0 else dataclasses.replace(r, std=fallback) for r in records]


def _fallback_value(records: Sequence[IQARecord], std_fallback: float | None) -> tuple[float, str]:
    if std_fallback is not None:
        return float(std_fallback), "the std_fallback option"
    known = [r.std for r in records if r.std is not None and r.std > 0]
    if known:
        return statistics.median(known), "the median std of the dataset"
    scores = [r.mos for r in records]
    return RELATIVE_STD_FALLBACK * (max(scores) - min(scores)), f"{RELATIVE_STD_FALLBACK} x the MOS range"


def sample_pairs(
    records: Sequence[IQARecord],
    *,
    pairs: int | None = None,
    pairs_per_image: float | None = None,
    seed: int = 0,
    std_fallback: float | None = None,
) -> list[Pair]:
    """Sample ordered comparison pairs inside one dataset, each drawn pair in both image orders.

    Exactly one of ``pairs`` (ordered pairs in total) and ``pairs_per_image`` (ordered pairs per
    image) sets the amount; the result has that many pairs rounded up to an even number. Distinct
    unordered pairs are drawn without replacement while enough exist; self-pairs never occur.

    Args:
        records: Images of a single dataset.
        pairs: Number of ordered pairs to return.
        pairs_per_image: Ordered pairs per image (``len(records) * pairs_per_image`` in total).
        seed: Seed of the draw; the same seed gives the same pairs.
        std_fallback: Std for records without one (see ``with_std_fallback``).

    Raises:
        ValueError: on mixed datasets, fewer than two images, or a bad amount.
    """
    names = {r.dataset for r in records}
    if len(names) > 1:
        raise ValueError(f"pairs never cross datasets, got records of {sorted(names)}")
    if len(records) < 2:
        raise ValueError(f"dataset {next(iter(names), '?')!r}: need at least 2 images to make pairs")
    total = _amount(len(records), pairs, pairs_per_image)
    records = with_std_fallback(records, std_fallback)
    rng = random.Random(seed)
    unordered = _draw_unordered(len(records), math.ceil(total / 2), rng)
    out = []
    for i, j in unordered:
        a, b = records[i], records[j]
        out.append(Pair(a, b, comparison_level(a, b)))
        out.append(Pair(b, a, comparison_level(b, a)))
    return out


def _amount(n_images: int, pairs: int | None, pairs_per_image: float | None) -> int:
    if (pairs is None) == (pairs_per_image is None):
        raise ValueError("give exactly one of pairs and pairs_per_image")
    total = pairs if pairs is not None else round(n_images * pairs_per_image)
    if total < 1:
        raise ValueError(f"the amount of pairs must be at least 1, got {total}")
    return total


def _draw_unordered(n: int, k: int, rng: random.Random) -> list[tuple[int, int]]:
    """k index pairs i < j; distinct while k <= n(n-1)/2, then repeats are allowed."""
    possible = n * (n - 1) // 2
    if k >= possible:
        every = [(i, j) for i in range(n) for j in range(i + 1, n)]
        extra = [every[rng.randrange(possible)] for _ in range(k - possible)]
        return every + extra
    seen: set[tuple[int, int]] = set()
    out = []
    while len(out) < k:
        i, j = rng.randrange(n), rng.randrange(n)
        key = (min(i, j), max(i, j))
        if i != j and key not in seen:
            seen.add(key)
            out.append(key)
    return out


def level_histogram(pairs: Sequence[Pair]) -> dict[str, dict[str, int]]:
    """Counts of each level per dataset, in ``LEVELS`` order."""
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for p in pairs:
        counts[p.first.dataset][p.level] += 1
    return {name: {lvl: c[lvl] for lvl in LEVELS} for name, c in sorted(counts.items())}


def format_histogram(histogram: dict[str, dict[str, int]]) -> str:
    """A small text table of ``level_histogram`` with percentages, for logs and the terminal."""
    lines = ["dataset      " + " ".join(f"{lvl:>15}" for lvl in LEVELS) + "      total"]
    for name, row in histogram.items():
        total = sum(row.values()) or 1
        cells = " ".join(f"{row[lvl]:>8} ({100 * row[lvl] / total:4.1f}%)" for lvl in LEVELS)
        lines.append(f"{name:<12} {cells} {sum(row.values()):>10}")
    return "\n".join(lines)
