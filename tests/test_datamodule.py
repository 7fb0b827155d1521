"""ComparisonDataModule and its mix: mixing, determinism, resampling, late-bound collate, workers."""

from pathlib import Path

import pytest
import torch

from c2s_lightning.data import LEVELS, comparison_level
from c2s_lightning.data.datamodule import ComparisonDataModule
from c2s_lightning.data.mix import MixEntry
from c2s_lightning.data.pairs import level_histogram, rating_labels
from c2s_lightning.data.prompts import (
    COMPARISON_ANSWER, COMPARISON_PROMPT, RATING_ANSWER, RATING_LEVELS, RATING_PROMPT)
from c2s_lightning.data.synth import held_out_refs, write_synthetic_kadid


class CountingEncoder:
    """Picklable stand-in for a model's encoder: records what the collate hands it."""

    def encode_train(self, examples):
        if examples[0]["prompt"] == RATING_PROMPT:
            assert all(len(e["images"]) == 1 for e in examples)
            assert all(e["answer"] == RATING_ANSWER.format(level=RATING_LEVELS[e["level"]]) for e in examples)
            return {"size": torch.tensor([e["images"][0].size[0] for e in examples])}
        assert all(len(e["images"]) == 2 and e["images"][0].mode == "RGB" for e in examples)
        assert all(e["prompt"] == COMPARISON_PROMPT for e in examples)
        assert all(e["answer"] == COMPARISON_ANSWER.format(level=LEVELS[e["level"]]) for e in examples)
        return {"size": torch.tensor([e["images"][0].size[0] for e in examples])}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return write_synthetic_kadid(tmp_path_factory.mktemp("synth") / "kadid", size=24)


def make(root, **kw):
    spec = MixEntry(name="kadid10k", root=str(root), pairs=kw.pop("pairs", 40), split="random",
                    split_options={"test_refs": held_out_refs()})
    dm = ComparisonDataModule([spec], batch_size=kw.pop("batch_size", 8), **kw)
    dm.connect(CountingEncoder())
    dm.setup()
    return dm


def test_pairs_come_from_train_contents_and_carry_the_rule(synth_root):
    dm = make(synth_root)
    train_refs = {r.ref for r in dm.mix.records("kadid10k", "train")}
    test_refs = {r.ref for r in dm.eval_records()["kadid10k"]}
    assert test_refs == set(held_out_refs()) and not train_refs & test_refs
    pairs = dm.mix.train_pairs(0)
    assert len(pairs) == 40
    assert all(p.first.ref in train_refs and p.second.ref in train_refs for p in pairs)
    assert all(p.level == comparison_level(p.first, p.second) for p in pairs)


def test_deterministic_per_seed_and_resampling(synth_root):
    a, b, c = make(synth_root, seed=1), make(synth_root, seed=1), make(synth_root, seed=2)
    assert a.mix.train_pairs(0) == b.mix.train_pairs(0) != c.mix.train_pairs(0)
    fixed = make(synth_root).train_dataloader().dataset
    assert fixed.pairs(0) == fixed.pairs(3)
    moving = make(synth_root, resample_every_epoch=True).train_dataloader().dataset
    assert moving.pairs(0) != moving.pairs(1)
    assert moving.pairs(1) == make(synth_root, resample_every_epoch=True).mix.train_pairs(1)


def test_collate_needs_connect_and_batches(synth_root):
    dm = ComparisonDataModule([MixEntry(name="kadid10k", root=str(synth_root), pairs=8)])
    with pytest.raises(RuntimeError, match="connect"):
        dm.train_dataloader()
    batch = next(iter(make(synth_root).train_dataloader()))
    assert batch["size"].tolist() == [24] * 8
    assert batch["levels"].dtype == torch.long and batch["levels"].shape == (8,)


def test_works_with_worker_processes(synth_root):
    dm = make(synth_root, num_workers=2, batch_size=10)
    batches = list(dm.train_dataloader())
    assert sum(len(b["levels"]) for b in batches) == 40


def test_balanced_levels_and_rating_examples(synth_root):
    natural = level_histogram(make(synth_root, pairs=200).mix.train_pairs(0))["kadid10k"]
    assert len(set(natural.values())) > 1
    dm = make(synth_root, pairs=200, balance_levels=True, rating_images_per_pair=2)
    assert level_histogram(dm.mix.train_pairs(0))["kadid10k"] == {lvl: 40 for lvl in LEVELS}
    words = rating_labels(dm.mix.records("kadid10k", "train"))
    assert set(words.values()) == set(RATING_LEVELS)
    train = dm.train_dataloader().dataset
    pair, item = train.pairs()[0], train[0]
    assert [RATING_LEVELS[r["level"]] for r in item["rating_examples"]] == [words[pair.second.path],
                                                                             words[pair.first.path]]
    batch = next(iter(dm.train_dataloader()))
    assert batch["rating"]["levels"].shape == (16,) and batch["levels"].shape == (8,)
    assert "rating" not in next(iter(make(synth_root).train_dataloader()))


