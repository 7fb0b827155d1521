"""A callback for the multi-process tests (``trainer.callbacks`` in a subprocess's config).

Each rank writes ``rank<r>.json`` into ``out`` at the end of training: every training pair it
read (step, epoch, index and the pair's two image paths), the sampler class the loader used,
the loader's final state, the before-training evaluation and the global step; and its final
weights as ``weights<r>.pt``. Needs ``num_workers: 0``, so that
items are read in this process, in the order training consumes them.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch


class RecordPairs(L.Callback):
    def __init__(self, out: str):
        self.out = Path(out)
        self.reads: list[list] = []
        self.before_training: dict | None = None
        self.sampler = ""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loader = trainer.train_dataloader
        self.sampler = type(loader.sampler).__name__
        reads = self.reads

        class Recording(type(loader.dataset)):
            def __getitem__(self, index):
                epoch, i = index
                pair = self.pairs(epoch)[i]
                # global_step when read = the optimiser steps done before this batch
                reads.append([trainer.global_step, epoch, i, str(pair.first.path), str(pair.second.path)])
                return super().__getitem__(index)

        loader.dataset.__class__ = Recording  # no item has been read yet: Lightning fetches lazily

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.before_training is None:  # every on_train_start hook (the evaluator's too) has run
            evaluator = next(c for c in trainer.callbacks if type(c).__name__ == "SoftComparisonEvaluator")
            self.before_training = dict(evaluator.last_results)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        record = {"world_size": trainer.world_size, "sampler": self.sampler, "reads": self.reads,
                  "loader_state": trainer.train_dataloader.state_dict(), "before_training": self.before_training,
                  "global_step": trainer.global_step}
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))
        torch.save(pl_module.state_dict(), self.out / f"weights{trainer.global_rank}.pt")
