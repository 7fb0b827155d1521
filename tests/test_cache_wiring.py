"""The comparison cache where comparisons are made: evaluator, evaluate, load_scorer, cache command."""

from __future__ import annotations

import pytest
import torch

from c2s_lightning.cli import main
from c2s_lightning.scoring.from_export import load_scorer
from c2s_lightning.scoring.bank import AnchorBank
from c2s_lightning.cache.wiring import cache_protocol
from c2s_lightning.models.fingerprint import live_fingerprint
from c2s_lightning.models.protocol import ComparisonProtocol
from c2s_lightning.cache.store import ComparisonCache

from run_logs import series
from test_cli import QUICKSTART, override, synth  # noqa: F401  (fixture)
from test_commands import trained  # noqa: F401  (fixture)

ANCHORS, IMAGES = 5, 10  # quickstart alpha; the override's evaluator.max_images


def evaluate(trained, synth, tmp, beta: int, *cache: str):  # noqa: F811
    cli = main(["evaluate", "--checkpoint", str(trained / "export"), "--config", QUICKSTART,
                "--config", override(tmp, synth), "--evaluator.beta", str(beta), "--evaluator.plots", "false",
                *cache])
    evaluator = next(c for c in cli.trainer.callbacks if type(c).__name__ == "SoftComparisonEvaluator")
    counts = {k.rsplit("/", 1)[1]: int(v) for k, v in cli.trainer.callback_metrics.items() if "/cache/" in k}
    return evaluator.last_results["kadid10k"], counts


def test_evaluate_reads_nested_anchor_sets_from_the_cache_with_identical_metrics(trained, synth, tmp_path):  # noqa: F811
    folder = str(tmp_path / "cache")
    big, big_counts = evaluate(trained, synth, tmp_path / "a", 2, "--cache-dir", folder)
    small, small_counts = evaluate(trained, synth, tmp_path / "b", 1, "--cache-dir", folder)
    # beta=2: a 10 x 10 anchor block (diagonal included) and 10 images x 10 anchors, all new
    assert big_counts == {"computed": (2 * ANCHORS) ** 2 + IMAGES * 2 * ANCHORS, "reused": 0}
    # beta=1 (min_variance): its anchors are the first of each interval of beta=2, so all is reused
    assert small_counts == {"computed": 0, "reused": ANCHORS ** 2 + IMAGES * ANCHORS}
    for beta, cached in ((2, big), (1, small)):
        plain, counts = evaluate(trained, synth, tmp_path / f"plain{beta}", beta, "--no-cache")
        assert counts == {}
        drop = {"seconds_per_image"}
        assert cached.keys() == plain.keys()
        for name in cached.keys() - drop:
            assert cached[name] == pytest.approx(plain[name], abs=1e-6), name


def test_fit_evaluations_never_reuse_entries_of_earlier_weights(synth, tmp_path):  # noqa: F811
    folder = tmp_path / "cache"
    main(["fit", "--config", QUICKSTART, "--config", override(tmp_path, synth),
          "--evaluator.cache_dir", str(folder), "--evaluator.plots", "false"])
    computed, reused = series(tmp_path / "run", "test/cache/computed"), series(tmp_path / "run", "test/cache/reused")
    # before training, after step 2 and after step 4: three sets of weights, nothing shared
    assert len(computed) == 3 and reused == [0, 0, 0]
    assert computed == [ANCHORS ** 2 + IMAGES * ANCHORS] * 3
    contexts = ComparisonCache(folder).stats().contexts
    assert len({fingerprint for fingerprint, _, _ in contexts}) == 3


def test_one_changed_weight_changes_the_fingerprint(tiny_llava):
    model, protocol = tiny_llava.model, ComparisonProtocol.for_backbone(tiny_llava).to_dict()
    before = live_fingerprint(model, tiny_llava, protocol)
    weight = next(p for p in model.parameters() if p.dtype == torch.float32)
    with torch.no_grad():
        weight.view(-1)[0] += 1e-6  # smaller than any training step changes it
        changed = live_fingerprint(model, tiny_llava, protocol)
        weight.view(-1)[0] -= 1e-6
    assert changed != before
    assert live_fingerprint(model, tiny_llava, protocol) == before


