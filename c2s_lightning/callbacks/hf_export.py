"""``HFExport``: write the trained model as a Hugging Face folder when fitting ends."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from c2s_lightning.models.export import export_pretrained


class HFExport(L.Callback):
    """Exports the model at the end of ``fit`` for ``score``, ``anchors build`` and ``evaluate``.

    Args:
        dirpath: Output folder; default ``<trainer.default_root_dir>/export``.
        merge_lora: Fold LoRA adapters into the weights (True) or write the adapter alone.
        enabled: Set False to skip the export.
    """

    def __init__(self, dirpath: str | None = None, merge_lora: bool = True, enabled: bool = True):
        super().__init__()
        self.dirpath, self.merge_lora, self.enabled = dirpath, merge_lora, enabled

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled or trainer.fast_dev_run:
            return
        out = Path(self.dirpath or Path(trainer.default_root_dir) / "export")
        if trainer.is_global_zero:
            export_pretrained(pl_module.backbone, out_dir=out, merge_lora=self.merge_lora)
            rank_zero_info(f"exported the model to {out}")
        trainer.strategy.barrier()
