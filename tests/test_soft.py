"""Soft comparison probabilities and the hard-vote ablation."""

from __future__ import annotations

import math

import pytest
import torch

from c2s_lightning.scoring.soft import count_probability, level_probabilities, soft_probability


def test_matches_hand_computed_weighted_softmax():
    logits = torch.tensor([0.3, -1.2, 2.0, 0.7, 1.1], dtype=torch.float64)
    exps = [math.exp(v) for v in logits.tolist()]
    expected = sum(w * e for w, e in zip((0, 0.25, 0.5, 0.75, 1), exps)) / sum(exps)
    assert soft_probability(logits).item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("level", "weight"), enumerate([0.0, 0.25, 0.5, 0.75, 1.0]))
def test_confident_level_gives_its_weight(level, weight):
    logits = torch.full((5,), -30.0)
    logits[level] = 30.0
    assert soft_probability(logits).item() == pytest.approx(weight, abs=1e-6)


def test_equal_logits_and_high_temperature_give_one_half():
    assert soft_probability(torch.zeros(5)).item() == pytest.approx(0.5)
    logits = torch.tensor([0.0, 0.0, 0.0, 0.0, 5.0])
    assert soft_probability(logits).item() > 0.9  # no /100 flattening towards 0.5
    assert soft_probability(logits, temperature=1e4).item() == pytest.approx(0.5, abs=1e-3)


def test_temperature_divides_logits():
    logits = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(soft_probability(logits, 2.5), soft_probability(logits / 2.5))


def test_keeps_leading_shape_and_probabilities_sum_to_one():
    logits = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(1))
    probs = level_probabilities(logits)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, 4))
    p = soft_probability(logits)
    assert p.shape == (3, 4) and bool(((p >= 0) & (p <= 1)).all())


def test_half_precision_logits_are_widened():
    logits = torch.tensor([[1.0, 2.0, 3.0, 2.0, 1.0]], dtype=torch.bfloat16)
    assert soft_probability(logits).dtype == torch.float32
    assert count_probability(logits).dtype == torch.float32


@pytest.mark.parametrize(("level", "vote"), enumerate([0.0, 0.0, 0.5, 1.0, 1.0]))
def test_count_probability_is_the_hard_vote(level, vote):
    logits = torch.zeros(2, 5)
    logits[:, level] = 1.0
    assert count_probability(logits).tolist() == [vote, vote]


def test_rejects_wrong_shape_and_temperature():
    with pytest.raises(ValueError, match="last dimension of 5"):
        soft_probability(torch.zeros(4))
    with pytest.raises(ValueError, match="last dimension of 5"):
        count_probability(torch.tensor(1.0))
    with pytest.raises(ValueError, match="temperature"):
        soft_probability(torch.zeros(5), temperature=0.0)
