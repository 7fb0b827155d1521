"""The LightningCLI of the project: typed constructors are the schema, configs stack and print."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import jsonargparse
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from c2s_lightning.evaluation.evaluator import SoftComparisonEvaluator
from c2s_lightning.training.export_callback import HFExport
from c2s_lightning.training.loggers import add_csv_logger
from c2s_lightning.training.progress_lines import use_line_progress
from c2s_lightning.infra.checkpoint_files import LIGHTNING_KEYWORDS, check_checkpoint_file, use_atomic_checkpoints
from c2s_lightning.infra.arguments import ErrorsThatHelp, replacing_lists
from c2s_lightning.infra.config_keys import flatten
from c2s_lightning.infra.yaml_files import bound_config_loaders
from c2s_lightning.data.datamodule import ComparisonDataModule
from c2s_lightning.models.module import Compare2ScoreModule
from c2s_lightning.training.run_folders import RunStart, place


REPLACED_LISTS = ("--data.datasets",)
"""Lists that a command-line value replaces whole instead of merging into a config's (``replacing_lists``)."""


class LoggedConfigCallback(SaveConfigCallback):
    """Writes the resolved config next to the run and logs it to every logger with dotted keys
    (``evaluator.beta``): the CLI's own keys, which are also the parameter names of sweep files."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        config = json.loads(self.parser.dump(self.config, skip_none=False, format="json"))
        config.pop("config", None)  # the config file paths themselves
        for logger in trainer.loggers:
            logger.log_hyperparams(flatten(config))


class StepBudgetProgressBar(RichProgressBar):
    """Lightning's rich bar, without "Epoch 3/-2" when training is bounded by steps (max_epochs -1)."""

    def _get_train_description(self, current_epoch: int) -> str:
        if self.trainer.max_epochs not in (None, -1):
            return super()._get_train_description(current_epoch)
        return f"Epoch {current_epoch} (step budget {self.trainer.max_steps})"


_LOG_NOISE = ("Tip: For seamless", "Setting accelerator to CPU")
"""Log lines no user acts on, dropped: Lightning's advertising tips (litlogger, litmodels) and
DeepSpeed's "unable to detect" a GPU on import (Lightning's "GPU available" line says it)."""
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero", "DeepSpeed"):
    logging.getLogger(_name).addFilter(lambda record: not any(text in record.getMessage() for text in _LOG_NOISE))
# Lightning's own use of a torch API deprecated by the pinned torch: only a Lightning upgrade fixes it.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


class SuggestingParser(ErrorsThatHelp, LightningArgumentParser):
    """LightningCLI's parser whose errors suggest the option meant (``ErrorsThatHelp``)."""


class Compare2ScoreCLI(LightningCLI):
    """LightningCLI with the project's callbacks; each run writes into a folder of its own
    (``run_folders``), while the config it saves and logs is the one given.

    Args:
        other_options: Options a mistyped option may also have meant (the calling command's own).
    """

    def __init__(self, *args, other_options: tuple[str, ...] = (), **kwargs) -> None:
        self.other_options, self.run_folder = tuple(other_options), None
        try:
            super().__init__(*args, parser_class=kwargs.pop("parser_class", SuggestingParser), **kwargs)
        except BaseException:
            if self.run_folder is not None:
                self.run_folder.discard_unstarted()
            raise

    @property
    def run_dir(self) -> Path:
        """This run's folder."""
        return self.run_folder.path

    def init_parser(self, **kwargs) -> SuggestingParser:  # the main parser and each subcommand's
        parser = super().init_parser(**kwargs)
        parser.other_options = self.other_options
        return parser

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        self.given_config = config.clone()
        self.run_folder = place(config, self.subcommand)

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        self.trainer.callbacks.append(RunStart(self.run_folder))
        use_line_progress(self.trainer)  # a log file or pipe gets a line per N steps, not a redrawn bar
        for callback in self.trainer.callbacks:
            if type(callback) is RichProgressBar:  # Lightning's default bar: same state, better label
                callback.__class__ = StepBudgetProgressBar
            if isinstance(callback, LoggedConfigCallback):
                callback.config = self.given_config  # rerunning it makes a new run, not a nested one

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(SoftComparisonEvaluator, "evaluator")
        parser.add_lightning_class_args(HFExport, "export")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.filename": "step{step:06d}",
                             "checkpoint.auto_insert_metric_name": False})

    def parse_arguments(self, parser, args) -> None:
        """Parse, then check a ``--ckpt_path`` before Lightning reads it: a file that is not a
        checkpoint fails in one line, before anything is built."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and str(ckpt_path) not in LIGHTNING_KEYWORDS:
            check_checkpoint_file(ckpt_path, "--ckpt_path", allow_folder=True)

    def instantiate_trainer(self, **kwargs):
        trainer = super().instantiate_trainer(**kwargs)
        use_atomic_checkpoints(trainer.strategy)  # last.ckpt is never left half-written
        add_csv_logger(trainer)  # what `report` and the sweep runner read
        return trainer

    def connect_data(self) -> None:
        """Hand the model to the data module as its encoder. Nothing is built here: the data module
        reads ``encode_train`` only when Lightning asks for a loader, after building the model inside
        the strategy's context (``configure_model``: DeepSpeed ZeRO-3 partitions it as it is made)."""
        self.datamodule.connect(self.model)

    before_fit = before_validate = before_test = before_predict = connect_data


def run_lightning_cli(args: list[str], other_options: tuple[str, ...] = ()) -> Compare2ScoreCLI:
    """Run LightningCLI on ``args``; ``other_options`` are the calling command's own options, which a
    mistyped option may also have meant."""
    # Without this, command-line overrides do not reach ${...} interpolations in configs.
    jsonargparse.set_parsing_settings(omegaconf_absolute_to_relative_paths=True)
    bound_config_loaders()  # a YAML alias bomb in --config fails in a second, not after minutes
    with warnings.catch_warnings():
        # main() passes sys.argv[1:] itself (or a test's list): giving both is this design, not a mistake
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return Compare2ScoreCLI(
            Compare2ScoreModule,
            ComparisonDataModule,
            args=replacing_lists(args, REPLACED_LISTS),
            parser_kwargs={"parser_mode": "omegaconf+", "prog": "python -m c2s_lightning"},
            save_config_callback=LoggedConfigCallback,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"default_root_dir": "outputs",
                              "logger": {"class_path": "c2s_lightning.training.loggers.WandbLogger"}},
            seed_everything_default=0,
            other_options=other_options,
        )
