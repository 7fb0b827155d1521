"""torchmetrics IQA metrics: values equal scipy's, in one process and synced over two (gloo)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from c2s_lightning.evaluation.correlation_metrics import KRCC, PLCC, SRCC, PairwiseAccuracy, iqa_metric_collection
from gloo_group import run_on_ranks


def _data(n: int = 41, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mos = np.round(rng.uniform(1, 5, size=n), 1)  # rounded: some MOS ties, as in real datasets
    pred = np.tanh(mos - 3) + rng.normal(scale=0.3, size=n)  # monotone, non-linear, noisy
    return pred, mos


def _scipy_plcc(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson after a 4-parameter logistic fitted by scipy here, independently of metrics.py."""
    def curve(v, b1, b2, b3, b4):
        return (b1 - b2) / (1 + np.exp(-(v - b3) / abs(b4))) + b2

    params, _ = optimize.curve_fit(curve, x, y, p0=[y.max(), y.min(), x.mean(), x.std() / 4], maxfev=100_000)
    return stats.pearsonr(curve(x, *params), y)[0]


def _brute_pairwise(x: np.ndarray, y: np.ndarray) -> float:
    pairs = [(i, j) for i, j in itertools.combinations(range(len(x)), 2) if y[i] != y[j]]
    return sum(np.sign(x[i] - x[j]) == np.sign(y[i] - y[j]) for i, j in pairs) / len(pairs)


def _reference(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {"srcc": stats.spearmanr(x, y)[0], "krcc": stats.kendalltau(x, y)[0],
            "plcc": _scipy_plcc(x, y), "pairwise_accuracy": _brute_pairwise(x, y)}


def test_each_metric_equals_scipy_over_several_updates():
    pred, mos = _data()
    expected = _reference(pred, mos)
    for name, metric in {"srcc": SRCC(), "krcc": KRCC(), "plcc": PLCC(), "pairwise_accuracy": PairwiseAccuracy()}.items():
        metric.update(torch.tensor(pred[:10]), torch.tensor(mos[:10]))
        metric.update(list(pred[10:]), list(mos[10:]))  # lists too, kept in float64
        assert metric.compute().item() == pytest.approx(expected[name], abs=1e-6), name


def test_plcc_is_one_on_an_exactly_logistic_relation_and_raw_without_fit():
    x = np.linspace(-3, 3, 50)
    y = 1 + 4 / (1 + np.exp(-(x - 0.4) / 0.6))
    fitted, raw = PLCC(), PLCC(fit=False)
    fitted.update(x, y)
    raw.update(x, y)
    assert fitted.compute().item() == pytest.approx(1.0, abs=1e-6)
    assert raw.compute().item() == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert raw.compute().item() < 0.99


def test_collection_keys_and_bad_input():
    pred, mos = _data()
    collection = iqa_metric_collection(prefix="test/live/")
    collection.update(torch.tensor(pred), torch.tensor(mos))
    values = collection.compute()
    assert sorted(values) == ["test/live/krcc", "test/live/pairwise_accuracy", "test/live/plcc", "test/live/srcc"]
    assert values["test/live/srcc"].item() == pytest.approx(stats.spearmanr(pred, mos)[0], abs=1e-12)
    with pytest.raises(ValueError, match="differ in length: 3 vs 2"):
        SRCC().update([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="unknown metric"):
        iqa_metric_collection(["srcc", "rmse"])


def test_usable_from_a_lightning_module():
    import lightning as L  # here, not at the top: the spawned ranks need not import it

    class Scored(L.LightningModule):
        """Any LightningModule: it updates a metric per batch and logs the metric object."""

        def __init__(self):
            super().__init__()
            self.srcc = SRCC()

        def validation_step(self, batch, batch_idx):
            pred, mos = batch
            self.srcc.update(pred, mos)
            self.log("val/srcc", self.srcc, on_epoch=True, batch_size=len(pred))

    pred, mos = _data()
    loader = torch.utils.data.DataLoader(list(zip(torch.tensor(pred), torch.tensor(mos))), batch_size=8)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False)
    trainer.validate(Scored(), loader, verbose=False)
    assert trainer.callback_metrics["val/srcc"].item() == pytest.approx(stats.spearmanr(pred, mos)[0], abs=1e-6)


def _synced(rank: int, world: int) -> dict:
    """Per rank: an uneven share of the data; and one collection this rank never updates."""
    pred, mos = _data()
    cut = 29  # rank 0 gets 29 items, rank 1 the other 12
    mine = slice(0, cut) if rank == 0 else slice(cut, None)
    collection = iqa_metric_collection()
    for start in range(mine.start or 0, mine.stop or len(pred), 5):  # several updates per rank
        stop = min(start + 5, mine.stop or len(pred))
        collection.update(torch.tensor(pred[start:stop]), torch.tensor(mos[start:stop]))
    lonely = SRCC()  # only rank 0 has data: the other rank's empty state must not break the gather
    if rank == 0:
        lonely.update(pred, mos)
    return {"synced": {k: v.item() for k, v in collection.compute().items()}, "lonely": lonely.compute().item()}


def test_two_processes_give_the_single_process_scipy_values(tmp_path):
    pred, mos = _data()
    expected = _reference(pred, mos)
    results = run_on_ranks(_synced, 2, tmp_path)
    for rank_result in results:
        for name, value in rank_result["synced"].items():
            assert value == pytest.approx(expected[name], abs=1e-6), name
        assert rank_result["lonely"] == pytest.approx(expected["srcc"], abs=1e-12)