def test_the_cache_key_ignores_what_a_model_was_trained_on():
    protocol = {"template": {"prompt": "p"}, "levels": ["a"], "level_weights": [0.0],
                "image_preprocessing": {"pad_to_square": True}, "backbone": {"family": "llava"},
                "training_datasets": [{"name": "kadid10k"}], "weights_fingerprint": "sha256:1"}
    other = {**protocol, "training_datasets": [], "weights_fingerprint": "sha256:2"}
    assert cache_protocol(protocol, dtype="float32") == cache_protocol(other, dtype="float32")
    assert cache_protocol(protocol, dtype="float32") != cache_protocol(protocol, dtype="bfloat16")
    padded = {**protocol, "image_preprocessing": {"pad_to_square": False}}
    assert cache_protocol(padded) != cache_protocol(protocol)


def test_load_scorer_reuses_the_cache_and_matches_uncached_scores(trained, tmp_path, make_images, capsys):  # noqa: F811
    images = make_images(4, seed=7)
    bank = lambda: AnchorBank.load(trained / "export" / "anchors.json")  # noqa: E731 (a fresh bank each time)
    plain = load_scorer(trained / "export", bank(), cache=False)
    expected = plain.score(images)
    first = load_scorer(trained / "export", bank(), cache=tmp_path / "c", recompute_anchors=True)
    second = load_scorer(trained / "export", bank(), cache=tmp_path / "c", recompute_anchors=True)
    torch.testing.assert_close(first.score(images), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(second.score(images), expected, atol=1e-6, rtol=0)
    assert first.comparator.counts()["reused"] == 0 and second.comparator.counts()["computed"] == 0
    assert main(["cache", "stats", "--dir", str(tmp_path / "c")]) == 0
    assert "entries" in capsys.readouterr().out


def test_cache_first_runs_the_largest_beta_first_and_refuses_training_sweeps(tmp_path):
    from c2s_lightning.commands.sweep import plan_sweep
    from c2s_lightning.sweep.cache_first import cache_first_order, check_evaluation_only

    runs = plan_sweep("sweeps/beta.yaml", tmp_path)
    check_evaluation_only(runs)
    assert [r.params["evaluator.beta"] for r in cache_first_order(runs)] == [5, 4, 3, 2, 1]
    rules = plan_sweep("sweeps/anchor_selection.yaml", tmp_path)
    assert cache_first_order(rules) == rules  # nothing nested: the sweep's order
    with pytest.raises(ValueError, match="train_lr_lora-000.*not `evaluate"):
        check_evaluation_only(plan_sweep("sweeps/train_lr_lora.yaml", tmp_path))


@pytest.mark.parametrize("option", ["--cache-first", "--prefetch"])  # --prefetch: the old spelling, kept
def test_sweep_cache_first_option_orders_the_dry_run(option, tmp_path, capsys):
    from c2s_lightning.cli import main

    main(["sweep", "sweeps/beta.yaml", "--dry-run", "--out", str(tmp_path), option])
    betas = [int(line.split("evaluator.beta=")[1].split()[0]) for line in capsys.readouterr().out.splitlines()]
    assert betas == [5, 4, 3, 2, 1]


def test_c2s_cache_dir_off_turns_the_default_cache_off(monkeypatch, tmp_path):
    from c2s_lightning.cache.wiring import open_cache

    monkeypatch.setenv("C2S_CACHE_DIR", "off")
    assert open_cache(True) is None and open_cache(tmp_path).folder == tmp_path
    monkeypatch.setenv("C2S_CACHE_DIR", str(tmp_path / "c"))
    assert open_cache(True).folder == tmp_path / "c" / "comparisons"
