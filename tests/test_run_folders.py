"""Run folders: a new one per run, output paths defaulted into it, ``latest``, ranks sharing one."""

from __future__ import annotations

import json
import os

import pytest
from jsonargparse import Namespace

from c2s_lightning import run_folders
from c2s_lightning.run_folders import place_run


def parsed(root, **explicit) -> Namespace:
    """What LightningCLI hands ``before_instantiate_classes`` for ``fit`` (the parts we touch)."""
    logger = Namespace(class_path="c2s_lightning.loggers.WandbLogger",
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
    a, b = place_run(first, "fit"), place_run(second, "fit")
    assert a != b and a.parent == b.parent == tmp_path / "runs"
    run_id = first.trainer.logger.init_args.id
    assert len(run_id) == 8 and a.name.endswith("-" + run_id) and a.name[:15].replace("-", "").isdigit()
    assert first.trainer.default_root_dir == str(a) and first.trainer.logger.init_args.save_dir == str(a)
    assert first.checkpoint.dirpath == str(a / "checkpoints")
    assert os.readlink(tmp_path / "latest") == f"runs/{b.name}"
    assert json.loads((tmp_path / "latest.json").read_text())["export"] == str(b / "export")


def test_explicit_paths_are_kept_and_evaluations_leave_latest_alone(tmp_path):
    config = parsed(tmp_path, save_dir=str(tmp_path / "logs"), dirpath=str(tmp_path / "ckpts"))
    run = place_run(config, "validate")
    assert config.trainer.logger.init_args.save_dir == str(tmp_path / "logs")
    assert config.checkpoint.dirpath == str(tmp_path / "ckpts") and run.is_dir()
    assert not (tmp_path / "latest").exists() and not (tmp_path / "latest.json").exists()


def test_a_checkpoint_under_latest_is_resolved_before_latest_moves(tmp_path):
    old = place_run(parsed(tmp_path), "fit")
    (old / "checkpoints").mkdir()
    (old / "checkpoints" / "last.ckpt").write_bytes(b"x")
    config = parsed(tmp_path, ckpt_path=str(tmp_path / "latest" / "checkpoints" / "last.ckpt"))
    new = place_run(config, "fit")
    assert config.ckpt_path == str((old / "checkpoints" / "last.ckpt").resolve())
    assert (tmp_path / "latest").resolve() == new.resolve()


def test_spawned_ranks_share_the_folder_and_a_later_run_does_not(tmp_path, monkeypatch):
    run = place_run(parsed(tmp_path), "fit")
    monkeypatch.setenv("LOCAL_RANK", "1")  # what Lightning's launcher gives the ranks it spawns
    assert place_run(parsed(tmp_path), "fit") == run.resolve()
    assert (tmp_path / "latest").resolve() == run.resolve()
    monkeypatch.delenv("LOCAL_RANK")
    assert place_run(parsed(tmp_path), "fit") != run.resolve()  # the next run of this process
