"""Seeded sampling of comparison pairs inside one dataset, the level histogram, and the
single-image rating labels of the optional rating loss.

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
from pathlib import Path

from c2s_lightning.data.levels import LEVELS, comparison_level, interval_indices
from c2s_lightning.data.prompts import RATING_LEVELS
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
    returned unchanged. A ValueError when a fallback is needed and none is positive (all scores equal).
    """
    needs = [r for r in records if r.std is None or not r.std > 0]
    if not needs:
        return list(records)
    if std_fallback is not None:
        fallback, source = float(std_fallback), "the std_fallback option"
    elif known := [r.std for r in records if r.std is not None and r.std > 0]:
        fallback, source = statistics.median(known), "the median std of the dataset"
    else:
        scores = [r.mos for r in records]
        fallback = RELATIVE_STD_FALLBACK * (max(scores) - min(scores))
        source = f"{RELATIVE_STD_FALLBACK} x the MOS range"
    if not fallback > 0:
        raise ValueError(f"dataset {records[0].dataset!r}: {len(needs)} records lack a positive std and the "
                         f"fallback from {source} is {fallback}; give the dataset a positive std_fallback on its "
                         "MOS scale (in a config: `std_fallback: 0.5` in its data.datasets entry; "
                         "`data inspect --std-fallback 0.5`)")
    log.info("%s: std %.4g (%s) given to %d of %d records without a positive std",
             records[0].dataset, fallback, source, len(needs), len(records))
    return [r if r.std is not None and r.std > 0 else dataclasses.replace(r, std=fallback) for r in records]


def sample_pairs(records: Sequence[IQARecord], *, pairs: int | None = None, pairs_per_image: float | None = None,
                 seed: int = 0, std_fallback: float | None = None, balance_levels: bool = False) -> list[Pair]:
    """Sample ordered comparison pairs inside one dataset, each drawn pair in both image orders.

    The result has the amount asked rounded up to an even number (a multiple of 10 with
    ``balance_levels``). Distinct unordered pairs are drawn while enough exist; never self-pairs.

    Args:
        records: Images of a single dataset.
        pairs: Number of ordered pairs to return (exactly one of ``pairs`` and ``pairs_per_image``).
        pairs_per_image: Ordered pairs per image (``len(records) * pairs_per_image`` in total).
        seed: Seed of the draw; the same seed gives the same pairs.
        std_fallback: Std for records without one (see ``with_std_fallback``).
        balance_levels: Give every level the same count (see ``_draw_balanced``) instead of
            the dataset's natural mix, where ``similar`` and ``better``/``worse`` are rarer
            than the extremes when scores spread widely.

    Raises:
        ValueError: on mixed datasets, fewer than two images, a bad amount, or (when
            balancing) a level that no pair of the dataset has.
    """
    names = {r.dataset for r in records}
    if len(names) > 1:
        raise ValueError(f"pairs never cross datasets, got records of {sorted(names)}")
    if len(records) < 2:
        raise ValueError(f"dataset {next(iter(names), '?')!r}: need at least 2 images to make pairs")
    if (pairs is None) == (pairs_per_image is None):
        raise ValueError("give exactly one of pairs and pairs_per_image")
    total = pairs if pairs is not None else round(len(records) * pairs_per_image)
    if total < 1:
        raise ValueError(f"the amount of pairs must be at least 1, got {total}")
    records = with_std_fallback(records, std_fallback)
    rng = random.Random(seed)
    if balance_levels:
        unordered = _draw_balanced(records, math.ceil(total / 10), rng)
    else:
        unordered = _draw_unordered(len(records), math.ceil(total / 2), rng)
    out = []
    for i, j in unordered:
        a, b = records[i], records[j]
        out.append(Pair(a, b, comparison_level(a, b)))
        out.append(Pair(b, a, comparison_level(b, a)))
    return out


def _draw_unordered(n: int, k: int, rng: random.Random) -> list[tuple[int, int]]:
    """k index pairs i < j; distinct while k <= n(n-1)/2, then repeats are allowed."""
    possible = n * (n - 1) // 2
    if k >= possible:
        every = [(i, j) for i in range(n) for j in range(i + 1, n)]
        return every + [every[rng.randrange(possible)] for _ in range(k - possible)]
    seen: set[tuple[int, int]] = set()
    out = []
    while len(out) < k:
        i, j = rng.randrange(n), rng.randrange(n)
        key = (min(i, j), max(i, j))
        if i != j and key not in seen:
            seen.add(key)
            out.append(key)
    return out


def _draw_balanced(records: Sequence[IQARecord], k: int, rng: random.Random) -> list[tuple[int, int]]:
    """Unordered index pairs whose two orders give each of the 5 levels ``2k`` times.

    A similar pair yields ``similar`` twice; a better/worse pair yields one of each, and so does
    a superior/inferior pair. So quotas of ``k`` similar, ``2k`` better/worse and ``2k``
    superior/inferior unordered pairs balance the levels. Pairs are drawn at random and kept
    while their gap's quota is open (distinct while the attempts last); a quota still open after
    ``50 x`` as many attempts as pairs wanted is filled by repeating its kept pairs.
    """
    n = len(records)
    quotas = (k, 2 * k, 2 * k)
    kept: tuple[list, list, list] = ([], [], [])
    seen: set[tuple[int, int]] = set()
    for _ in range(50 * 5 * k + 1000):
        if all(len(got) >= q for got, q in zip(kept, quotas)):
            break
        i, j = rng.randrange(n), rng.randrange(n)
        key = (min(i, j), max(i, j))
        if i == j or key in seen:
            continue
        seen.add(key)
        # the gap, whichever image is first: 0 similar, 1 better/worse, 2 superior/inferior
        gap = abs(LEVELS.index(comparison_level(records[i], records[j])) - 2)
        if len(kept[gap]) < quotas[gap]:
            kept[gap].append(key)
    for gap, (got, quota) in enumerate(zip(kept, quotas)):
        if not got:
            names = ("similar", "better/worse", "superior/inferior")[gap]
            raise ValueError(f"dataset {records[0].dataset!r}: no {names} pair found, cannot balance levels")
        got += [got[rng.randrange(len(got))] for _ in range(quota - len(got))]
    out = [key for got in kept for key in got]
    rng.shuffle(out)
    return out


def rating_labels(records: Sequence[IQARecord], levels: Sequence[str] = RATING_LEVELS) -> dict[Path, str]:
    """Single-image rating word of each record (one dataset's training part): the word of its
    interval among ``len(levels)`` equal-width intervals of the records' MOS range, worst first, cut by
    ``interval_indices``, the rule anchor selection uses too, so the words mean the same in both."""
    if not records:
        return {}
    edges, which = interval_indices([r.mos for r in records], len(levels))
    if not edges[-1] > edges[0]:
        raise ValueError(f"dataset {records[0].dataset!r}: all MOS equal, cannot map them to rating words")
    return {r.path: levels[k] for r, k in zip(records, which)}


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
