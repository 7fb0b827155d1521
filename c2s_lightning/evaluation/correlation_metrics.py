"""The correlations of ``correlations.py`` as torchmetrics ``Metric``s, so they sync across processes.

Rank correlations and the logistic fit do not decompose into per-process sums: every process keeps
its predictions and targets (list states, ``dist_reduce_fx="cat"``), and ``compute`` applies the
pure function to the gathered whole. Use them from any LightningModule (``self.log("val/srcc",
metric)``) or by hand (``update`` per shard, ``compute`` once). Every metric also takes torchmetrics
``Metric`` options (e.g. ``process_group``). No Lightning import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.utilities import dim_zero_cat

from c2s_lightning.evaluation import correlations

__all__ = ["SRCC", "PLCC", "KRCC", "PairwiseAccuracy", "iqa_metric_collection"]


class _GatheredIQAMetric(Metric):
    """Keeps every (prediction, target) pair; ``compute`` applies ``_function`` to the whole set.

    States are float64 (scores of nearby images can tie in float32 and change the ranks); call
    ``set_dtype(torch.float32)`` on a device without float64.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    _function: Callable[[np.ndarray, np.ndarray], float]  # (pred, mos) -> value

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.set_dtype(torch.float64)

    def update(self, preds: torch.Tensor | Sequence[float], target: torch.Tensor | Sequence[float]) -> None:
        """Add predictions and their MOS (1-D, same length; an empty update is allowed)."""
        preds, target = self._as_state(preds), self._as_state(target)
        if preds.shape != target.shape:
            raise ValueError(f"{type(self).__name__}.update: preds and target differ in length: "
                             f"{preds.numel()} vs {target.numel()}")
        self.preds.append(preds)
        self.target.append(target)

    def _as_state(self, values: torch.Tensor | Sequence[float]) -> torch.Tensor:
        if not isinstance(values, torch.Tensor):  # not via float32, torch's default for lists
            values = torch.from_numpy(np.asarray(values, dtype=np.float64))
        return values.detach().reshape(-1).to(self.device, self.dtype)

    def compute(self) -> torch.Tensor:
        """The metric on every pair seen (by all processes, once synced), as a float64 scalar."""
        x, y = _numpy(self.preds), _numpy(self.target)
        # The gathered order depends on how the data were sharded; a canonical order makes the
        # value (the logistic fit's float sums, sampled pairs) the same for any number of processes.
        order = np.lexsort((x, y))
        return torch.tensor(self._function(x[order], y[order]), dtype=torch.float64)


def _numpy(state: list[torch.Tensor] | torch.Tensor) -> np.ndarray:
    # a list before syncing, one tensor after; an empty list when nothing was seen
    if isinstance(state, list) and not state:
        return np.empty(0)
    return dim_zero_cat(state).cpu().numpy()


class SRCC(_GatheredIQAMetric):
    """Spearman rank correlation between predictions and MOS (``correlations.srcc``)."""

    _function = staticmethod(correlations.srcc)


class KRCC(_GatheredIQAMetric):
    """Kendall rank correlation, tau-b (``correlations.krcc``)."""

    _function = staticmethod(correlations.krcc)


class PLCC(_GatheredIQAMetric):
    """Pearson correlation after the 4-parameter logistic fit of MOS on the prediction (``correlations.plcc``).

    Args:
        fit: Fit the logistic first (the IQA custom); False gives the raw Pearson correlation.
    """

    def __init__(self, fit: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self._function = functools.partial(correlations.plcc, fit=fit)


class PairwiseAccuracy(_GatheredIQAMetric):
    """Fraction of pairs with distinct MOS that the prediction orders like MOS (``correlations.pairwise_accuracy``).

    Args:
        pairs: None for every unordered pair; an int to sample that many (seeded) pairs.
        seed: Seed of the sampling.
    """

    def __init__(self, pairs: int | None = None, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self._function = functools.partial(correlations.pairwise_accuracy, pairs=pairs, seed=seed)


METRICS: dict[str, Callable[..., _GatheredIQAMetric]] = {"srcc": SRCC, "plcc": PLCC, "krcc": KRCC,
                                                         "pairwise_accuracy": PairwiseAccuracy}


def iqa_metric_collection(names: Sequence[str] = tuple(METRICS), prefix: str | None = None,
                          **kwargs) -> MetricCollection:
    """A ``MetricCollection`` of the ``METRICS`` named (default: all four), keys ``<prefix><name>``
    (e.g. ``test/koniq10k/srcc``); ``kwargs``: torchmetrics options for every metric (``process_group``)."""
    if unknown := [n for n in names if n not in METRICS]:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS)}")
    # torchmetrics' compute groups notice the identical states and keep one copy for all four.
    return MetricCollection({n: METRICS[n](**kwargs) for n in names}, prefix=prefix)
