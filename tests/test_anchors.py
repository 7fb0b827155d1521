"""Anchor selection on a hand-worked list, and the paper's KonIQ-10k split-1 anchors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from c2s_lightning.data.records import IQARecord
from c2s_lightning.scoring.anchors import interval_edges, select_anchors

DATA = Path(__file__).parent / "data"


def _rec(name: str, mos: float, std: float | None) -> IQARecord:
    path = Path(f"/imgs/{name}.png")
    return IQARecord(path=path, mos=mos, std=std, ref=None, dataset="toy", name=name)


# MOS range [0, 10], alpha=5 -> [0,2) [2,4) [4,6) [6,8) [8,10]. Worked by hand:
#   interval 1: a (0, .5), b (1.5, .2)          min -> b, max -> a
#   interval 2: c (2, .3) on the edge, d (3.9, .4)  min -> c, max -> d
#   interval 3: e (4, .1), f (5, .1), g (5.5, .7)   min -> e (tie with f, by name), max -> g
#   interval 4: h (7.99, .2)                    both -> h
#   interval 5: i (8, .3), j (10, .9) the max   min -> i, max -> j
TOY = [
    _rec("a", 0.0, 0.5), _rec("b", 1.5, 0.2), _rec("c", 2.0, 0.3), _rec("d", 3.9, 0.4),
    _rec("e", 4.0, 0.1), _rec("f", 5.0, 0.1), _rec("g", 5.5, 0.7), _rec("h", 7.99, 0.2),
    _rec("i", 8.0, 0.3), _rec("j", 10.0, 0.9),
]  # fmt: skip


def _names(records):
    return [r.name for r in records]


def test_interval_edges():
    assert interval_edges(0.0, 10.0, 5) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("min_variance", list("bcehi")), ("max_variance", list("adghj"))],
)
def test_variance_rules_match_hand_worked_list(rule, expected):
    assert _names(select_anchors(TOY, rule=rule)) == expected
    # Deterministic tie-breaks: the input order does not matter.
    assert _names(select_anchors(TOY[::-1], rule=rule)) == expected


def test_beta_two_orders_within_interval_by_std():
    records = TOY + [_rec("h2", 6.5, 0.25)]
    anchors = select_anchors(records, beta=2)
    assert _names(anchors) == ["b", "a", "c", "d", "e", "f", "h", "h2", "i", "j"]


def test_random_rule_is_seeded_and_stays_in_intervals():
    records = [_rec(f"r{k}", k / 10, None) for k in range(101)]  # 0.0 .. 10.0, no std needed
    first = select_anchors(records, beta=3, rule="random", seed=7)
    assert first == select_anchors(records[::-1], beta=3, rule="random", seed=7)
    for k, anchor in enumerate(first):
        low = 2 * (k // 3)
        assert low <= anchor.mos < low + 2 or (low == 8 and anchor.mos == 10)
    draws = {
        tuple(_names(select_anchors(records, beta=3, rule="random", seed=seed)))
        for seed in range(5)
    }
    assert len(draws) > 1


def test_interval_with_too_few_images_is_named():
    message = r"interval 4 of 5, \[6, 8\), holds 1 image\(s\) but beta=2"
    with pytest.raises(ValueError, match=message):
        select_anchors(TOY, beta=2)


def test_missing_std_is_named_for_variance_rules():
    records = TOY + [_rec("nostd", 3.0, None)]
    with pytest.raises(ValueError, match=r"/imgs/nostd\.png has none"):
        select_anchors(records)
    assert len(select_anchors(records, rule="random")) == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rule": "median"}, "unknown anchor rule 'median'"),
        ({"alpha": 0}, "alpha"),
        ({"beta": 0}, "beta"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_anchors(TOY, **kwargs)


def test_empty_records():
    with pytest.raises(ValueError, match="empty"):
        select_anchors([])


def test_paper_koniq_split1_anchors():
    """The paper's anchors on KonIQ-10k split 1 (MOS/std about 1.09/.29, 2.02/.39, 2.96/.38,
    3.21/.41, 4.01/.34).

    tests/data/koniq10k_split1_train.tsv.gz is /work/shared/data/liqe/koniq10k_all.txt (LIQE's
    list: path, MOS, std) without the images of compare2score/splits_test/1/koniq10k_test.json.
    """
    with gzip.open(DATA / "koniq10k_split1_train.tsv.gz", "rt", encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle]
    assert len(rows) == 8058
    records = [
        IQARecord(Path("/koniq") / p, float(m), float(s), None, "koniq10k", p) for p, m, s in rows
    ]
    anchors = select_anchors(records)
    paper = [(1.09, 0.29), (2.02, 0.39), (2.96, 0.38), (3.21, 0.41), (4.01, 0.34)]
    for anchor, (mos, std) in zip(anchors, paper, strict=True):
        assert abs(anchor.mos - mos) <= 0.01 and abs(anchor.std - std) <= 0.01
    # Exactly, from the list (the paper's two-digit figures mix rounding and truncation).
    assert [(a.mos, a.std) for a in anchors] == [
        (1.096154, 0.29623), (2.027273, 0.39397), (2.961539, 0.381833),
        (3.212963, 0.41131), (4.009091, 0.345228),
    ]  # fmt: skip
    # Interval 2 has two images with identical MOS and std; the name decides.
    assert anchors[1].name == "1024x768/396505725.jpg"
