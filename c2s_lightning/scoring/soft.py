"""From the five level logits of one comparison to the probability that the second image wins.

The logits are those of the level tokens at the answer position, in ``LEVELS`` order (inferior,
worse, similar, better, superior). Two choices of the authors' release are deliberately not
repeated: it divided the logits by 100 before the softmax (every probability then sits near 0.5)
and its evaluation summed logits across anchors instead of comparing against each anchor.
"""

from __future__ import annotations

import torch

from c2s_lightning.data.levels import LEVEL_WEIGHTS, LEVELS

# Hard-vote value of each level for the count-matrix ablation: a win, a loss or half of each.
_COUNT_VALUES = (0.0, 0.0, 0.5, 1.0, 1.0)


def _as_level_logits(level_logits: torch.Tensor) -> torch.Tensor:
    if level_logits.ndim == 0 or level_logits.shape[-1] != len(LEVELS):
        raise ValueError(f"level logits need a last dimension of {len(LEVELS)} ({', '.join(LEVELS)}), "
                         f"got shape {tuple(level_logits.shape)}")
    # bf16/fp16 logits are widened: the softmax of close logits needs the precision.
    dtype = level_logits.dtype if level_logits.dtype == torch.float64 else torch.float32
    return level_logits.to(dtype)


def level_probabilities(level_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Softmax over the five level logits, divided by ``temperature`` first.

    Args:
        level_logits: Tensor ``[..., 5]`` of logits in ``LEVELS`` order.
        temperature: Positive softmax temperature; 1 is the paper's setting.

    Returns:
        Tensor ``[..., 5]`` (float32, or float64 for float64 input) summing to 1 on the last axis.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    return torch.softmax(_as_level_logits(level_logits) / temperature, dim=-1)


def soft_probability(level_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Probability that the second image is better than the first (the soft comparison).

    ``p = sum_k w_k softmax(logits / temperature)_k`` with ``w = LEVEL_WEIGHTS``
    ``(0, 0.25, 0.5, 0.75, 1)``.

    Args:
        level_logits: Tensor ``[..., 5]`` of logits in ``LEVELS`` order.
        temperature: Positive softmax temperature; 1 is the paper's setting.

    Returns:
        Tensor ``[...]`` of probabilities in ``[0, 1]`` (float32, or float64 for float64 input).
    """
    probs = level_probabilities(level_logits, temperature)
    weights = torch.tensor(LEVEL_WEIGHTS, dtype=probs.dtype, device=probs.device)
    return probs @ weights


def count_probability(level_logits: torch.Tensor) -> torch.Tensor:
    """Hard vote of the most likely level (the paper's count-matrix ablation).

    better or superior -> 1 (the second image wins), worse or inferior -> 0, similar -> 0.5.

    Args:
        level_logits: Tensor ``[..., 5]`` of logits in ``LEVELS`` order.

    Returns:
        Tensor ``[...]`` with values in ``{0, 0.5, 1}``.
    """
    logits = _as_level_logits(level_logits)
    values = torch.tensor(_COUNT_VALUES, dtype=logits.dtype, device=logits.device)
    return values[logits.argmax(dim=-1)]
