"""Report figures: SRCC and time per image against beta (the paper's Figure 4), and copies of the
evaluation callback's prediction-vs-MOS scatter plots. Drawn on ``matplotlib.figure.Figure``
objects (Agg canvas), never through pyplot, so no global backend or figure state is touched.
"""

from __future__ import annotations

import re
from pathlib import Path

from matplotlib.figure import Figure

from c2s_lightning.infra.atomic_files import atomic_path, copy_file
from c2s_lightning.reporting.aggregate import group_runs
from c2s_lightning.reporting.paper_numbers import DATASET_NAMES
from c2s_lightning.reporting.runs import ReportRun
from c2s_lightning.reporting.tables import computed_seconds, datasets_of, mean_metric


def _series(runs: list[ReportRun], key: str, metric_key) -> tuple[list[float], list[float]]:
    points = sorted((float((r.config | r.params)[key]), value) for r in runs
                    if key in (r.config | r.params) and (value := metric_key(r)) is not None)
    return [x for x, _ in points], [y for _, y in points]


def _save(fig: Figure, path: Path) -> Path:
    fig.axes[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as temp:
        fig.savefig(temp, dpi=100)
    return path


def _srcc_figure(groups: dict[str, list[ReportRun]], key: str, prefix: str, datasets: list[str], ticks) -> Figure:
    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    tag = (lambda label: f"{label}: ") if len(groups) > 1 else (lambda label: "")
    for label, members in groups.items():
        for d in datasets:
            xs, ys = _series(members, key, lambda r, d=d: r.metrics.get(f"{prefix}/{d}/srcc"))
            ax.plot(xs, ys, marker="o", label=tag(label) + DATASET_NAMES.get(d, d))
        xs, ys = _series(members, key, lambda r: mean_metric(r, prefix, "srcc", datasets))
        ax.plot(xs, ys, linestyle="--", marker="s", label=tag(label) + "mean")
    ax.set(xlabel="beta (anchors per MOS interval)", ylabel="SRCC", title="SRCC against beta", xticks=ticks)
    # at least 0.1 of SRCC on the axis: differences in the 4th decimal must not look like a cliff
    low, high = ax.get_ylim()
    middle, half = (low + high) / 2, max((high - low) / 2, 0.05)
    ax.set_ylim(max(-1.0, middle - half), min(1.0, middle + half))
    return fig


def _time_figure(groups: dict[str, list[ReportRun]], key: str, prefix: str, datasets: list[str],
                 ticks) -> Figure | None:
    """Seconds per image of the runs that computed their comparisons; None when no run did."""
    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    for label, members in groups.items():
        xs, ys = _series(members, key, lambda r: computed_seconds(r, prefix, datasets))
        if xs:
            ax.plot(xs, ys, marker="o", label=label)
    if not ax.lines:
        return None
    top = max(max(line.get_ydata()) for line in ax.lines)
    ax.set(xlabel="beta (anchors per MOS interval)", ylabel="seconds per image (comparisons computed)",
           title="Scoring time against beta", ylim=(0, top * 1.1 or 1), xticks=ticks)
    return fig


def beta_plots(runs: list[ReportRun], varied: list[str], prefix: str, out: Path) -> tuple[list[Path], list[str]]:
    """``beta_srcc.png`` and ``beta_time.png`` when the runs vary a ``*.beta`` key, a line per value of
    the other varied keys; return them and the runs left out of the time plot (answered from the cache)."""
    key = next((k for k in varied if k.split(".")[-1] == "beta"), None)
    if key is None:
        return [], []
    out.mkdir(parents=True, exist_ok=True)
    datasets, groups = datasets_of(runs, prefix), group_runs(runs, varied, key)
    ticks = sorted(set(_series(runs, key, lambda r: 0.0)[0]))
    paths = [_save(_srcc_figure(groups, key, prefix, datasets, ticks), out / "beta_srcc.png")]
    if (time_figure := _time_figure(groups, key, prefix, datasets, ticks)) is not None:
        paths.append(_save(time_figure, out / "beta_time.png"))
    cached = [r.label for r in runs if mean_metric(r, prefix, "seconds_per_image", datasets) is not None
              and computed_seconds(r, prefix, datasets) is None]
    return paths, cached


def copy_scatters(runs: list[ReportRun], prefix: str, out: Path) -> dict[str, list[Path]]:
    """Copy each run's newest scatter plot per dataset (the evaluation callback's ``plots/``) to
    ``out/scatter/``; return the copies by run label."""
    copies: dict[str, list[Path]] = {}
    for run in runs:
        latest: dict[str, Path] = {}
        for path in sorted((run.folder / "plots").glob(f"{prefix}_*.png")) if run.folder else []:
            latest[path.name.rsplit("_step", 1)[0]] = path  # zero-padded steps sort
        for source in latest.values():
            slug = re.sub(r"[^\w.=-]+", "_", run.label)
            copies.setdefault(run.label, []).append(copy_file(source, out / "scatter" / f"{slug}__{source.name}"))
    return copies
