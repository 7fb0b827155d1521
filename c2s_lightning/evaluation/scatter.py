"""Plots a person would rather look at than read: prediction against MOS."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from c2s_lightning.evaluation.correlations import fit_logistic4, logistic4
from c2s_lightning.infra.atomic_files import atomic_path


def scatter_png(path: str | Path, preds: Sequence[float], mos: Sequence[float], title: str = "") -> Path:
    """Write a prediction-vs-MOS scatter plot with the fitted 4-parameter logistic curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    x, y = np.asarray(preds, dtype=float), np.asarray(mos, dtype=float)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.scatter(x, y, s=12, alpha=0.7)
    params = fit_logistic4(x, y) if len(x) >= 4 else None
    if params is not None:
        grid = np.linspace(x.min(), x.max(), 200)
        ax.plot(grid, logistic4(grid, *params), color="C1", label="4-parameter logistic fit")
        ax.legend(loc="lower right")
    ax.set(xlabel="predicted score (MAP)", ylabel="MOS")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    try:
        with atomic_path(path) as temp:  # a reader (W&B, report) never sees half a PNG
            fig.savefig(temp)
    finally:
        plt.close(fig)
    return path
