"""Markdown tables in the paper's layout: a row per run, SRCC / PLCC per dataset, paper rows beside;
times of runs that reused comparisons from the cache (``<part>/cache/reused`` > 0) marked ``*``."""

from __future__ import annotations

import statistics

from c2s_lightning.reporting.paper_numbers import DATASET_NAMES, PaperRow, paper_reference
from c2s_lightning.reporting.runs import SETTING_NAMES, ReportRun

MISSING = "–"
SUMMARY_METRICS = {"srcc": "SRCC", "plcc": "PLCC", "krcc": "KRCC", "pairwise_accuracy": "pairwise acc.",
                   "seconds_per_image": "s / image"}
CACHED_MARK = "*"
CACHED_NOTE = (f"`{CACHED_MARK}`: comparisons reused from the comparison cache: a cache read, not the time to "
               "compute them (see computed / reused)")


def datasets_of(runs: list[ReportRun], prefix: str) -> list[str]:
    """Dataset labels with an SRCC under ``prefix``: the paper's order first, then the others sorted."""
    found = {key.split("/")[1] for run in runs for key in run.metrics
             if key.startswith(prefix + "/") and key.count("/") == 2 and key.endswith("/srcc")}
    found.discard("mean")
    return [d for d in DATASET_NAMES if d in found] + sorted(found - set(DATASET_NAMES))


def _cell(value: float | None, metric: str = "") -> str:
    """Times keep 3 significant digits (they span orders of magnitude); scores 3 decimals."""
    return MISSING if value is None else f"{value:.3g}" if metric == "seconds_per_image" else f"{value:.3f}"


def pair_cell(srcc: float | None, plcc: float | None) -> str:
    """``SRCC / PLCC`` to 3 decimals, a dash for a missing value."""
    return f"{_cell(srcc)} / {_cell(plcc)}"


def mean_metric(run: ReportRun, prefix: str, metric: str, datasets: list[str]) -> float | None:
    """The logged ``<prefix>/mean/<metric>``, else the mean over ``datasets`` that have it."""
    if f"{prefix}/mean/{metric}" in run.metrics:
        return run.metrics[f"{prefix}/mean/{metric}"]
    values = [run.metrics[k] for d in datasets if (k := f"{prefix}/{d}/{metric}") in run.metrics]
    return statistics.fmean(values) if values else None


def cache_counts(run: ReportRun, prefix: str) -> tuple[int, int] | None:
    """The comparisons the run computed and reused from the cache (``<prefix>/cache/*``), if logged."""
    counts = [run.metrics.get(f"{prefix}/cache/{name}") for name in ("computed", "reused")]
    return None if None in counts else (int(counts[0]), int(counts[1]))


def computed_seconds(run: ReportRun, prefix: str, datasets: list[str]) -> float | None:
    """Seconds per image of a run that reused no comparison (its time is a computation's), else None."""
    counts = cache_counts(run, prefix)
    return None if counts and counts[1] else mean_metric(run, prefix, "seconds_per_image", datasets)


def _seconds_cell(run: ReportRun, prefix: str, datasets: list[str]) -> str:
    seconds = mean_metric(run, prefix, "seconds_per_image", datasets)
    cached = seconds is not None and computed_seconds(run, prefix, datasets) is None
    return _cell(seconds, "seconds_per_image") + (CACHED_MARK if cached else "")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _paper_cells(ref: PaperRow, datasets: list[str]) -> list[str]:
    means = [statistics.fmean(v[d] for d in datasets) if all(d in v for d in datasets) else None
             for v in (ref.srcc, ref.plcc)]
    return [pair_cell(ref.srcc.get(d), ref.plcc.get(d)) for d in datasets] + [pair_cell(*means), MISSING]


def results_table(runs: list[ReportRun], prefix: str, varied: list[str]) -> str:
    """Our SRCC / PLCC per dataset, mean and time per image; under each run the paper's matching row
    (the ablation of the settings in ``varied``, the dotted keys the runs vary)."""
    datasets = datasets_of(runs, prefix)
    varied_settings = {k.split(".")[-1] for k in varied} & set(SETTING_NAMES)
    lines = [_row(["run"] + [f"{DATASET_NAMES.get(d, d)} SRCC / PLCC" for d in datasets]
                  + ["mean SRCC / PLCC", "s / image"]),
             _row(["---"] * (len(datasets) + 3))]
    for run in runs:
        cells = [pair_cell(run.metrics.get(f"{prefix}/{d}/srcc"), run.metrics.get(f"{prefix}/{d}/plcc"))
                 for d in datasets]
        mean = pair_cell(*(mean_metric(run, prefix, m, datasets) for m in ("srcc", "plcc")))
        lines.append(_row([run.label] + cells + [mean, _seconds_cell(run, prefix, datasets)]))
        ref = paper_reference(run.settings(), varied_settings)
        if ref is not None and any(d in ref.srcc for d in datasets):
            lines.append(_row([f"↳ *paper: {ref.source}*"] + _paper_cells(ref, datasets)))
    return "\n".join(lines)


def summary_table(runs: list[ReportRun], prefix: str) -> str:
    """Every mean metric logged (``<prefix>/mean/*``), comparisons computed / reused, the last train loss."""
    datasets = datasets_of(runs, prefix)
    names = [m for m in SUMMARY_METRICS if any(mean_metric(r, prefix, m, datasets) is not None for r in runs)]
    with_counts = any(cache_counts(r, prefix) for r in runs)
    with_loss = any("train/loss" in r.metrics for r in runs)
    lines = [_row(["run"] + [SUMMARY_METRICS[m] for m in names] + ["comparisons computed / reused"] * with_counts
                  + ["train/loss"] * with_loss), _row(["---"] * (1 + len(names) + with_counts + with_loss))]
    for run in runs:
        cells = [_seconds_cell(run, prefix, datasets) if m == "seconds_per_image"
                 else _cell(mean_metric(run, prefix, m, datasets), m) for m in names]
        counts = cache_counts(run, prefix)
        cells += [f"{counts[0]} / {counts[1]}" if counts else MISSING] * with_counts
        lines.append(_row([run.label] + cells + [_cell(run.metrics.get("train/loss"))] * with_loss))
    return "\n".join(lines)
