"""Metrics against scipy.stats and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from c2s_lightning.evaluation.correlations import (
    _logistic4_jacobian,
    evaluate_predictions,
    fit_logistic4,
    krcc,
    logistic4,
    pairwise_accuracy,
    plcc,
    srcc,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    mos = rng.uniform(1, 5, size=300)
    pred = np.tanh(mos - 3) + rng.normal(scale=0.2, size=300)  # monotone but non-linear
    return pred, mos


def test_rank_correlations_equal_scipy(data):
    pred, mos = data
    assert srcc(pred, mos) == pytest.approx(stats.spearmanr(pred, mos)[0], abs=1e-12)
    assert krcc(pred, mos) == pytest.approx(stats.kendalltau(pred, mos)[0], abs=1e-12)
    assert srcc(list(pred), list(mos)) == pytest.approx(srcc(pred, mos))


def test_plcc_without_fit_is_pearson(data):
    pred, mos = data
    assert plcc(pred, mos, fit=False) == pytest.approx(stats.pearsonr(pred, mos)[0], abs=1e-12)


def test_plcc_fit_linearises_a_logistic_relation():
    x = np.linspace(-4, 4, 200)
    y = logistic4(x, 5.0, 1.0, 0.5, 0.7)
    assert stats.pearsonr(x, y)[0] < 0.97
    assert plcc(x, y) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(fit_logistic4(x, y), [5.0, 1.0, 0.5, 0.7], rtol=1e-5)


def test_plcc_fit_beats_raw_pearson(data):
    pred, mos = data
    assert plcc(pred, mos) > plcc(pred, mos, fit=False)


def test_plcc_falls_back_to_pearson_with_a_warning():
    x, y = np.array([0.1, 0.5, 0.9]), np.array([1.0, 3.0, 2.0])  # 3 points, 4 parameters
    with pytest.warns(RuntimeWarning, match="logistic fit failed"):
        value = plcc(x, y)
    assert value == pytest.approx(stats.pearsonr(x, y)[0])
    assert fit_logistic4(x, y) is None


def test_logistic4_shape():
    assert logistic4(0.5, 5.0, 1.0, 0.5, -2.0) == pytest.approx(3.0)  # midpoint; |b4| used
    assert logistic4(np.array([-1e4, 1e4]), 5.0, 1.0, 0.0, 1.0).tolist() == [1.0, 5.0]


@pytest.mark.parametrize("b4", [0.7, -0.7])
def test_logistic4_jacobian_matches_finite_differences(b4):
    x, b, h = np.linspace(-3, 3, 7), np.array([5.0, 1.0, 0.3, b4]), 1e-6
    numeric = [
        (logistic4(x, *(b + h * e)) - logistic4(x, *(b - h * e))) / (2 * h) for e in np.eye(4)
    ]
    np.testing.assert_allclose(_logistic4_jacobian(x, *b), np.stack(numeric, 1), atol=1e-8)


def test_pairwise_accuracy_hand_case():
    mos = [1.0, 2.0, 3.0, 3.0]
    pred = [0.1, 0.3, 0.2, 0.2]
    # Pairs with distinct MOS: (0,1) ok, (0,2) ok, (0,3) ok, (1,2) wrong, (1,3) wrong; (2,3) tied.
    assert pairwise_accuracy(pred, mos) == pytest.approx(3 / 5)
    assert pairwise_accuracy(pred, mos, pairs=np.array([[0, 1], [2, 1], [2, 3]])) == 0.5
    # A tie in the prediction is never a correct order.
    assert pairwise_accuracy([1.0, 1.0], [1.0, 2.0]) == 0.0


def test_pairwise_accuracy_all_pairs_matches_brute_force(data):
    pred, mos = data
    mos = np.round(mos, 1)  # create MOS ties
    good = total = 0
    for i in range(len(mos)):
        for j in range(i + 1, len(mos)):
            if mos[i] != mos[j]:
                total += 1
                good += np.sign(pred[i] - pred[j]) == np.sign(mos[i] - mos[j])
    assert pairwise_accuracy(pred, mos) == pytest.approx(good / total, abs=1e-12)


def test_pairwise_accuracy_sampled_is_seeded_and_close(data):
    pred, mos = data
    sampled = pairwise_accuracy(pred, mos, pairs=20_000, seed=1)
    assert sampled == pairwise_accuracy(pred, mos, pairs=20_000, seed=1)
    assert sampled == pytest.approx(pairwise_accuracy(pred, mos), abs=0.02)


def test_evaluate_predictions_keys_and_values(data):
    pred, mos = data
    result = evaluate_predictions(pred, mos)
    assert set(result) == {"srcc", "plcc", "krcc", "pairwise_accuracy"}
    assert result["srcc"] == pytest.approx(srcc(pred, mos))
    # Without ties, pairwise accuracy is (1 + Kendall's tau) / 2.
    assert result["pairwise_accuracy"] == pytest.approx((1 + result["krcc"]) / 2)


@pytest.mark.parametrize(
    ("pred", "mos", "message"),
    [([1.0, 2.0], [1.0], "differ in length"), ([1.0], [1.0], "at least 2"),
     ([1.0, np.nan], [1.0, 2.0], "finite")],
)  # fmt: skip
def test_rejects_bad_input(pred, mos, message):
    with pytest.raises(ValueError, match=message):
        srcc(pred, mos)


def test_pairwise_accuracy_needs_distinct_mos():
    with pytest.raises(ValueError, match="distinct MOS"):
        pairwise_accuracy([1.0, 2.0], [3.0, 3.0])
    with pytest.raises(ValueError, match="distinct MOS"):
        pairwise_accuracy([1.0, 2.0], [3.0, 3.0], pairs=10)
