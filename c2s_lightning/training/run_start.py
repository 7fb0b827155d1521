"""``RunStart``: tells the run folder when the run's own loop begins (``run_folders.RunFolder``)."""

from __future__ import annotations

import lightning as L

from c2s_lightning.training.run_folders import RunFolder


class RunStart(L.Callback):
    """Marks the run folder started when training begins (a fit then becomes ``<root>/latest``),
    when a fit ends without a step to train (resumed at its budget: it still exports), or when an
    evaluation loop begins. Until then a failing run leaves ``latest`` alone and its folder may be
    removed (``RunFolder.discard_unstarted``).

    Args:
        folder: The run's folder, as ``run_folders.place`` made it.
    """

    def __init__(self, folder: RunFolder):
        super().__init__()
        self.folder = folder

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.folder.start()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.folder.start()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:  # a fit's check before training is not its start
            self.folder.start()

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.folder.start()

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.folder.start()
