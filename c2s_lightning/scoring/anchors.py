"""Anchor selection: a few training images that span the score range (paper section 3.3).

The MOS range ``[min, max]`` of the records is cut into ``alpha`` equal-width intervals
(``[e_k, e_{k+1})``, the last one closed so that the maximum belongs to it) and ``beta`` images
are taken from each. The paper's rule keeps the images the raters agreed on most (smallest std);
the ablations take the largest std or a seeded random choice.

Ties are broken by ``(name, path)`` after the rule's std, and the random rule samples with
``random.Random(seed)`` from the candidates sorted so: the same records and seed give the same
anchors in any input order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from c2s_lightning.data.levels import interval_edges, interval_indices  # noqa: F401 (interval_edges re-exported)
from c2s_lightning.data.records import IQARecord

RULES = ("min_variance", "max_variance", "random")
"""Anchor selection rules: smallest std (paper default), largest std, seeded random."""


def _tie_key(record: IQARecord) -> tuple[str, str]:
    return (record.name, str(record.path))


def _pick(members: list[IQARecord], beta: int, rule: str, rng: random.Random) -> list[IQARecord]:
    if rule == "min_variance":
        return sorted(members, key=lambda r: (r.std, *_tie_key(r)))[:beta]
    if rule == "max_variance":
        return sorted(members, key=lambda r: (-r.std, *_tie_key(r)))[:beta]
    return rng.sample(sorted(members, key=_tie_key), beta)


def _check_arguments(records: Sequence[IQARecord], alpha: int, beta: int, rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"unknown anchor rule {rule!r}; choose one of {', '.join(RULES)}")
    if not records:
        raise ValueError("cannot select anchors from an empty list of records")
    for name, value in (("alpha (number of intervals)", alpha), ("beta (anchors per interval)", beta)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    missing = next((r for r in records if r.std is None), None)
    if rule != "random" and missing is not None:
        raise ValueError(f"rule {rule!r} needs a std for every record, but {missing.path} has none; "
                         "use rule='random' or give the dataset a std fallback")


def select_anchors(records: Sequence[IQARecord], alpha: int = 5, beta: int = 1, rule: str = "min_variance",
                   seed: int = 0) -> list[IQARecord]:
    """Pick ``beta`` anchors from each of ``alpha`` equal-width MOS intervals.

    Args:
        records: Candidate images (normally the training part of the anchor dataset).
        alpha: Number of equal-width intervals over the records' MOS range.
        beta: Number of anchors taken from each interval.
        rule: ``"min_variance"`` (smallest std, the paper's choice), ``"max_variance"`` (largest
            std) or ``"random"`` (seeded uniform choice; std not needed).
        seed: Seed of the random rule; ignored by the variance rules.

    Returns:
        ``alpha * beta`` records, interval by interval from the worst to the best; within an
        interval in the rule's order (smallest std first for ``min_variance``).

    Raises:
        ValueError: Empty records, unknown rule, non-positive ``alpha``/``beta``, a record without
            std under a variance rule, or an interval holding fewer than ``beta`` images.
    """
    _check_arguments(records, alpha, beta, rule)
    edges, which = interval_indices([r.mos for r in records], alpha)
    members = [[r for r, k in zip(records, which) if k == interval] for interval in range(alpha)]
    rng = random.Random(seed)
    anchors: list[IQARecord] = []
    for k, interval in enumerate(members):
        if len(interval) < beta:
            closing = "]" if k == alpha - 1 else ")"
            raise ValueError(f"MOS interval {k + 1} of {alpha}, [{edges[k]:.6g}, {edges[k + 1]:.6g}{closing}, "
                             f"holds {len(interval)} image(s) but beta={beta} are needed; "
                             "lower alpha or beta, or use more records")
        anchors.extend(_pick(interval, beta, rule, rng))
    return anchors
