"""The command line in-process: fit on the quickstart config, config stacking, resume, logged runs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from c2s_lightning.cli import main
from c2s_lightning.data.synth import write_synthetic_kadid
from run_logs import columns, logged_config, series

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "experiments" / "quickstart.yaml")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_synthetic_kadid(tmp_path_factory.mktemp("cli") / "kadid", size=32)


def override(tmp_path: Path, synth: Path, **trainer) -> str:
    """A second config that points the quickstart at a temporary root (``tmp_path/run``; each run
    gets a folder under it, ``latest`` points at the newest) and a small budget."""
    out = tmp_path / "run"
    cfg = {
        "trainer": {"default_root_dir": str(out), "max_steps": 4, "val_check_interval": 2,
                    "log_every_n_steps": 1, "enable_progress_bar": False,
                    "logger": {"class_path": "c2s_lightning.training.loggers.WandbLogger",
                               "init_args": {"name": "test"}}, **trainer},
        # synthesize/synth_options/pairs_per_image explicit: list items merge with the quickstart's
        "data": {"datasets": [{"name": "kadid10k", "root": str(synth), "pairs": 64, "pairs_per_image": None,
                               "split": "random", "synthesize": False, "synth_options": {},
                               "split_options": {"test_refs": ["I04", "I05", "I06", "I07", "I08"]}}],
                 "balance_levels": False, "rating_images_per_pair": 0, "num_workers": 0,
                 "batch_size": 8, "val_pairs": 8},
        "model": {"rating_loss_weight": 0.0},
        "evaluator": {"max_images": 10, "before_training": True},
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_fit_logs_loss_and_soft_comparison_metrics_to_wandb(tmp_path, synth):
    cli = main(["fit", "--config", QUICKSTART, "--config", override(tmp_path, synth)])
    assert cli.trainer.global_step == 4
    assert type(cli.trainer.strategy.checkpoint_io).__name__ == "AtomicCheckpointIO"  # never half a last.ckpt
    root = tmp_path / "run"  # the CSV logger beside W&B: what `report` and the sweep runner read
    losses = series(root, "train/loss")
    assert len(losses) == 4 and all(0 < v < 20 for v in losses)
    for key in ("test/kadid10k/srcc", "test/kadid10k/plcc", "test/kadid10k/krcc", "test/mean/srcc"):
        assert -1 <= series(root, key)[-1] <= 1
    # the test part is scored in the validation loop: logged as test/, never as val/
    assert len(series(root, "test/kadid10k/srcc")) == 3  # before training, step 2, step 4
    assert not [k for k in columns(root) if k.startswith("val/") and k.endswith("srcc")]
    assert "val/loss" in columns(root)  # the validation loop's own pairs
    config = logged_config(root)
    assert config["model.model"] == "tiny-llava" and config["evaluator.beta"] == 1  # resolved, dotted keys
    run = tmp_path / "run" / "latest"
    assert sorted(p.name for p in (run / "plots").glob("*.png"))
    assert (run / "export" / "model.safetensors").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "config.yaml").is_file() and list(run.glob("wandb/offline-run-*/run-*.wandb"))
    assert json.loads((run / "csv" / "status.json").read_text()) == {"status": "success"}


def test_resume_mid_run_continues_at_the_right_step(tmp_path, synth):
    # 64 pairs / batch 8 = 8 steps per epoch; a checkpoint every 3 steps lands mid-epoch
    straight = main(["fit", "--config", QUICKSTART, "--config", override(tmp_path / "a", synth, max_steps=6),
                     "--evaluator.before_training", "false", "--checkpoint.every_n_train_steps", "3",
                     "--checkpoint.save_top_k", "-1"])
    ckpt = tmp_path / "a" / "run" / "latest" / "checkpoints" / "step000003.ckpt"
    assert ckpt.is_file()
    # Lightning saved the loader's place: epoch 0, 3 batches of 8 pairs delivered
    saved = torch.load(ckpt, weights_only=False)["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert saved == [{"epoch": 0, "consumed": 24, "replicas": 1}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = main(["fit", "--config", QUICKSTART, "--config", override(tmp_path / "b", synth, max_steps=6),
                        "--evaluator.before_training", "false", "--ckpt_path", str(ckpt)])
    assert not [w for w in caught if "not resumable" in str(w.message)]
    assert resumed.trainer.global_step == 6
    assert series(tmp_path / "b" / "run", "step")[0] >= 3  # the resumed run logs from where it stopped
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.parametrize("strategy", sorted((ROOT / "experiments" / "strategies").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_deepspeed_overrides_stack_on_quickstart(strategy, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", QUICKSTART, "--config", str(strategy), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    expected = yaml.safe_load(strategy.read_text())["trainer"]
    strategy_printed = printed["trainer"]["strategy"]
    assert strategy_printed["class_path"] == expected["strategy"]["class_path"]
    # the printed config lists every constructor default too; ours must all be there, unchanged,
    # with the interpolation resolved against the experiment underneath
    ours = expected["strategy"]["init_args"] | {"logging_batch_size_per_gpu": printed["data"]["batch_size"]}
    assert ours.items() <= strategy_printed["init_args"].items()
    assert strategy_printed["init_args"]["logging_batch_size_per_gpu"] == 32  # quickstart's data.batch_size
    assert printed["trainer"]["precision"] == "bf16-mixed"
    assert printed["model"]["model"] == "tiny-llava"  # the experiment underneath is kept


def test_top_level_help_lists_tools(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    for command in ("fit", "score", "anchors", "evaluate", "sweep", "report", "data"):
        assert command in out
