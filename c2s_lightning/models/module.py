"""``Compare2ScoreModule``: fine-tunes a vision-language model to answer comparison instructions.

The module orchestrates only (loss, steps, optimisers, logging). The network is built by
``build_backbone``; what scoring needs is exposed as ``comparator``; evaluation lives in a callback.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from c2s_lightning.models.adapters import configure_trainable
from c2s_lightning.models.backbones import Backbone, build_backbone
from c2s_lightning.models.comparator import Comparator
from c2s_lightning.models.encoding import model_inputs



class Compare2ScoreModule(L.LightningModule):
    """Next-token fine-tuning on comparison answers, with full fine-tuning or LoRA.

    Args:
        model: Hugging Face hub id or local folder of an image-text-to-text model, or a tiny
            in-process family (``tiny-llava``, ``tiny-llava-next``, ``tiny-qwen2-vl``, ``tiny-idefics3``).
        backbone_options: Extra keyword arguments of ``build_backbone`` (e.g. ``dtype``,
            ``attn_implementation``, ``add_level_tokens``, tiny sizes such as ``image_size``).
        finetune: ``full`` (every parameter of the language model), ``lora`` (peft adapters), or
            ``frozen`` (nothing but what ``train_vision``/``train_projector`` open).
        lora_rank: LoRA rank.
        lora_alpha: LoRA scaling numerator.
        lora_dropout: Dropout on the LoRA path.
        lora_target_modules: Module names or a regex for LoRA; default: the language model's
            attention projections.
        train_vision: Also train the vision tower.
        train_projector: Also train the vision-to-language projector.
        lr: Peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        warmup_ratio: Fraction of the optimisation steps with linear warm-up.
        schedule: ``cosine`` decay to zero after warm-up, or ``constant``.
        gradient_checkpointing: Trade compute for activation memory.
    """

    def __init__(
        self,
        model: str = "tiny-llava",
        backbone_options: dict[str, Any] | None = None,
        finetune: str = "full",
        lora_rank: int = 8,
        lora_alpha: int = 16,
        lora_dropout: float = 0.0,
        lora_target_modules: list[str] | str | None = None,
        train_vision: bool = False,
        train_projector: bool = True,
        lr: float = 2e-5,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.03,
        schedule: str = "cosine",
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        if finetune not in ("full", "lora", "frozen"):
            raise ValueError(f"finetune must be 'full', 'lora' or 'frozen', got {finetune!r}")
        if schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
        if not 0 <= warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}")
        if finetune != "lora" and lora_target_modules is not None:
            raise ValueError("lora_target_modules is set but finetune is not 'lora'")
        self.save_hyperparameters()
        self.backbone: Backbone | None = None
        self.net: torch.nn.Module | None = None

    # -- building -------------------------------------------------------------------------
    def configure_model(self) -> None:
        """Build the network once (inside the strategy's init context) and hand the encoder to the data."""
        if self.net is None:
            hp = self.hparams
            self.backbone = build_backbone(hp.model, **(hp.backbone_options or {}))
            self.net = configure_trainable(
                self.backbone.model, mode=hp.finetune, lora_rank=hp.lora_rank, lora_alpha=hp.lora_alpha,
                lora_dropout=hp.lora_dropout, lora_target_modules=hp.lora_target_modules,
                train_vision=hp.train_vision, train_projector=hp.train_projector)
            self.backbone.model = self.net
            self.net.train()  # builders hand over eval-mode models; Lightning keeps modes as found
            if hp.gradient_checkpointing:
                self.net.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and hasattr(datamodule, "connect"):
            datamodule.connect(self.backbone.encoder)

    @property
    def comparator(self) -> Comparator:
        """What scoring needs: level logits for (first, second) image pairs."""
        self.configure_model()
        return Comparator(self.backbone)

    def export(self, out_dir, merge_lora: bool = True):
        """Write a Hugging Face folder that ``load_backbone``/``from_pretrained`` reads (safetensors)."""
        from c2s_lightning.models.export import export_pretrained

        self.configure_model()
        return export_pretrained(self.backbone, out_dir=out_dir, merge_lora=merge_lora)

    # -- steps ----------------------------------------------------------------------------
    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        inputs = {k: v for k, v in model_inputs(batch).items() if k != "levels"}
        out = self.net(**inputs)
        positions = batch["answer_positions"] - 1
        rows = torch.arange(positions.numel(), device=positions.device)
        level_ids = torch.as_tensor(self.backbone.level_token_ids, device=positions.device)
        level_logits = out.logits[rows, positions][:, level_ids]
        acc = (level_logits.argmax(-1) == batch["levels"]).float().mean()
        bs = positions.numel()
        self.log(f"{stage}/loss", out.loss, prog_bar=True, batch_size=bs, sync_dist=stage != "train")
        self.log(f"{stage}/level_acc", acc, prog_bar=stage != "train", batch_size=bs, sync_dist=stage != "train")
        return out.loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=1)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    # -- optimisation ---------------------------------------------------------------------
    def configure_optimizers(self):
        hp = self.hparams
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            raise ValueError("no trainable parameters: check finetune / train_vision / train_projector")
        optimizer = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(hp.warmup_ratio * total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, warmup, total, hp.schedule))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """Linear warm-up over ``warmup`` steps, then constant or cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))
