"""The evaluator on 2 processes (gloo): same per-image scores and metrics as 1, equal forward counts.

A counting comparator stands in for the model: its level logits follow the images' brightness,
and it counts its forward calls. Datasets of odd sizes make the strided shards unequal, which
``padded_shard`` must even out (under ZeRO-3/FSDP a rank with one forward more would hang).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

from c2s_lightning.evaluation.evaluator import SoftComparisonEvaluator
from c2s_lightning.data.records import IQARecord
from c2s_lightning.scoring.bank import AnchorBank
from c2s_lightning.scoring.scorer import Compare2Scorer
from c2s_lightning.scoring.shards import merge_strided, padded_shard
from gloo_group import run_on_ranks

SIZES = {"three": 3, "seven": 7, "nine": 9}  # odd image counts: shards of 2/1, 4/3 and 5/4 on 2 ranks
ANCHOR_BATCH = 5  # pairs per forward = the 5 anchors: one test image per forward


class CountingComparator:
    """Level logits from the brightness difference (second minus first); counts forward calls."""

    model_id = "counting"

    def __init__(self):
        self.forwards = 0

    @staticmethod
    def _logits(first: Image.Image, second: Image.Image) -> torch.Tensor:
        d = (np.asarray(second, dtype=np.float64).mean() - np.asarray(first, dtype=np.float64).mean()) / 64
        return torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], dtype=torch.float64) * d

    def level_logits(self, firsts, seconds, batch_size=None) -> torch.Tensor:
        self.forwards += 1
        return torch.stack([self._logits(f, s) for f, s in zip(firsts, seconds)])

    def anchor_rows(self, anchors, tests, batch_size=None) -> torch.Tensor:
        self.forwards += 1
        return torch.stack([torch.stack([self._logits(a, t) for a in anchors]) for t in tests])


def _write(folder: Path, name: str, n: int, rng: np.random.Generator) -> list[IQARecord]:
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for k in range(n):
        level = int(rng.integers(20, 236))
        path = folder / f"{name}_{k:02d}.png"
        Image.new("RGB", (8, 8), (level, level, level)).save(path)
        mos = 1 + 4 * level / 255 + float(rng.normal(scale=0.4))  # brightness predicts MOS, noisily
        records.append(IQARecord(path=path, mos=mos, std=0.1 + k / 100, ref=None, dataset=name))
    return records


def _dataset(folder: Path) -> tuple[list[IQARecord], dict[str, list[IQARecord]]]:
    rng = np.random.default_rng(0)
    train = _write(folder, "train", 30, rng)
    return train, {name: _write(folder, name, n, rng) for name, n in SIZES.items()}


class _Data:
    """The datamodule's public face that the evaluator uses: anchors' source, the evaluated parts."""

    def __init__(self, train, evaluated):
        self._train, self._evaluated = train, evaluated

    def default_anchor_dataset(self):
        return "train"

    def image_options(self):
        return {"pad_to_square": False}

    def anchor_records(self, label, part):
        return self._train

    def eval_records(self, part):
        assert part == "test"
        return self._evaluated


class _Module(torch.nn.Module):
    device = torch.device("cpu")

    def __init__(self, comparator):
        super().__init__()
        self.comparator = comparator


def _evaluate(rank: int, world: int, train, evaluated) -> dict:
    """On one rank: the evaluator's metrics and forward count, and each dataset's per-image scores."""
    trainer = SimpleNamespace(datamodule=_Data(train, evaluated), world_size=world, global_rank=rank,
                              is_global_zero=rank == 0, validating=False, testing=False, loggers=[],
                              global_step=0, sanity_checking=False)
    evaluator = SoftComparisonEvaluator(batch_size=ANCHOR_BATCH, plots=False)
    comparator = CountingComparator()
    results = evaluator.evaluate(trainer, _Module(comparator), "val")
    scores = {}
    for name, records in evaluated.items():
        scorer = Compare2Scorer(CountingComparator(), evaluator.bank(trainer.datamodule), batch_size=ANCHOR_BATCH)
        scores[name] = evaluator._score_sharded(scorer, records, trainer, torch.device("cpu"))[0]
    return {"results": results, "forwards": comparator.forwards, "scores": scores}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluator_ddp")
    train, evaluated = _dataset(folder / "images")
    single = _evaluate(0, 1, train, evaluated)  # no process group: the one-process path
    return evaluated, single, run_on_ranks(_evaluate, 2, folder, train, evaluated)


def test_per_image_scores_equal_one_process(runs):
    evaluated, single, ranks = runs
    for name, records in evaluated.items():
        assert len(single["scores"][name]) == len(records)
        for rank in ranks:
            np.testing.assert_allclose(rank["scores"][name], single["scores"][name], rtol=0, atol=1e-6)


def test_every_rank_runs_the_same_number_of_forward_passes(runs):
    _, single, ranks = runs
    # one forward for the anchor block, then one per image of the padded shard: ceil(n / 2)
    assert [r["forwards"] for r in ranks] == [1 + sum(-(-n // 2) for n in SIZES.values())] * 2
    assert single["forwards"] == 1 + sum(SIZES.values())


def test_synced_metrics_equal_scipy_on_the_one_process_scores(runs):
    evaluated, single, ranks = runs
    for name, records in evaluated.items():
        mos = [r.mos for r in records]
        srcc = stats.spearmanr(single["scores"][name], mos)[0]
        krcc = stats.kendalltau(single["scores"][name], mos)[0]
        for result in [single, *ranks]:
            assert result["results"][name]["srcc"] == pytest.approx(srcc, abs=1e-6)
            assert result["results"][name]["krcc"] == pytest.approx(krcc, abs=1e-6)
        for metric in ("plcc", "pairwise_accuracy"):  # equal across process counts
            assert ranks[0]["results"][name][metric] == pytest.approx(single["results"][name][metric], abs=1e-6)
            assert ranks[1]["results"][name][metric] == pytest.approx(single["results"][name][metric], abs=1e-6)


@pytest.mark.parametrize("n, world", [(7, 2), (9, 4), (1, 3), (6, 3)])
def test_padded_shards_have_one_length_and_merge_back_in_order(n, world):
    shards = [padded_shard(n, world, rank) for rank in range(world)]
    assert {len(padded) for _, padded in shards} == {-(-n // world)}
    assert sorted(i for own, _ in shards for i in own) == list(range(n))  # each image once
    assert all(padded[:len(own)] == own for own, padded in shards)
    fake_scores = [torch.tensor([10.0 * i for i in padded]) for _, padded in shards]
    assert merge_strided(fake_scores, n).tolist() == [10.0 * i for i in range(n)]


def test_shard_arguments_are_checked():
    with pytest.raises(ValueError, match="rank 2 of world 2"):
        padded_shard(5, 2, 2)
    with pytest.raises(ValueError, match="one length"):
        merge_strided([torch.zeros(3), torch.zeros(2)], 5)
