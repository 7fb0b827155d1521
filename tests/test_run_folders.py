"""Run folders: a new one per run, output paths defaulted into it, ``latest`` once a fit starts
(never for a fit that failed before), ranks sharing one, no folder left empty by a failed run."""

from __future__ import annotations

import json
import os

import pytest
from jsonargparse import Namespace

from c2s_lightning.training import run_folders
from c2s_lightning.cli import main
from c2s_lightning.training.run_folders import place
from test_cli import QUICKSTART, override, synth  # noqa: F401  (fixture)


def parsed(root, **explicit) -> Namespace:
    """What LightningCLI hands ``before_instantiate_classes`` for ``fit`` (the parts we touch)."""
    logger = Namespace(class_path="c2s_lightning.training.loggers.WandbLogger",
                       init_args=Namespace(name="t", save_dir=explicit.get("save_dir"), id=None, version=None, dir=None))
    return Namespace(trainer=Namespace(default_root_dir=str(root), logger=logger),
                     checkpoint=Namespace(dirpath=explicit.get("dirpath")),
                     export=Namespace(dirpath=explicit.get("export")), ckpt_path=explicit.get("ckpt_path"))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (run_folders.RUN_ENV, run_folders._OWNER_ENV, "RANK", "LOCAL_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)


def test_each_run_gets_its_folder_named_by_time_and_wandb_id(tmp_path):
    first, second = parsed(tmp_path), parsed(tmp_path)
    a, b = place(first, "fit").path, place(second, "fit")
    assert not (tmp_path / "latest").exists()  # nothing has started yet
    b.start()
    b = b.path
    assert a != b and a.parent == b.parent == tmp_path / "runs"
    run_id = first.trainer.logger.init_args.id
    assert len(run_id) == 8 and a.name.endswith("-" + run_id) and a.name[:15].replace("-", "").isdigit()
    assert first.trainer.default_root_dir == str(a) and first.trainer.logger.init_args.save_dir == str(a)
    assert first.checkpoint.dirpath == str(a / "checkpoints")
    assert os.readlink(tmp_path / "latest") == f"runs/{b.name}"
    assert json.loads((tmp_path / "latest.json").read_text())["export"] == str(b / "export")


def test_explicit_paths_are_kept_and_evaluations_leave_latest_alone(tmp_path):
    config = parsed(tmp_path, save_dir=str(tmp_path / "logs"), dirpath=str(tmp_path / "ckpts"))
    run = place(config, "validate").path
    assert config.trainer.logger.init_args.save_dir == str(tmp_path / "logs")
    assert config.checkpoint.dirpath == str(tmp_path / "ckpts") and run.is_dir()
    assert not (tmp_path / "latest").exists() and not (tmp_path / "latest.json").exists()


def test_a_checkpoint_under_latest_is_resolved_before_latest_moves(tmp_path):
    old = place(parsed(tmp_path), "fit")
    old.start()
    (old.path / "checkpoints").mkdir()
    (old.path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    config = parsed(tmp_path, ckpt_path=str(tmp_path / "latest" / "checkpoints" / "last.ckpt"))
    new = place(config, "fit")
    assert config.ckpt_path == str((old.path / "checkpoints" / "last.ckpt").resolve())
    new.start()
    assert (tmp_path / "latest").resolve() == new.path.resolve()


def test_spawned_ranks_share_the_folder_and_a_later_run_does_not(tmp_path, monkeypatch):
    first = place(parsed(tmp_path), "fit")
    first.start()
    run = first.path
    monkeypatch.setenv("LOCAL_RANK", "1")  # what Lightning's launcher gives the ranks it spawns
    rank = place(parsed(tmp_path), "fit")
    assert rank.path == run.resolve() and rank.latest is None and not rank.made
    rank.start()
    assert (tmp_path / "latest").resolve() == run.resolve()
    assert not rank.discard_unstarted() and run.is_dir()  # only the rank that made it may remove it
    monkeypatch.delenv("LOCAL_RANK")
    assert place(parsed(tmp_path), "fit").path != run.resolve()  # the next run of this process


def test_a_failed_run_keeps_its_folder_when_it_holds_more_than_setup_wrote(tmp_path):
    kept, removed = place(parsed(tmp_path), "fit"), place(parsed(tmp_path), "fit")
    for folder in (kept, removed):
        (folder.path / "wandb").mkdir()
        (folder.path / "config.yaml").write_text("x")
    (kept.path / "notes.txt").write_text("the user's")
    assert not kept.discard_unstarted() and (kept.path / "notes.txt").read_text() == "the user's"
    assert removed.discard_unstarted() and not removed.path.exists()
    started = place(parsed(tmp_path), "validate")
    started.start()
    assert not started.discard_unstarted() and started.path.is_dir()
    assert not (tmp_path / "latest").exists()  # neither a failed fit nor a validate moved it


def fit(tmp_path, synth, *extra: str):  # noqa: F811
    return main(["fit", "--config", QUICKSTART, "--config", override(tmp_path, synth, max_steps=2), *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth):  # noqa: F811
    """A folder whose ``run/latest`` is a finished tiny fit."""
    tmp = tmp_path_factory.mktemp("trained")
    return tmp, fit(tmp, synth).run_dir.resolve()


@pytest.mark.parametrize("mistake", [
    ["--model.model", "tiny_lavaa"],  # fails building the model
    ["--data.datasets", '[{"name": "kadid10k", "root": "no_such_folder", "split": "random"}]'],  # data setup
    ["--model.lr", "-1"],  # the optimizer, after setup wrote config.yaml and W&B files
])
def test_a_fit_that_fails_before_training_leaves_latest_and_no_run_folder(trained, synth, mistake):  # noqa: F811
    tmp, good = trained
    root = tmp / "run"
    assert (root / "latest").resolve() == good
    pointer = (root / "latest.json").read_text()
    with pytest.raises(SystemExit) as failed:
        fit(tmp, synth, *mistake)
    assert failed.value.code == 2
    assert list((root / "runs").iterdir()) == [good]
    assert (root / "latest").resolve() == good and (root / "latest.json").read_text() == pointer
    assert (root / "latest" / "export" / "model.safetensors").is_file()
