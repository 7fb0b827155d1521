"""Every shipped experiment config runs: fast_dev_run with the tiny model on native-format fixtures.

The fixtures hold all nine datasets with their real file names (full-size label files, 4x4 images),
so the paper's split lists apply unchanged. Each config is stacked the way its header says, the
resolved config is printed, pointed at temporary folders, and fitted for one step.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import yaml

from c2s_lightning.cli import main

sys.path.insert(0, str(Path(__file__).parent))
import native_fixtures as nf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
BASE, TINY = EXPERIMENTS / "base.yaml", EXPERIMENTS / "backbones" / "tiny_llava.yaml"
WRITERS = {"live": nf.write_live, "csiq": nf.write_csiq, "kadid10k": nf.write_kadid, "bid": nf.write_bid,
           "clive": nf.write_clive, "koniq10k": nf.write_koniq, "tid2013": nf.write_tid2013,
           "spaq": nf.write_spaq, "agiqa3k": nf.write_agiqa}


def stack_for(path: Path) -> list[Path]:
    """How each kind of file is meant to be stacked (see the comment at the top of each file)."""
    kind = path.parent.name
    if path == BASE:
        return [BASE, TINY]
    if kind == "backbones":
        return [BASE, path, TINY] if path != TINY else [BASE, TINY]
    return [BASE, TINY, path]


CONFIGS = sorted(p for p in EXPERIMENTS.rglob("*.yaml")
                 if p.parent.name != "strategies"
                 and p.name not in ("quickstart.yaml", "evaluate.yaml", "own_list.yaml", "own_list_train.yaml")
                 and "mplug" not in p.name)  # quickstart: test_cli; DeepSpeed: stacking test; mPLUG: its own;
#                                             evaluate preset (nothing trains): test_commands' evaluate test;
#                                             own_list (evaluate-only, a user's list): test_readme_commands;
#                                             own_list_train (not stacked on base): test_own_list_recipe


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("datasets")
    for name, write in WRITERS.items():
        write(root / name, full=True)
    monkeypatch_module.setenv("C2S_DATA_ROOT", str(root))
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def resolved(stack: list[Path], capsys) -> dict:
    args = ["fit"] + [a for p in stack for a in ("--config", str(p))] + ["--print_config"]
    with pytest.raises(SystemExit):
        main(args)
    return yaml.safe_load(capsys.readouterr().out)


def for_test(config: dict, out: Path) -> dict:
    config["trainer"] |= {"fast_dev_run": True, "default_root_dir": str(out), "enable_progress_bar": False}
    config["trainer"]["logger"]["init_args"]["save_dir"] = str(out)
    config["checkpoint"]["dirpath"] = str(out / "checkpoints")
    config["evaluator"] |= {"max_images": 6, "plots": False}
    config["data"] |= {"num_workers": 0, "batch_size": 2, "val_pairs": 2}
    for spec in config["data"]["datasets"]:
        if spec["pairs"] is not None or spec["pairs_per_image"] is not None:
            spec["pairs"], spec["pairs_per_image"] = 4, None
    return config


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_experiment_config_fits_one_step(path, data_root, tmp_path, capsys):
    header = path.read_text().splitlines()[0]
    assert header.startswith("#"), f"{path} must open with a comment: its launch command and paper table"
    config = for_test(resolved(stack_for(path), capsys), tmp_path / "run")
    single = tmp_path / "resolved.yaml"
    single.write_text(yaml.safe_dump(config))
    cli = main(["fit", "--config", str(single)])
    assert cli.trainer.global_step == 1
    evaluator = next(c for c in cli.trainer.callbacks if type(c).__name__ == "SoftComparisonEvaluator")
    evaluated = {s["label"] or s["name"] for s in config["data"]["datasets"] if s["evaluate"]}
    assert set(evaluator.last_results) == evaluated
    # 4x4 fixture images of one dataset are identical, so a constant prediction (NaN SRCC) is allowed
    assert all(-1 <= row["srcc"] <= 1 or math.isnan(row["srcc"]) for row in evaluator.last_results.values())


def test_a_left_out_dataset_is_not_trained_on(capsys):
    # list items of a later config merge with the earlier item at the same position: the
    # ablation must null the amount explicitly, or base.yaml's 9.5 pairs per image would stay
    config = resolved([BASE, TINY, EXPERIMENTS / "ablations" / "leave_out_koniq10k.yaml"], capsys)
    koniq = next(s for s in config["data"]["datasets"] if s["name"] == "koniq10k")
    assert koniq["pairs"] is None and koniq["pairs_per_image"] is None
