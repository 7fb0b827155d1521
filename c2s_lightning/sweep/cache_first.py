"""``sweep FILE --cache-first``: order an evaluation-only sweep so the comparison cache answers most runs.

With the variance rules the anchors of ``beta = k`` are the ``k`` lowest (or highest) std images of
each interval, so a beta sweep's anchor sets are nested: the largest-beta run computes, in one
batched pass, every comparison the smaller-beta runs need, and they read them from the cache.
Runs over the rule or the seed (and the ``random`` rule's betas) are not nested; they share only
the anchors they happen to have in common, which the cache finds in any order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BETA = "evaluator.beta"
CHECKPOINT = "--checkpoint"


def evaluated_checkpoint(command: Sequence[str]) -> str | None:
    """The ``--checkpoint`` of an ``evaluate`` command of this project, or None for any other."""
    if "evaluate" not in command:
        return None
    for i, token in enumerate(command):
        if token == CHECKPOINT and i + 1 < len(command):
            return command[i + 1]
        if token.startswith(CHECKPOINT + "="):
            return token.split("=", 1)[1]
    return None


def check_evaluation_only(runs: Sequence[Any]) -> None:
    """A ValueError unless every run is ``evaluate`` of one checkpoint (training changes the weights,
    so no run's comparisons serve another)."""
    checkpoints = set()
    for run in runs:
        checkpoint = evaluated_checkpoint(run.command)
        if checkpoint is None:
            raise ValueError(f"--cache-first needs an evaluation-only sweep, but run {run.name} is not "
                             "`evaluate --checkpoint ...`")
        checkpoints.add(checkpoint)
    if len(checkpoints) > 1:
        raise ValueError(f"--cache-first needs one evaluated checkpoint, but the runs evaluate {sorted(checkpoints)}")


def cache_first_order(runs: Sequence[Any]) -> list[Any]:
    """The runs with the largest ``evaluator.beta`` first (a run without it counts as beta 1,
    the evaluator's default); ties keep the sweep's order."""
    def beta(run) -> float:
        value = run.params.get(BETA, 1)
        return float(value) if isinstance(value, (int, float)) else 1.0

    return sorted(runs, key=lambda run: -beta(run))
