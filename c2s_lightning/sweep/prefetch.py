"""``sweep FILE --prefetch``: order an evaluation-only sweep so the comparison cache answers most runs.

Every ``evaluate`` run reads and writes the shared comparison cache (``scoring/comparison_cache``),
so a sweep over how comparisons are chosen or combined computes each comparison once whatever the
order. The order still matters for how much work happens *before* the first small run can be
read from the cache: with the variance rules the anchors of ``beta = k`` are the ``k`` lowest
(or highest) std images of each interval, so the anchor sets of a beta sweep are nested and the
largest-beta run computes the union of what every smaller-beta run of the same other settings
needs, in one batched pass (its anchor block and one row per image through ``anchor_rows``).
``--prefetch`` therefore runs the runs in descending ``evaluator.beta`` (stable otherwise), so
that pass comes first and every later run of the group is answered from the cache.

This is the union pass of the issue for the nested sets; a sweep over the rule or the seed has
no nesting, and its runs share only the anchors they have in common (the cache finds those in
any order). The ``random`` rule's anchors are not nested across beta (one generator draws for
every interval in turn), so its beta runs share only what they happen to share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BETA = "evaluator.beta"
CHECKPOINT = "--checkpoint"


def evaluated_checkpoint(command: Sequence[str]) -> str | None:
    """The ``--checkpoint`` of an ``evaluate`` command of this project, or None for any other."""
    tokens = list(command)
    if "evaluate" not in tokens:
        return None
    for i, token in enumerate(tokens):
        if token == CHECKPOINT and i + 1 < len(tokens):
            return tokens[i + 1]
        if token.startswith(CHECKPOINT + "="):
            return token.split("=", 1)[1]
    return None


def check_evaluation_only(runs: Sequence[Any]) -> None:
    """Refuse ``--prefetch`` for a sweep whose runs are not all ``evaluate`` of one checkpoint.

    Raises:
        ValueError: naming the first run that is not (training changes the weights, so nothing of
            one run could be prefetched for another).
    """
    checkpoints = set()
    for run in runs:
        checkpoint = evaluated_checkpoint(run.command)
        if checkpoint is None:
            raise ValueError(f"--prefetch needs an evaluation-only sweep, but run {run.name} is not "
                             "`evaluate --checkpoint ...`")
        checkpoints.add(checkpoint)
    if len(checkpoints) > 1:
        raise ValueError(f"--prefetch needs one evaluated checkpoint, but the runs evaluate {sorted(checkpoints)}")


def prefetch_order(runs: Sequence[Any]) -> list[Any]:
    """The runs with the largest ``evaluator.beta`` first (a run without it counts as beta 1,
    the evaluator's default); ties keep the sweep's order."""
    def beta(run) -> float:
        value = run.params.get(BETA, 1)
        return float(value) if isinstance(value, (int, float)) else 1.0

    return sorted(runs, key=lambda run: -beta(run))
