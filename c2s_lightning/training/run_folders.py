"""Run folders: every fit/validate/test/predict writes into a folder of its own, never over another
(``docs/exports.md``: the layout, ``<root>/latest``, what a failed start leaves, ``C2S_RUN_DIR``).

The run folder ``<root>/runs/<YYYYmmdd-HHMMSS>-<W&B run id>/`` is made before anything is built,
and the output paths the config leaves unset (``checkpoint.dirpath``, the W&B logger's
``save_dir``, ``export.dirpath``) default into it. The ranks of one run share it (``_run_folder``).
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L

from c2s_lightning.infra.atomic_files import write_json

log = logging.getLogger(__name__)

RUN_ENV = "C2S_RUN_DIR"
_OWNER_ENV = "C2S_RUN_DIR_OWNER"  # set when this package chose C2S_RUN_DIR (the pid that did)
LATEST = "latest"


@dataclass
class RunFolder:
    """A run's folder (``path``; ``<root>/latest`` lives in ``root``) as ``place`` made it, and what
    happens to it once the run starts or fails.

    Attributes:
        latest: What ``latest.json`` records once a fit starts; None when ``latest`` stays (not a
            fit, or not the first rank).
        made: This process made the folder (not one chosen through ``C2S_RUN_DIR``).
        started: The run's loop began (set by ``RunStart``).
    """

    root: Path
    path: Path
    latest: dict[str, Any] | None = None
    made: bool = False
    started: bool = field(default=False, init=False)

    # what setup writes before any loop runs: the saved config and the loggers' files
    SETUP_FILES = frozenset({"config.yaml", "wandb", "csv"})

    def start(self) -> None:
        """Mark the run started; a fit now becomes ``<root>/latest``."""
        if not self.started and self.latest is not None:
            point_latest(self.root, self.path, self.latest)
        self.started = True

    def discard_unstarted(self) -> bool:
        """Remove the folder of a run that failed before its loop began, if it holds nothing but
        what setup writes (checkpoints, plots, a user's file keep it); True if it was removed."""
        if self.started or not self.made or not self.path.is_dir() or not _first_rank():
            return False
        if any(entry.name not in self.SETUP_FILES for entry in self.path.iterdir()):
            return False
        shutil.rmtree(self.path)
        return True


class RunStart(L.Callback):
    """Marks the run's ``folder`` started when training begins, when a fit ends without a step to
    train (resumed at its budget: it still exports), or when an evaluation loop begins."""

    def __init__(self, folder: RunFolder):
        super().__init__()
        self.folder = folder

    def _start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:  # a fit's check before training is not its start
            self.folder.start()

    on_train_start = on_fit_end = on_validation_start = on_test_start = on_predict_start = _start


def place(config: Any, subcommand: str | None) -> RunFolder:
    """Make this run's folder and point the config's unset output paths into it.

    Args:
        config: The parsed LightningCLI config of the subcommand (a jsonargparse Namespace with
            ``trainer``, ``checkpoint``, ``export``, ``ckpt_path``); changed in place.
        subcommand: ``fit`` moves ``<root>/latest`` to the new folder once it starts; others leave
            it alone.
    """
    trainer = config.trainer
    root = Path(trainer.default_root_dir or ".")
    run, made = _run_folder(root, _wandb_run_id(trainer.logger))
    trainer.default_root_dir = str(run)
    for logger in _wandb_loggers(trainer.logger):
        if logger.init_args.save_dir is None and logger.init_args.get("dir") is None:
            logger.init_args.save_dir = str(run)
    if config.get("checkpoint") is not None and config.checkpoint.dirpath is None:
        config.checkpoint.dirpath = str(run / "checkpoints")
    folder = RunFolder(root, run, made=made)
    if subcommand == "fit":
        ckpt = config.get("ckpt_path")
        if ckpt and Path(ckpt).exists():  # resolve `latest/...` before `latest` moves to this run
            config.ckpt_path = str(Path(ckpt).resolve())
        if _first_rank():
            export = config.get("export")
            folder.latest = {"checkpoints": config.get("checkpoint", {}).get("dirpath"),
                             "export": (export or {}).get("dirpath") or str(run / "export")}
    return folder


def point_latest(root: str | os.PathLike, run: str | os.PathLike, paths: dict[str, Any] | None = None) -> None:
    """Point ``<root>/latest`` (symlink) and ``<root>/latest.json`` at ``run``, atomically."""
    root, run = Path(root), Path(run)
    target = os.path.relpath(run, root)
    write_json(root / f"{LATEST}.json", {"run": target, **(paths or {}), "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    temp = root / f".{LATEST}.{os.getpid()}.tmp"
    try:
        temp.unlink(missing_ok=True)
        os.symlink(target, temp, target_is_directory=True)
        os.replace(temp, root / LATEST)
    except OSError as error:  # no symlinks (some Windows setups) or a real folder named `latest`
        temp.unlink(missing_ok=True)
        log.warning("could not point %s at %s (%s); %s.json says where the newest run is",
                    root / LATEST, run, error, LATEST)


def _run_folder(root: Path, run_id: str | None) -> tuple[Path, bool]:
    """The run folder, and whether it was made here (True) or inherited through ``C2S_RUN_DIR``."""
    inherited = os.environ.get(RUN_ENV)
    # a folder the user chose (no owner) serves every process; one we chose serves the ranks
    # spawned from the run that chose it, never a later run of this process or of a child tool
    if inherited and (_OWNER_ENV not in os.environ or not _first_rank()):
        run = Path(inherited)
        run.mkdir(parents=True, exist_ok=True)
        return run, False
    name = time.strftime("%Y%m%d-%H%M%S") + (f"-{run_id}" if run_id else "")
    run, k = root / "runs" / name, 1
    while True:
        try:
            run.mkdir(parents=True)
            break
        except FileExistsError:  # two runs without a W&B id in the same second
            k += 1
            run = root / "runs" / f"{name}-{k}"
    os.environ[RUN_ENV], os.environ[_OWNER_ENV] = str(run.resolve()), str(os.getpid())
    return run, True


def _wandb_loggers(logger_config: Any) -> list:
    configs = logger_config if isinstance(logger_config, list) else [logger_config]
    return [c for c in configs if hasattr(c, "class_path") and str(c.class_path).endswith("WandbLogger")]


def _wandb_run_id(logger_config: Any) -> str | None:
    """The W&B run id (given, or made now, eight of [a-z0-9] as W&B makes them, and written into the
    logger's config), if W&B logs."""
    for logger in _wandb_loggers(logger_config):
        args = logger.init_args
        if args.get("id") is None and args.get("version") is None:
            args.id = "".join(random.SystemRandom().choices(string.ascii_lowercase + string.digits, k=8))
        return args.get("id") or args.get("version")
    return None


def _first_rank() -> bool:
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"))
