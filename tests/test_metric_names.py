"""Honest metric names: nothing shipped selects a checkpoint or a run on a test-part metric."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from c2s_lightning.evaluation.evaluator import SoftComparisonEvaluator
from c2s_lightning.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "experiments").rglob("*.yaml"))
SWEEPS = sorted((ROOT / "sweeps").rglob("*.yaml"))


def _monitored(node, path: str = ""):
    """Every ``monitor`` value anywhere in a config (checkpoint, early stopping, ...)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "monitor":
                yield f"{path}.{key}", value
            yield from _monitored(value, f"{path}.{key}")
    elif isinstance(node, list):
        for k, value in enumerate(node):
            yield from _monitored(value, f"{path}[{k}]")


def test_no_experiment_config_monitors_a_test_metric():
    assert len(CONFIGS) > 10
    found = [(c.name, where, m) for c in CONFIGS for where, m in _monitored(yaml.safe_load(c.read_text()))
             if str(m).startswith("test/")]
    assert not found


def test_checkpoint_defaults_monitor_nothing(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(ROOT / "experiments" / "quickstart.yaml"), "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["checkpoint"]["monitor"] is None
    assert printed["evaluator"]["eval_part"] == "test"  # so the default keys are test/<dataset>/...


@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda p: p.stem)
def test_sweep_metrics_are_logged_by_their_runs_and_searches_never_use_test(sweep):
    spec = yaml.safe_load(sweep.read_text())
    part = spec["metric"]["name"].split("/")[0]
    eval_part = spec["parameters"].get("evaluator.eval_part", {}).get("value", "test")
    assert part == eval_part, "the runs log their metrics under the evaluator's eval_part"
    if spec["method"] != "grid":  # a search picks a winner: that must not be on the test part
        assert part != "test"


def test_eval_part_is_checked():
    with pytest.raises(ValueError, match="eval_part must be one of"):
        SoftComparisonEvaluator(eval_part="validation")
