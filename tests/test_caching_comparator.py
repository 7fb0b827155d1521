"""CachingComparator: the inner comparator's answers, each pair computed once per model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from c2s_lightning.data.records import IQARecord
from c2s_lightning.models.comparator import Comparator
from c2s_lightning.models.fast_comparator import FastComparator
from c2s_lightning.scoring.bank import AnchorBank
from c2s_lightning.cache.caching_comparator import CachingComparator
from c2s_lightning.cache.store import ComparisonCache
from c2s_lightning.scoring.scorer import Compare2Scorer

PROTOCOL = {"template": "comparison", "pad_to_square": False}


class Counting:
    """Passes calls to a comparator and records how many pairs each call asked for."""

    def __init__(self, inner):
        self.inner, self.pairs = inner, []
        if hasattr(inner, "anchor_rows"):
            self.anchor_rows = self._anchor_rows

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def level_logits(self, firsts, seconds, batch_size=None):
        self.pairs.append(len(firsts))
        return self.inner.level_logits(firsts, seconds, batch_size)

    def _anchor_rows(self, anchors, tests, batch_size=None):
        self.pairs.append(len(anchors) * len(tests))
        return self.inner.anchor_rows(anchors, tests, batch_size)


def images(count: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(count)]


def test_anchor_rows_equal_the_inner_ones_and_are_computed_once(tiny_llava, tmp_path):
    anchors, tests = images(3, seed=0), images(4, seed=1)
    expected = FastComparator(tiny_llava).anchor_rows(anchors, tests)
    inner = Counting(FastComparator(tiny_llava))
    cached = CachingComparator(inner, ComparisonCache(tmp_path), "weights-a", PROTOCOL)
    first = cached.anchor_rows(anchors, tests, batch_size=5)
    torch.testing.assert_close(first, expected, atol=1e-6, rtol=0)
    assert inner.pairs == [12] and cached.counts() == {"computed": 12, "reused": 0}
    # Another comparator object on the same folder, other image objects with the same pixels:
    again = CachingComparator(inner, ComparisonCache(tmp_path), "weights-a", PROTOCOL)
    second = again.anchor_rows([a.copy() for a in anchors], [t.copy() for t in tests])
    assert inner.pairs == [12] and again.counts() == {"computed": 0, "reused": 12}
    assert torch.equal(second, first)  # bit for bit from the cache


def test_nested_anchor_sets_compute_only_the_new_anchors(tiny_llava, tmp_path):
    anchors, tests = images(5, seed=2), images(3, seed=3)
    expected = FastComparator(tiny_llava).anchor_rows(anchors, tests)
    inner = Counting(FastComparator(tiny_llava))
    cached = CachingComparator(inner, ComparisonCache(tmp_path), "weights-a", PROTOCOL)
    for k in (2, 3, 5):  # the beta sweep: each anchor set contains the previous one
        got = cached.anchor_rows(anchors[:k], tests)
        torch.testing.assert_close(got, expected[:, :k], atol=1e-6, rtol=0)
    assert inner.pairs == [2 * 3, 1 * 3, 2 * 3]  # one inner call per step, of the new anchors only
    assert cached.counts() == {"computed": 15, "reused": 2 * 3 + 3 * 3}


def test_partial_hits_are_grouped_by_missing_anchors(tiny_llava, tmp_path):
    anchors, tests = images(3, seed=4), images(4, seed=5)
    expected = FastComparator(tiny_llava).anchor_rows(anchors, tests)
    inner = Counting(FastComparator(tiny_llava))
    cached = CachingComparator(inner, ComparisonCache(tmp_path), "weights-a", PROTOCOL)
    cached.anchor_rows(anchors[:1], tests[:2])
    cached.anchor_rows(anchors[1:], tests[1:3])
    inner.pairs.clear()
    got = cached.anchor_rows(anchors, tests + [tests[3]])  # a repeated test image too
    torch.testing.assert_close(got[:4], expected, atol=1e-6, rtol=0)
    assert torch.equal(got[4], got[3])
    # test 0 misses anchors 1-2, test 1 none, test 2 anchor 0, test 3 all three (computed once)
    assert sorted(inner.pairs) == [1, 2, 3] and cached.computed == 2 + 4 + 6


def test_plain_inner_comparator_and_repeated_pairs(tiny_llava, tmp_path):
    a, b = images(2, seed=6), images(2, seed=7)
    firsts, seconds = [a[0], b[1], a[1], a[0]], [b[0], a[0], b[1], b[0]]  # the last repeats the first
    expected = Comparator(tiny_llava).level_logits(firsts, seconds, batch_size=1)
    inner = Counting(Comparator(tiny_llava))
    cached = CachingComparator(inner, ComparisonCache(tmp_path), "weights-a", PROTOCOL)
    got = cached.level_logits(firsts, seconds, batch_size=1)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert inner.pairs == [3] and cached.counts() == {"computed": 3, "reused": 1}
    rows = cached.anchor_rows(a, b)  # no inner anchor_rows: missing pairs go through level_logits
    torch.testing.assert_close(rows, FastComparator(tiny_llava).anchor_rows(a, b), atol=1e-5, rtol=0)
    assert inner.pairs == [3, 2]  # (a0, b0) and (a1, b1) were known; the rest in one call
    assert cached.level_logits([], []).shape == (0, 5) and cached.anchor_rows(a, []).shape == (0, 2, 5)


def test_a_new_fingerprint_or_protocol_recomputes_everything(tiny_llava, tmp_path):
    anchors, tests = images(2, seed=8), images(2, seed=9)
    inner = Counting(FastComparator(tiny_llava))
    cache = ComparisonCache(tmp_path)
    CachingComparator(inner, cache, "weights-a", PROTOCOL).anchor_rows(anchors, tests)
    CachingComparator(inner, cache, "weights-b", PROTOCOL).anchor_rows(anchors, tests)
    CachingComparator(inner, cache, "weights-a", {**PROTOCOL, "pad_to_square": True}).anchor_rows(anchors, tests)
    assert inner.pairs == [4, 4, 4]
    with pytest.raises(ValueError, match="fingerprint"):
        CachingComparator(inner, cache, "", PROTOCOL)


def _bank(folder: Path, anchors: list[Image.Image]) -> AnchorBank:
    records = []
    for i, image in enumerate(anchors):
        path = folder / f"anchor{i}.png"
        image.save(path)
        records.append(IQARecord(path=path, mos=float(i), std=0.1, ref=None, dataset="synth", name=path.name))
    return AnchorBank(records, dataset="synth", split="test")


def test_scores_equal_with_and_without_the_cache(tiny_llava, tmp_path):
    anchors, tests = images(3, seed=10), images(5, seed=11)
    expected = Compare2Scorer(FastComparator(tiny_llava), _bank(tmp_path, anchors), batch_size=6).score(tests)
    inner = Counting(FastComparator(tiny_llava))
    runs = []
    for _ in range(2):  # a second run: a fresh bank (its anchor block too) and a fresh cache object
        cached = CachingComparator(inner, ComparisonCache(tmp_path / "cache"), "weights-a", PROTOCOL)
        scores = Compare2Scorer(cached, _bank(tmp_path, anchors), batch_size=6).score(tests)
        torch.testing.assert_close(scores, expected, atol=1e-6, rtol=0)
        runs.append(cached.counts())
    assert runs == [{"computed": 3 * 3 + 5 * 3, "reused": 0}, {"computed": 0, "reused": 3 * 3 + 5 * 3}]