def test_spec_validation():
    with pytest.raises(ValueError, match="not both"):
        MixEntry(name="kadid10k", root="x", pairs=2, pairs_per_image=1.0)
    with pytest.raises(ValueError, match="unique"):
        ComparisonDataModule([MixEntry(name="live", root="a"), MixEntry(name="live", root="b")])


def test_data_inspect_prints_counts_range_std_and_levels(synth_root, capsys):
    from c2s_lightning.cli import main

    main(["data", "inspect", "kadid10k", str(synth_root), "--pairs", "100"])
    out = capsys.readouterr().out
    assert "images    80" in out and "std       80/80 images" in out and "contents  16" in out
    assert "levels of 100 random pairs" in out and "superior" in out


def test_augment_flips_training_images_deterministically_and_only_in_training(synth_root):
    plain, flipped, again = (make(synth_root, augment=a) for a in (False, True, True))
    data = [d.train_dataloader().dataset for d in (plain, flipped, again)]
    items = [[d[(0, i)]["images"] for i in range(12)] for d in data]
    same = lambda a, b: a.tobytes() == b.tobytes()  # noqa: E731
    assert all(same(x, y) for p, q in zip(items[1], items[2]) for x, y in zip(p, q))  # fixed per pair/epoch
    assert not all(same(x, y) for p, q in zip(items[0], items[1]) for x, y in zip(p, q))
    # a flip or rotation keeps the pixel values, only moves them
    assert all(sorted(x.tobytes()) == sorted(y.tobytes()) for p, q in zip(items[0], items[1]) for x, y in zip(p, q))
    assert not flipped.val_dataloader().dataset.augment


def test_public_face_for_the_evaluator(synth_root):
    held_out = MixEntry(name="kadid10k", root=str(synth_root), label="cross", split="none")
    trained = MixEntry(name="kadid10k", root=str(synth_root), pairs=8, evaluate=False,
                       split_options={"test_refs": held_out_refs()})
    dm = ComparisonDataModule([held_out, trained], pad_to_square=True)
    assert dm.default_anchor_dataset() == "kadid10k"  # the first dataset trained on, not the first listed
    assert dm.image_options() == {"pad_to_square": True}
    assert list(dm.eval_records()) == ["cross"] and len(dm.eval_records()["cross"]) == 80  # 16 contents x 5
    assert {r.ref for r in dm.mix.records("kadid10k", "test")} == set(held_out_refs())
    with pytest.raises(KeyError, match="no dataset labelled 'live'"):
        dm.mix.records("live")
    with pytest.raises(ValueError, match="name the anchor dataset"):
        ComparisonDataModule([held_out]).default_anchor_dataset()


def test_held_out_pairs_are_named_after_the_part_they_come_from(synth_root):
    with_val = make(synth_root)  # random split: a validation part exists
    val_refs = {r.ref for r in with_val.mix.records("kadid10k", "val")}
    assert val_refs and with_val.mix.held_out_part() == "val"
    assert {p.first.ref for p in with_val.mix.validation_pairs()} <= val_refs
    assert next(iter(with_val.val_dataloader()))["part"] == "val"
    spec = MixEntry(name="kadid10k", root=str(synth_root), pairs=40, split="random",
                    split_options={"test_refs": held_out_refs(), "fractions": (0.8, 0.0, 0.2)})
    no_val = ComparisonDataModule([spec], batch_size=8)
    no_val.connect(CountingEncoder())
    assert no_val.mix.records("kadid10k", "val") == []
    test_refs = {r.ref for r in no_val.mix.records("kadid10k", "test")}
    assert no_val.mix.held_out_part() == "test"  # test images: logged as test/loss, never val/loss
    assert {p.second.ref for p in no_val.mix.validation_pairs()} <= test_refs
    assert next(iter(no_val.val_dataloader()))["part"] == "test"


def test_no_training_pair_crosses_datasets_in_a_mix(synth_root, tmp_path):
    """Three datasets in one mix, two of them read by the same reader (so their records carry the
    same dataset name and only the folder tells them apart): every pair stays in its folder, and
    each entry contributes exactly its own amount."""
    from native_fixtures import write_koniq

    other = write_synthetic_kadid(tmp_path / "kadid_b", size=24, seed=5)
    koniq = write_koniq(tmp_path / "koniq10k", n=24)
    entries = [MixEntry(name="kadid10k", root=str(synth_root), label="a", pairs=30),
               MixEntry(name="kadid10k", root=str(other), label="b", pairs=20),
               MixEntry(name="koniq10k", root=str(koniq), split="official", pairs=10,
                        reader_options={"check_images": False})]
    dm = ComparisonDataModule(entries, batch_size=8)
    dm.connect(CountingEncoder())
    dm.setup()
    roots = [Path(e.root).resolve() for e in entries]
    for pairs in (dm.mix.train_pairs(0), dm.mix.train_pairs(1), dm.mix.validation_pairs()):
        homes = [{root for root in roots if p.first.path.resolve().is_relative_to(root)
                  and p.second.path.resolve().is_relative_to(root)} for p in pairs]
        assert all(len(home) == 1 for home in homes)  # both images of every pair under one dataset's folder
    counts = [sum(p.first.path.resolve().is_relative_to(root) for p in dm.mix.train_pairs(0)) for root in roots]
    assert counts == [30, 20, 10]
