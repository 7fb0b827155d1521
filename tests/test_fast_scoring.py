"""FastComparator: same logits as the plain path, whatever the batching and caching."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from c2s_lightning.data.records import IQARecord
from c2s_lightning.models.backbones import build_backbone
from c2s_lightning.models.comparator import Comparator
from c2s_lightning.models.fast_comparator import FastComparator
from c2s_lightning.scoring.bank import AnchorBank
from c2s_lightning.scoring.scorer import Compare2Scorer
from c2s_lightning.scoring.soft import soft_probability

FAMILIES = ["tiny-llava", "tiny-llava-next", "tiny-qwen2-vl", "tiny-idefics3"]
SIZES = [(32, 32), (40, 24), (24, 48), (48, 40)]  # varied: several token counts per family


def images(count: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            for w, h in (SIZES[i % len(SIZES)] for i in range(count))]


def plain_rows(backbone, anchors, tests) -> torch.Tensor:
    firsts = [a for _ in tests for a in anchors]
    seconds = [t for t in tests for _ in anchors]
    # One padded batch: with mixed sizes this also checks that padding changes nothing.
    return Comparator(backbone).level_logits(firsts, seconds).reshape(len(tests), len(anchors), 5)


@pytest.mark.parametrize("name", FAMILIES)
def test_anchor_rows_match_plain_pairs_at_every_batch_size(tiny_backbone_cache, name):
    backbone = tiny_backbone_cache(name)
    anchors, tests = images(2, seed=0), images(4, seed=1)
    expected = plain_rows(backbone, anchors, tests)
    for reuse_prefix in (True, False):
        comparator = FastComparator(backbone, reuse_prefix=reuse_prefix)
        assert comparator.fast
        for batch_size in (1, 3, 64):
            got = comparator.anchor_rows(anchors, tests, batch_size=batch_size)
            assert got.shape == (4, 2, 5)
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
            torch.testing.assert_close(soft_probability(got), soft_probability(expected), atol=1e-6, rtol=0)


def test_level_logits_match_plain_path_and_keep_pair_order(tiny_backbone_cache):
    backbone = tiny_backbone_cache("tiny-qwen2-vl")
    a, b = images(2, seed=3), images(2, seed=4)
    firsts, seconds = [a[0], b[1], a[1], a[0]], [b[0], a[0], b[1], a[0]]  # repeats, mixed sizes
    expected = Comparator(backbone).level_logits(firsts, seconds, batch_size=1)
    got = FastComparator(backbone).level_logits(firsts, seconds, batch_size=3)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_anchor_work_is_done_once(tiny_llava, monkeypatch):
    comparator = FastComparator(tiny_llava, batch_size=8)
    encoded, forwards = [], []
    vision, forward = comparator._vision, comparator._forward
    monkeypatch.setattr(comparator, "_vision", lambda imgs: encoded.append(len(imgs)) or vision(imgs))
    monkeypatch.setattr(comparator, "_forward", lambda *a, **k: forwards.append(1) or forward(*a, **k))
    anchors = images(3, seed=0)
    comparator.anchor_rows(anchors, images(4, seed=1))  # 12 pairs: 1 prefix batch + 2 suffix batches
    assert (sum(encoded), len(forwards)) == (3 + 4, 3)
    comparator.anchor_rows(anchors, images(4, seed=2))  # anchors neither re-encoded nor re-run
    assert (sum(encoded), len(forwards)) == (3 + 4 + 4, 3 + 2)
    assert len(comparator._prefixes) == 3
    assert comparator.anchor_rows(anchors, []).shape == (0, 3, 5)


def test_caches_are_dropped_when_weights_change(make_images):
    backbone = build_backbone("tiny-llava", seed=1)  # its own copy: the weights get changed
    anchors, tests = make_images(2, seed=0), make_images(2, seed=1)
    comparator = FastComparator(backbone)
    before = comparator.anchor_rows(anchors, tests)
    with torch.no_grad():
        next(backbone.model.model.vision_tower.parameters()).mul_(3.0)
        backbone.model.lm_head.weight.add_(0.05)
    after = comparator.anchor_rows(anchors, tests)
    assert not torch.allclose(before, after, atol=1e-3)
    torch.testing.assert_close(after, plain_rows(backbone, anchors, tests), atol=1e-5, rtol=0)


def test_unsupported_family_takes_the_plain_path(tiny_llava):
    other = dataclasses.replace(tiny_llava, family="mplug_owl2")
    comparator = FastComparator(other)
    assert not comparator.fast
    anchors, tests = images(2, seed=0), images(3, seed=1)
    torch.testing.assert_close(comparator.anchor_rows(anchors, tests, batch_size=2),
                               plain_rows(tiny_llava, anchors, tests), atol=1e-6, rtol=0)


def _bank(tmp_path: Path, anchors: list[Image.Image]) -> AnchorBank:
    records = []
    for i, image in enumerate(anchors):
        path = tmp_path / f"anchor{i}.png"
        image.save(path)
        records.append(IQARecord(path=path, mos=float(i), std=0.1, ref=None, dataset="synth", name=path.name))
    return AnchorBank(records, dataset="synth", split="test")


@pytest.mark.parametrize("name", ["tiny-llava", "tiny-qwen2-vl"])
def test_scorer_scores_equal_across_paths_and_batch_sizes(tiny_backbone_cache, tmp_path, name):
    backbone = tiny_backbone_cache(name)
    tests = images(5, seed=5)
    reference = Compare2Scorer(Comparator(backbone), _bank(tmp_path, images(3, seed=0)), batch_size=64)
    expected = reference.score(tests)
    block = reference.anchor_block()
    for comparator in (FastComparator(backbone), FastComparator(backbone, reuse_prefix=False)):
        for batch_size in (1, 64):
            scorer = Compare2Scorer(comparator, _bank(tmp_path, images(3, seed=0)), batch_size=batch_size)
            torch.testing.assert_close(scorer.score(tests), expected, atol=1e-5, rtol=0)
            torch.testing.assert_close(scorer.anchor_block(), block, atol=1e-6, rtol=0)


def _benchmark():
    path = Path(__file__).parents[1] / "benchmarks" / "scoring.py"
    spec = importlib.util.spec_from_file_location("scoring_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_refuses_figures_that_cannot_be_right():
    wrong = _benchmark().wrong_figures
    rows = torch.tensor([[[0.1, 0.2, 0.3, 0.4, 0.5]], [[0.5, 0.4, 0.3, 0.2, 0.1]]])
    same = rows[:1].expand(2, -1, -1)  # issue 22: every test image the same logits
    assert wrong(rows, rows, 0.0, torch.float32) is None
    assert wrong(rows, rows, 0.03, torch.bfloat16) is None
    assert "exceeds" in wrong(rows, rows, 0.03, torch.float32)
    assert "exceeds" in wrong(rows, rows, float("nan"), torch.float32)
    assert wrong(rows, same, 0.0, torch.float32) == "every test image got the same logits on the ours path"


def test_benchmark_quick_run_prints_the_summary_line(capsys):
    module = _benchmark()
    module.main(["--quick", "--images", "3", "--anchors", "2", "--batch-size", "4"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    match = re.fullmatch(r"speedup=(\S+) max_abs_diff=(\S+)", last)
    assert match, last
    assert float(match.group(1)) > 0 and float(match.group(2)) <= 1e-5


def test_lora_wrapped_backbone_matches_plain_path(make_images):
    from c2s_lightning.models.adapters import configure_trainable

    backbone = build_backbone("tiny-llava", seed=2)
    backbone.model = configure_trainable(backbone.model, "lora")
    with torch.no_grad():  # LoRA starts as a no-op; give it an effect
        for name, param in backbone.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    anchors, tests = make_images(2, seed=0), make_images(3, seed=1)
    got = FastComparator(backbone).anchor_rows(anchors, tests, batch_size=4)
    torch.testing.assert_close(got, plain_rows(backbone, anchors, tests), atol=1e-5, rtol=0)
