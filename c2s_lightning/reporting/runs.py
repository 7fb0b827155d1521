"""Runs as a report sees them: metrics, flat config, sweep parameters and a label.

Inputs are offline ``run-*.wandb`` files, folders holding them (searched recursively), or
``entity/project/run_id`` paths of online runs (read through ``reporting.online``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from c2s_lightning.infra.config_keys import flatten
from c2s_lightning.reporting.online import ONLINE_PATH, read_online_run
from c2s_lightning.reporting.wandb_files import RunData, find_runs, read_run

# Config keys that differ between runs without saying anything about the experiment.
_NOISE = ("save_dir", "logger.init_args.name", "default_root_dir", "dirpath", "_wandb", "wandb_version")
SETTING_NAMES = ("alpha", "beta", "rule", "matrix")


@dataclasses.dataclass
class ReportRun:
    """One run: where it came from, its flat config, sweep parameters and last metric values.

    Attributes:
        name: Run name (logger name, run folder or run id).
        source: The run file or online path it was read from.
        folder: The run's own folder (its logger ``save_dir``), where ``plots/`` lives; None online.
        config: The logged config flattened to dotted keys.
        params: The sweep parameters (from the run folder's ``params.json``), else empty.
        metrics: Every numeric key: the summary's value, else the last logged value.
        history: The logged rows (for media such as W&B images).
    """

    name: str
    source: str
    folder: Path | None
    config: dict[str, Any]
    params: dict[str, Any]
    metrics: dict[str, float]
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    label: str = ""

    def settings(self) -> dict[str, Any]:
        """Evaluation settings by short name (alpha, beta, rule, matrix) from the config and params."""
        found = {}
        for key, value in list(self.config.items()) + list(self.params.items()):
            parts = key.split(".")
            if parts[-1] in SETTING_NAMES and (key in self.params or "evaluator" in key):
                found[parts[-1]] = value
        return found


def last_metrics(data: RunData) -> dict[str, float]:
    """Numeric values by key: the summary's (the last logged value), the history's last as fallback."""
    def numeric(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    values = {k: v for row in data.history for k, v in row.items() if numeric(v)}
    values |= {k: v for k, v in data.summary.items() if numeric(v)}
    return values


def run_folder(run_file: Path) -> Path:
    """The logger ``save_dir`` of an offline run file (``save_dir/wandb/offline-run-*/run-*.wandb``)."""
    return run_file.parents[2] if run_file.parent.parent.name == "wandb" else run_file.parent


def resolve(items: list[str]) -> list[Path | str]:
    """Run files for local items (files, folders searched recursively) and online paths as given."""
    found: list[Path | str] = []
    for item in items:
        path = Path(item)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            runs = find_runs(path)
            if not runs:
                raise FileNotFoundError(f"{path}: no run-*.wandb files under this folder")
            found += runs
        elif ONLINE_PATH.fullmatch(item):
            found.append(item)
        else:
            raise FileNotFoundError(f"{item}: not a run file, a folder or an entity/project/run_id path")
    return list(dict.fromkeys(found))


def load_run(source: Path | str) -> ReportRun:
    """Read one offline run file or online run path."""
    if isinstance(source, str):
        data, folder = read_online_run(source), None
    else:
        data, folder = read_run(source), run_folder(source)
    config = flatten(data.config)
    params_file = folder / "params.json" if folder is not None else None
    params = json.loads(params_file.read_text()) if params_file and params_file.is_file() else {}
    name = config.get("trainer.logger.init_args.name") or (folder.name if folder else None) or data.run_id
    return ReportRun(str(name), str(source), folder, config, params, last_metrics(data), data.history)


def _comparable(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def varying_keys(runs: list[ReportRun]) -> list[str]:
    """Keys whose values differ between runs: sweep parameters first, else config keys."""
    def differing(dicts: list[dict[str, Any]]) -> list[str]:
        keys = list(dict.fromkeys(k for d in dicts for k in d))
        return [k for k in keys if not any(n in k for n in _NOISE) and k != "config"
                and len({_comparable(d.get(k)) for d in dicts}) > 1]

    if all(r.params for r in runs):
        return differing([r.params for r in runs]) or (list(runs[0].params) if len(runs) == 1 else [])
    return differing([r.config | r.params for r in runs])


def short_names(keys: list[str]) -> dict[str, str]:
    """``evaluator.beta`` -> ``beta`` where the last part is unique among ``keys``."""
    last = [k.split(".")[-1] for k in keys]
    return {k: s if last.count(s) == 1 else k for k, s in zip(keys, last)}


def _format(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def label_runs(runs: list[ReportRun]) -> list[str]:
    """Label each run by its varying values (``beta=3``) and sort the runs by them, in place.

    Returns:
        The varying keys, by their full dotted names.
    """
    keys = varying_keys(runs)
    names = short_names(keys)
    for run in runs:
        values = run.config | run.params
        run.label = ", ".join(f"{names[k]}={_format(values.get(k))}" for k in keys) or run.name

    def order(run: ReportRun) -> tuple:
        values = run.config | run.params
        return tuple((0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))
                     for v in (values.get(k) for k in keys))

    runs.sort(key=order)
    for label in {r.label for r in runs if sum(o.label == r.label for o in runs) > 1}:
        for run in runs:
            if run.label == label:
                run.label = f"{label} ({run.name})"
    return keys


def collect(items: list[str | os.PathLike]) -> tuple[list[ReportRun], list[str]]:
    """Read and label every run named by ``items``; return the runs and the varying keys."""
    runs = [load_run(source) for source in resolve([str(i) for i in items])]
    return runs, label_runs(runs)
