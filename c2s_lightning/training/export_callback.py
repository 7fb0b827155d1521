"""``HFExport``: write the trained model, its protocol and its anchor bank when fitting ends."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from c2s_lightning.infra.atomic_files import is_nonempty_folder
from c2s_lightning.evaluation.run_protocol import run_protocol
from c2s_lightning.models.export import export_pretrained
from c2s_lightning.scoring.live import live_anchor_bank

PROTOCOL_KEY = "compare2score_protocol"
"""Key of the protocol dict in Lightning checkpoints (read by ``python -m c2s_lightning export``)."""


class HFExport(L.Callback):
    """Exports the model at the end of ``fit`` as a complete scorer: the Hugging Face folder,
    ``compare2score.json`` (the comparison protocol) and ``anchors.json`` (the evaluator's anchors).

    Args:
        dirpath: Output folder; default ``<run folder>/export``. An existing folder that is not
            empty is refused before training starts, never replaced.
        merge_lora: Fold LoRA adapters into the weights (True) or write the adapter alone.
        enabled: Set False to skip the export.
    """

    def __init__(self, dirpath: str | None = None, merge_lora: bool = True, enabled: bool = True):
        super().__init__()
        self.dirpath, self.merge_lora, self.enabled = dirpath, merge_lora, enabled

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and self.enabled and self.dirpath and is_nonempty_folder(self.dirpath):
            raise FileExistsError(f"export.dirpath {self.dirpath} exists and is not empty; an export is never "
                                  "replaced: choose another folder, or leave export.dirpath unset (each run "
                                  "then exports into its own run folder)")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[PROTOCOL_KEY] = run_protocol(trainer, pl_module).to_dict()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled or trainer.fast_dev_run:
            return
        out = Path(self.dirpath or Path(trainer.default_root_dir) / "export")
        # every rank computes the bank: under sharded strategies a forward pass needs them all
        bank = export_anchor_bank(trainer, pl_module)
        if trainer.is_global_zero:
            export_pretrained(pl_module.backbone, out_dir=out, merge_lora=self.merge_lora,
                              protocol=run_protocol(trainer, pl_module), anchor_bank=bank)
            rank_zero_info(f"exported the model to {out}" + (" with its anchor bank" if bank else ""))
        trainer.strategy.barrier()


def export_anchor_bank(trainer: L.Trainer, pl_module: L.LightningModule):
    """The evaluation callback's anchors with their matrix computed by the model as trained, or None
    without such a callback (found by what it offers: this module imports no evaluation code)."""
    source = next((c for c in trainer.callbacks if callable(getattr(c, "bank", None))
                   and hasattr(c, "scorer_options")), None)
    if source is None:
        return None
    return live_anchor_bank(pl_module.comparator, source.bank(trainer.datamodule), trainer.datamodule.image_options(),
                            **source.scorer_options)
