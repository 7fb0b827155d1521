"""The level rule (boundaries included) and the pair sampler."""

import math
from pathlib import Path

import pytest

from c2s_lightning.data import LEVELS, IQARecord, comparison_level
from c2s_lightning.data.pairs import (
    format_histogram, level_histogram, rating_labels, sample_pairs, with_std_fallback)


def rec(mos, std=1.0, dataset="d", name=None):
    return IQARecord(path=Path(f"/x/{name or mos}.png"), mos=mos, std=std, ref=None, dataset=dataset,
                     name=name or str(mos))


# s = sqrt(0.6^2 + 0.8^2) = 1 exactly: q = first - second
@pytest.mark.parametrize(("q", "level"), [
    (2.5, "inferior"), (2.0, "worse"), (1.5, "worse"), (1.0, "similar"), (0.0, "similar"),
    (-0.999, "similar"), (-1.0, "better"), (-1.5, "better"), (-1.999, "better"), (-2.0, "superior"),
    (-3.0, "superior"), (2.0001, "inferior"),
])
def test_comparison_level_rule_and_boundaries(q, level):
    first, second = rec(10.0, 0.6), rec(10.0 - q, 0.8)
    assert math.isclose(math.hypot(0.6, 0.8), 1.0)
    assert comparison_level(first, second) == level


def test_levels_order():
    assert LEVELS == ("inferior", "worse", "similar", "better", "superior")


def test_comparison_level_refuses_cross_dataset_and_missing_std():
    with pytest.raises(ValueError, match="cross datasets"):
        comparison_level(rec(1, dataset="a"), rec(2, dataset="b"))
    with pytest.raises(ValueError, match="no std"):
        comparison_level(rec(1, std=None), rec(2))


def test_sample_pairs_amount_orders_no_self_pairs_and_seeded():
    records = [rec(float(i), 0.5) for i in range(20)]
    pairs = sample_pairs(records, pairs=40, seed=3)
    assert len(pairs) == 40
    assert all(p.first.path != p.second.path for p in pairs)
    # each drawn pair appears in both orders, with mirrored levels
    for a, b in zip(pairs[::2], pairs[1::2]):
        assert (a.first, a.second) == (b.second, b.first)
        assert LEVELS.index(a.level) == 4 - LEVELS.index(b.level)
    assert pairs == sample_pairs(records, pairs=40, seed=3)
    assert pairs != sample_pairs(records, pairs=40, seed=4)
    assert len(sample_pairs(records, pairs_per_image=3, seed=0)) == 60


def test_sample_pairs_distinct_until_exhausted():
    records = [rec(float(i)) for i in range(5)]  # 10 unordered pairs
    pairs = sample_pairs(records, pairs=20, seed=0)
    assert len({(p.first.name, p.second.name) for p in pairs}) == 20


def test_sample_pairs_never_cross_datasets():
    with pytest.raises(ValueError, match="never cross"):
        sample_pairs([rec(1, dataset="a"), rec(2, dataset="b")], pairs=2)
    with pytest.raises(ValueError, match="exactly one"):
        sample_pairs([rec(1), rec(2)], pairs=2, pairs_per_image=1)


def test_std_fallback_never_zero():
    records = [rec(1.0, None), rec(2.0, 0.0), rec(3.0, 0.4), rec(5.0, 0.6)]
    filled = with_std_fallback(records)
    assert [r.std for r in filled] == [0.5, 0.5, 0.4, 0.6]  # median of the positive stds
    assert [r.std for r in with_std_fallback(records, std_fallback=2.0)][:2] == [2.0, 2.0]
    no_std = [rec(0.0, None), rec(10.0, None)]
    assert with_std_fallback(no_std)[0].std == pytest.approx(1.4)  # 0.14 x range
    with pytest.raises(ValueError, match="std_fallback"):
        with_std_fallback([rec(1.0, None), rec(1.0, None)])
    assert sample_pairs(no_std, pairs=2)  # no division by zero


@pytest.mark.parametrize(("stds", "median"), [
    ([0.2, 0.3, 5.0], 0.3),  # the middle one: the mean (1.83) would be pulled up by the outlier
    ([0.1, 0.2, 0.4, 9.0], 0.3),  # an even count: halfway between the two middle ones (mean 2.425)
])
def test_std_fallback_is_the_median_of_the_known_stds(stds, median):
    records = [rec(float(k), s) for k, s in enumerate(stds)] + [rec(9.5, None), rec(9.7, 0.0)]
    filled = with_std_fallback(records)
    assert [r.std for r in filled] == pytest.approx([*stds, median, median], abs=1e-12)


def test_level_histogram_counts_per_dataset():
    records = [rec(float(i), 0.3) for i in range(10)]
    pairs = sample_pairs(records, pairs=30, seed=1)
    hist = level_histogram(pairs)
    assert list(hist) == ["d"] and sum(hist["d"].values()) == 30
    assert hist["d"]["inferior"] == hist["d"]["superior"]  # both orders mirror the levels
    assert "superior" in format_histogram(hist)


def test_balance_levels_gives_equal_counts_and_keeps_both_orders():
    # scores 0, 0.25, .., 4.75 with std 0.3 (s ~ 0.42): most random pairs are far apart, few similar
    records = [rec(i / 4, 0.3, name=f"r{i}") for i in range(20)]
    natural = level_histogram(sample_pairs(records, pairs=200, seed=0))["d"]
    assert natural["similar"] < natural["superior"]
    pairs = sample_pairs(records, pairs=200, seed=0, balance_levels=True)
    assert level_histogram(pairs)["d"] == {lvl: 40 for lvl in LEVELS}
    for a, b in zip(pairs[::2], pairs[1::2]):
        assert (a.first, a.second) == (b.second, b.first)
    assert pairs == sample_pairs(records, pairs=200, seed=0, balance_levels=True)
    assert len(sample_pairs(records, pairs=13, seed=0, balance_levels=True)) == 20  # multiple of 10


def test_balance_levels_repeats_a_rare_level_and_refuses_a_missing_one():
    # one similar unordered pair only (0.0/0.1); it is repeated to fill its quota
    records = [rec(0.0, 0.3, name="a"), rec(0.1, 0.3, name="b"), rec(5.0, 0.3, name="c"), rec(5.6, 0.3, name="d"),
               rec(9.0, 0.3, name="e")]
    hist = level_histogram(sample_pairs(records, pairs=50, seed=1, balance_levels=True))["d"]
    assert hist == {lvl: 10 for lvl in LEVELS}
    with pytest.raises(ValueError, match="cannot balance"):
        sample_pairs([rec(0.0, 0.3, name="a"), rec(9.0, 0.3, name="b")], pairs=10, balance_levels=True)


def test_rating_labels_equal_width_intervals():
    records = [rec(m, name=f"m{m}") for m in (1.0, 1.79, 1.81, 3.0, 4.19, 4.21, 5.0)]
    words = [rating_labels(records)[r.path] for r in records]
    assert words == ["bad", "bad", "poor", "fair", "good", "excellent", "excellent"]
    with pytest.raises(ValueError, match="all MOS equal"):
        rating_labels([rec(2.0, name="x"), rec(2.0, name="y")])
