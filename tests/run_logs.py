"""What a run's CSV logger wrote (``csv/metrics.csv``, ``csv/hparams.yaml``), read with the csv and
yaml modules alone: the tests' own reader, independent of the report's."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml


def newest(root: Path, name: str) -> Path:
    """The newest ``csv/<name>`` under ``root``."""
    return max(Path(root).rglob(f"csv/{name}"), key=lambda p: p.stat().st_mtime)


def series(root: Path, key: str) -> list[float]:
    """Every logged value of ``key`` in the newest run under ``root``, in order."""
    with newest(root, "metrics.csv").open(newline="") as file:
        return [float(row[key]) for row in csv.DictReader(file) if row.get(key, "") != ""]


def columns(root: Path) -> list[str]:
    """The keys the newest run under ``root`` logged."""
    with newest(root, "metrics.csv").open(newline="") as file:
        return next(csv.reader(file))


def logged_config(root: Path) -> dict:
    """The dotted config the newest run under ``root`` logged."""
    return yaml.safe_load(newest(root, "hparams.yaml").read_text())
