"""The comparison protocol of the model being trained: its backbone and what the data feeds it.

One function, so the evaluator, the export and the checkpoints all record the same protocol.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from c2s_lightning.models.protocol import ComparisonProtocol, image_preprocessing


def run_protocol(trainer: L.Trainer, pl_module: L.LightningModule) -> ComparisonProtocol:
    """The protocol of ``pl_module``'s backbone fed by ``trainer.datamodule`` (no fingerprint yet)."""
    datamodule = trainer.datamodule
    return ComparisonProtocol.for_backbone(
        pl_module.backbone, image_preprocessing(datamodule.pad_to_square), training_datasets(datamodule))


def training_datasets(datamodule: Any) -> list[dict[str, Any]]:
    """Name, label, root, split and options of every dataset the data module trains on."""
    return [{"name": s.name, "label": s.key, "root": str(s.root), "split": s.split, "split_index": s.split_index,
             "split_options": dict(s.split_options), "reader_options": dict(s.reader_options)}
            for s in datamodule.specs if s.trains]
