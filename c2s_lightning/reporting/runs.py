"""Runs as a report sees them: how each ended, its metrics, flat config, sweep parameters, a label.
Read from run folders (the CSV logger's ``csv/`` and the saved ``config.yaml``), a sweep folder's
``sweep_state.json`` (how each run ended, also runs that logged nothing), or W&B online."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from c2s_lightning.infra.config_keys import flatten
from c2s_lightning.infra.run_files import CSV_FOLDER, METRICS_FILE, STATUS_FILE, SWEEP_STATE
from c2s_lightning.infra.yaml_files import safe_load
from c2s_lightning.reporting.online import ONLINE_PATH, read_online_run

# Config keys that differ between runs without saying anything about the experiment.
_NOISE = ("save_dir", "logger.init_args.name", "default_root_dir", "dirpath")
SETTING_NAMES = ("alpha", "beta", "rule", "matrix")
FINISHED = "finished"


@dataclasses.dataclass
class ReportRun:
    """One run: its name (logger name, run folder or run id), the folder or online path it was read
    from, its folder (None online), dotted config, sweep parameters (``params.json``), each metric's
    last value, and how it ended (``finished``, ``failed``, ``interrupted``, ``running`` or
    ``unfinished``: no end recorded)."""

    name: str
    source: str
    folder: Path | None
    config: dict[str, Any]
    params: dict[str, Any]
    metrics: dict[str, float]
    status: str = FINISHED
    label: str = ""

    def settings(self) -> dict[str, Any]:
        """Evaluation settings by short name (alpha, beta, rule, matrix) from the config and params."""
        found = {}
        for key, value in list(self.config.items()) + list(self.params.items()):
            parts = key.split(".")
            if parts[-1] in SETTING_NAMES and (key in self.params or "evaluator" in key):
                found[parts[-1]] = value
        return found


def _number(cell: str | None) -> float | None:
    try:
        number = float(cell)
    except (TypeError, ValueError):  # an empty cell, a missing one (None), text
        return None
    return number if math.isfinite(number) else None


def read_metrics(folder: Path) -> dict[str, float]:
    """Each metric's last logged value in a run folder's ``csv/metrics.csv`` (empty when none)."""
    path = folder / CSV_FOLDER / METRICS_FILE
    if not path.is_file():
        return {}
    with path.open(newline="") as file:
        return {k: n for row in csv.DictReader(file) for k, v in row.items() if (n := _number(v)) is not None}


def run_status(folder: Path) -> str:
    """How a run folder's trainer ended: ``finished``, ``failed``, or ``unfinished`` (nothing recorded)."""
    path = folder / CSV_FOLDER / STATUS_FILE
    status = json.loads(path.read_text()).get("status") if path.is_file() else "unfinished"
    return FINISHED if status == "success" else str(status)


def find_runs(root: Path) -> dict[Path, str | None]:
    """Run folders under ``root`` (oldest first) with the sweep state's status where it has one."""
    # not below hidden folders: a sweep's .superseded/ attempts, folders being written
    logged = [p.parents[1] for p in root.rglob(f"{CSV_FOLDER}/{METRICS_FILE}")
              if not any(part.startswith(".") for part in p.parents[1].relative_to(root).parts)]
    found: dict[Path, str | None] = dict.fromkeys(sorted(logged, key=lambda p: p.stat().st_mtime))
    state = root / SWEEP_STATE
    if state.is_file():  # run folders sit right under the sweep folder, wherever it was run from
        try:
            records = json.loads(state.read_text())["runs"].values()
        except (ValueError, KeyError, AttributeError) as error:
            raise ValueError(f"{state}: not a sweep state ({error!r})") from None
        found |= {root / Path(r["folder"]).name: r.get("status") for r in records}
    return found


def resolve(items: list[str]) -> dict[Path | str, str | None]:
    """Run folders (with any status a sweep state records) and online paths as given."""
    found: dict[Path | str, str | None] = {}
    for item in items:
        path = Path(item)
        if path.is_dir():
            runs = {path: None} if (path / CSV_FOLDER).is_dir() else find_runs(path)
            if not runs:
                raise FileNotFoundError(f"no runs in {path} (a run folder holds {CSV_FOLDER}/{METRICS_FILE})")
            found |= runs
        elif ONLINE_PATH.fullmatch(item) and not Path(path.parts[0]).exists():  # not a mistyped local path
            found[item] = None
        else:
            raise FileNotFoundError(f"{item}: no such run folder (nor an entity/project/run_id of an online run)")
    return found


def load_run(source: Path | str, status: str | None = None) -> ReportRun:
    """Read one run folder or online run path; ``status`` (a sweep state's) overrides the folder's."""
    if isinstance(source, str):
        run_id, config, metrics, online_status = read_online_run(source)
        config = flatten(config)
        name = config.get("trainer.logger.init_args.name") or run_id
        return ReportRun(str(name), source, None, config, {}, metrics, online_status)
    config_file, params_file = source / "config.yaml", source / "params.json"
    config = flatten(safe_load(config_file.read_text()) or {}) if config_file.is_file() else {}
    params = json.loads(params_file.read_text()) if params_file.is_file() else {}
    name = config.get("trainer.logger.init_args.name") or source.name
    return ReportRun(str(name), str(source), source, config, params, read_metrics(source),
                     status or run_status(source))


def varying_keys(runs: list[ReportRun]) -> list[str]:
    """Keys whose values differ between runs: sweep parameters first, else config keys."""
    def differing(dicts: list[dict[str, Any]]) -> list[str]:
        keys = list(dict.fromkeys(k for d in dicts for k in d))
        return [k for k in keys if not any(n in k for n in _NOISE) and k != "config"
                and len({json.dumps(d.get(k), sort_keys=True, default=str) for d in dicts}) > 1]

    if all(r.params for r in runs):
        return differing([r.params for r in runs]) or (list(runs[0].params) if len(runs) == 1 else [])
    return differing([r.config | r.params for r in runs])


def short_names(keys: list[str]) -> dict[str, str]:
    """``evaluator.beta`` -> ``beta`` where the last part is unique among ``keys``."""
    last = [k.split(".")[-1] for k in keys]
    return {k: s if last.count(s) == 1 else k for k, s in zip(keys, last)}


def label_runs(runs: list[ReportRun]) -> list[str]:
    """Label and sort the runs by their varying values (``beta=3``), in place; return the varying keys."""
    keys = varying_keys(runs)
    names = short_names(keys)
    for run in runs:
        values = [(names[k], (run.config | run.params).get(k)) for k in keys]
        run.label = ", ".join(f"{n}={v:.3g}" if isinstance(v, float) else f"{n}={v}" for n, v in values) or run.name

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
    runs = [load_run(source, status) for source, status in resolve([str(i) for i in items]).items()]
    return runs, label_runs(runs)
