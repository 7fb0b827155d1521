"""Medians over repeated runs, as the paper reports its protocol: per dataset, the median SRCC /
PLCC [min, max] over the 10 splits (``sweeps/paper_splits.yaml``), one per value of every other
varied key (runs are grouped by them).
"""

from __future__ import annotations

import statistics

from c2s_lightning.reporting.paper_numbers import DATASET_NAMES, paper_reference
from c2s_lightning.reporting.runs import SETTING_NAMES, ReportRun, short_names
from c2s_lightning.reporting.tables import MISSING, datasets_of, pair_cell

SPLIT_KEY = "split_index"
METRICS = ("srcc", "plcc")
SELECT_ON = "val/mean/srcc"  # a run is picked on the validation part only: picking on test would leak it


def aggregate_key(runs: list[ReportRun], varied: list[str], requested: str | None = None) -> str | None:
    """The dotted key to take medians over: ``requested`` (a dotted key or its last part; a ValueError
    if no run has it), or when None a varied key whose last part is ``split_index``, if any."""
    if requested is None:
        return next((k for k in varied if k.split(".")[-1] == SPLIT_KEY), None)
    keys = list(dict.fromkeys(varied + [k for r in runs for k in r.params | r.config]))
    found = [k for k in keys if k == requested or k.split(".")[-1] == requested]
    if not found:
        raise ValueError(f"--aggregate {requested!r}: no run has this config key or sweep parameter")
    return found[0]


def group_runs(runs: list[ReportRun], varied: list[str], key: str) -> dict[str, list[ReportRun]]:
    """Runs by the values of the varied keys other than ``key`` (``beta=2``; ``all runs`` if none)."""
    others = [k for k in varied if k != key]
    names = short_names(others)
    groups: dict[str, list[ReportRun]] = {}
    for run in runs:
        values = run.config | run.params
        label = ", ".join(f"{names[k]}={values.get(k)}" for k in others) or "all runs"
        groups.setdefault(label, []).append(run)
    return groups


def median_range(values: list[float]) -> str:
    """``median [min, max]`` to 3 decimals."""
    if not values:
        return MISSING
    return f"{statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def _values(runs: list[ReportRun], key: str) -> list[float]:
    return [r.metrics[key] for r in runs if key in r.metrics]


def median_table(runs: list[ReportRun], varied: list[str], key: str, prefix: str) -> str:
    """Markdown: per group of runs and dataset, the number of runs, median [min, max] of SRCC and
    PLCC over them, and the paper's median for the same evaluation settings."""
    datasets = datasets_of(runs, prefix)
    settings_varied = {k.split(".")[-1] for k in varied if k != key} & set(SETTING_NAMES)
    lines = ["| runs | dataset | n | SRCC median [min, max] | PLCC median [min, max] | paper SRCC / PLCC |",
             "|---|---|---|---|---|---|"]
    for label, members in group_runs(runs, varied, key).items():
        ref = paper_reference(members[0].settings(), settings_varied)
        for d in datasets:
            srcc, plcc = (_values(members, f"{prefix}/{d}/{m}") for m in METRICS)
            if not srcc and not plcc:
                continue
            paper = pair_cell(ref.srcc.get(d), ref.plcc.get(d)) if ref and d in ref.srcc else MISSING
            lines.append(f"| {label} | {DATASET_NAMES.get(d, d)} | {len(srcc)} | {median_range(srcc)} | "
                         f"{median_range(plcc)} | {paper} |")
    return "\n".join(lines)


def best_line(runs: list[ReportRun]) -> str:
    """The run with the highest ``val/mean/srcc``, or why no run is picked."""
    scored = [r for r in runs if SELECT_ON in r.metrics]
    if not scored:
        return f"No best run: no run logged `{SELECT_ON}` (test metrics are reported, never selected on)."
    best = max(scored, key=lambda r: r.metrics[SELECT_ON])
    return f"Best run on `{SELECT_ON}` (validation part): {best.label} ({best.metrics[SELECT_ON]:.3f})."
