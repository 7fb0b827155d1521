"""The correlations (SRCC, PLCC, KRCC, pairwise accuracy) as pure functions on 1-D arrays, no torch.

PLCC maps the prediction to MOS through the customary 4-parameter logistic first; pairwise
accuracy is the measure of the paper's Table 4.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np
from scipy import optimize, special, stats

ArrayLike = Sequence[float] | np.ndarray
_PAIR_CHUNK = 1024


def _pair(pred: ArrayLike, mos: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, y = (np.asarray(values, dtype=np.float64).reshape(-1) for values in (pred, mos))
    if x.shape != y.shape:
        raise ValueError(f"pred and mos differ in length: {x.size} vs {y.size}")
    if x.size < 2:
        raise ValueError(f"need at least 2 predictions, got {x.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("pred and mos must be finite (no NaN or inf)")
    return x, y


def logistic4(x: ArrayLike, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """``(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``: rises from ``b2`` to ``b1``."""
    return (b1 - b2) * special.expit((np.asarray(x, dtype=np.float64) - b3) / abs(b4)) + b2


def _logistic4_jacobian(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    # Analytic, because finite differences scale their step with |b3|, which starts at
    # mean(pred) and is ~0 for centred predictions: b3 would then never move.
    z = (x - b3) / abs(b4)
    sig = special.expit(z)
    slope = (b1 - b2) * sig * (1 - sig)
    return np.stack([sig, 1 - sig, -slope / abs(b4), -slope * z / b4], axis=1)


def srcc(pred: ArrayLike, mos: ArrayLike) -> float:
    """Spearman rank correlation."""
    return float(stats.spearmanr(*_pair(pred, mos))[0])


def krcc(pred: ArrayLike, mos: ArrayLike) -> float:
    """Kendall rank correlation (tau-b)."""
    return float(stats.kendalltau(*_pair(pred, mos))[0])


def fit_logistic4(pred: ArrayLike, mos: ArrayLike) -> np.ndarray | None:
    """Least-squares fit of ``logistic4`` from prediction to MOS, started at ``[max mos, min mos,
    mean pred, std pred / 4]`` as is customary in IQA.

    Returns:
        ``[b1, b2, b3, b4]``, or None if the fit fails (e.g. fewer than 4 points, no convergence)
        or gives a flat or non-finite curve.
    """
    x, y = _pair(pred, mos)
    start = [y.max(), y.min(), x.mean(), x.std() / 4 or 1.0]
    try:
        with warnings.catch_warnings():
            # Only the parameters are used, not their covariance, whose estimate may fail.
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            params, _ = optimize.curve_fit(logistic4, x, y, p0=start, jac=_logistic4_jacobian, maxfev=100_000)
    except (RuntimeError, ValueError, TypeError):
        return None
    fitted = logistic4(x, *params)
    return params if np.isfinite(fitted).all() and np.ptp(fitted) > 0 else None


def plcc(pred: ArrayLike, mos: ArrayLike, fit: bool = True) -> float:
    """Pearson correlation, after a 4-parameter logistic fit of MOS on the prediction.

    Args:
        fit: Map ``pred`` through ``fit_logistic4`` first; if False, or if the fit fails (a
            warning says so), the raw Pearson correlation is returned.
    """
    x, y = _pair(pred, mos)
    if fit:
        params = fit_logistic4(x, y)
        if params is not None:
            return float(stats.pearsonr(logistic4(x, *params), y)[0])
        warnings.warn("plcc: logistic fit failed; using raw Pearson", RuntimeWarning, stacklevel=2)
    return float(stats.pearsonr(x, y)[0])


def _all_pairs(n: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    # Row chunks keep memory at chunk x n for large test sets.
    for start in range(0, n, _PAIR_CHUNK):
        i, j = np.nonzero(np.arange(start, min(start + _PAIR_CHUNK, n))[:, None] < np.arange(n))
        yield i + start, j


def _sample_pairs(y: np.ndarray, n_pairs: int, seed: int) -> np.ndarray:
    if np.unique(y).size < 2:
        raise ValueError("pairwise accuracy needs at least two distinct MOS values")
    rng = np.random.default_rng(seed)
    chosen = np.empty((0, 2), dtype=np.int64)
    while len(chosen) < n_pairs:
        i, j = rng.integers(0, y.size, size=(2, 2 * (n_pairs - len(chosen))))
        keep = y[i] != y[j]
        chosen = np.concatenate([chosen, np.stack([i[keep], j[keep]], axis=1)])
    return chosen[:n_pairs]


def pairwise_accuracy(pred: ArrayLike, mos: ArrayLike, pairs: int | np.ndarray | None = None, seed: int = 0) -> float:
    """Fraction of pairs with distinct MOS that the prediction orders like MOS (a tie counts as wrong).

    Args:
        pairs: None for every unordered pair; an int to sample that many pairs uniformly (with
            replacement, seeded, pairs with equal MOS redrawn); or an index array ``[k, 2]``
            (pairs with equal MOS in it are skipped).
        seed: Seed of the sampling.
    """
    x, y = _pair(pred, mos)
    if isinstance(pairs, (int, np.integer)):
        if pairs < 1:
            raise ValueError(f"number of pairs must be positive, got {pairs}")
        pairs = _sample_pairs(y, int(pairs), seed)
    correct = total = 0
    chunks = _all_pairs(x.size) if pairs is None else [np.asarray(pairs, dtype=np.int64).reshape(-1, 2).T]
    for i, j in chunks:
        dy = np.sign(y[i] - y[j])
        counted = dy != 0
        total += int(counted.sum())
        correct += int((counted & (np.sign(x[i] - x[j]) == dy)).sum())
    if total == 0:
        raise ValueError("pairwise accuracy needs at least one pair with distinct MOS")
    return correct / total


def evaluate_predictions(pred: ArrayLike, mos: ArrayLike) -> dict[str, float]:
    """All metrics at once: keys ``srcc``, ``plcc``, ``krcc``, ``pairwise_accuracy`` (all pairs)."""
    return {"srcc": srcc(pred, mos), "plcc": plcc(pred, mos), "krcc": krcc(pred, mos),
            "pairwise_accuracy": pairwise_accuracy(pred, mos)}
