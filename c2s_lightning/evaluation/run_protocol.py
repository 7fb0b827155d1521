"""The comparison protocol of the model being trained: its backbone and what the data feeds it.

One function, so the evaluator, the export and the checkpoints all record the same protocol.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from c2s_lightning.data.images import ImagePreprocessing
from c2s_lightning.models.protocol import ComparisonProtocol


def run_protocol(trainer: L.Trainer, pl_module: L.LightningModule) -> ComparisonProtocol:
    """The protocol of ``pl_module``'s backbone fed by ``trainer.datamodule`` (no fingerprint yet)."""
    datamodule = trainer.datamodule
    # the pipeline the data module trains with (``ComparisonDataModule.image_pipeline``)
    images = ImagePreprocessing.for_encoder(pl_module.backbone.encoder, **datamodule.image_options())
    return ComparisonProtocol.for_backbone(pl_module.backbone, images.to_dict(), training_datasets(datamodule))


def training_datasets(datamodule: Any) -> list[dict[str, Any]]:
    """Name, label, root, split (with its seed) and options of every dataset the data module trains on."""
    mix = datamodule.mix
    return [{"name": e.name, "label": e.key, "root": str(e.root), "split": e.split, "split_index": e.split_index,
             "seed": mix.seed, "split_options": dict(e.split_options), "reader_options": dict(e.reader_options)}
            for e in mix.entries if e.trains]
