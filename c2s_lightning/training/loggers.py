"""The project's loggers: Lightning's W&B logger, offline by default when there is no account, and
beside it Lightning's CSV logger, whose ``csv/metrics.csv`` and ``csv/status.json`` (how the trainer
stopped; none: killed or still running) ``report`` and the sweep runner read (``infra/run_files.py``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_only

from c2s_lightning.infra.atomic_files import write_json
from c2s_lightning.infra.run_files import CSV_FOLDER, STATUS_FILE


def wandb_offline_by_default() -> bool:
    """True when ``WANDB_MODE`` says offline/disabled or no API key is configured."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "dryrun"):
        return True
    if mode == "online" or os.environ.get("WANDB_API_KEY"):
        return False
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return not (netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"))


class WandbLogger(_LightningWandbLogger):
    """Lightning's WandbLogger with the project's defaults.

    Args:
        name: Display name of the run.
        save_dir: Folder under which ``wandb/`` run folders are written; default: the run's own
            folder (``run_folders``), or the working directory outside the CLI.
        project: W&B project.
        offline: Log offline; None (default) decides from ``WANDB_MODE`` and whether an API key
            exists, so runs work without an account and sync later with ``wandb sync``.
        log_model: Upload checkpoints as W&B artefacts (online only).
        **kwargs: Passed on to ``wandb.init`` via Lightning's WandbLogger.
    """

    def __init__(self, name: str | None = None, save_dir: str | None = None, project: str = "c2s_lightning",
                 offline: bool | None = None, log_model: bool = False, **kwargs: Any):
        offline = wandb_offline_by_default() if offline is None else offline
        if save_dir is not None:
            Path(save_dir).mkdir(parents=True, exist_ok=True)
        super().__init__(name=name, save_dir=save_dir, project=project, offline=offline,
                         log_model=log_model, **kwargs)
        if self._wandb_init.get("anonymous") is None:  # wandb warns on the key alone, even when None
            self._wandb_init.pop("anonymous", None)

    def finalize(self, status: str) -> None:
        # Close the run when the trainer is done, so that the next Trainer in the same process
        # (tests, notebooks) starts a run of its own instead of appending to this one.
        super().finalize(status)
        if self._experiment is not None:
            self._experiment.finish(exit_code=0 if status == "success" else 1)
            self._experiment = None


class RunCSVLogger(CSVLogger):
    """Lightning's CSVLogger writing into ``<save_dir>/csv/`` that records how the run ended."""

    def __init__(self, save_dir: str | os.PathLike):
        super().__init__(save_dir, name="", version=CSV_FOLDER)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        super().finalize(status)
        write_json(Path(self.log_dir) / STATUS_FILE, {"status": status})


def add_csv_logger(trainer) -> None:
    """Give a trainer that logs a ``RunCSVLogger`` beside its loggers, in the folder of the first
    (where the saved config and the plots go); logging turned off, or ``fast_dev_run``, stays so."""
    if trainer.loggers and not trainer.fast_dev_run and not any(isinstance(x, CSVLogger) for x in trainer.loggers):
        first = trainer.loggers[0]
        trainer.loggers = [*trainer.loggers, RunCSVLogger(first.save_dir or trainer.default_root_dir)]
