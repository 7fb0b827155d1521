"""``Compare2ScoreModule``: fine-tunes a vision-language model to answer comparison instructions.

The module orchestrates only (loss, steps, optimisers, logging). The network is built by
``build_backbone``; what scoring needs is exposed as ``comparator``; evaluation lives in a callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning as L
import torch

from c2s_lightning.models.adapters import configure_trainable
from c2s_lightning.models.backbones import Backbone, build_backbone, check_model_name
from c2s_lightning.models.comparator import Comparator
from c2s_lightning.models.fast_comparator import FastComparator
from c2s_lightning.models.encoding import model_inputs
from c2s_lightning.models.hf_versions import enable_checkpointing
from c2s_lightning.models.sharding import shard_blocks


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
        betas: AdamW's moment decay rates. A lower second one (e.g. 0.95, common in LLM
            training) forgets the large gradients of the first steps, spent on the fixed answer
            template, sooner, so the answer word's small gradients move the weights again.
        warmup_ratio: Fraction of the optimisation steps with linear warm-up.
        schedule: ``cosine`` decay to zero after warm-up, or ``constant``.
        gradient_checkpointing: Trade compute for activation memory.
        rating_loss_weight: Weight of an auxiliary single-image rating loss added to the
            comparison loss (0, the default, turns it off). It needs batches with rating
            examples (``ComparisonDataModule(rating_images_per_pair=1 or 2)``) and rating words
            that are single tokens. Not part of Compare2Score: the method starts from a
            pretrained LMM that already sees quality; a random-weight toy model (the quickstart)
            does not, and the per-image signal stands in for that pretraining. Leave it off
            for real backbones.
    """

    def __init__(self, model: str = "tiny-llava", backbone_options: dict[str, Any] | None = None,
                 finetune: str = "full", lora_rank: int = 8, lora_alpha: int = 16, lora_dropout: float = 0.0,
                 lora_target_modules: list[str] | str | None = None, train_vision: bool = False,
                 train_projector: bool = True, lr: float = 2e-5, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), warmup_ratio: float = 0.03, schedule: str = "cosine",
                 gradient_checkpointing: bool = False, rating_loss_weight: float = 0.0):
        super().__init__()
        if rating_loss_weight < 0:
            raise ValueError(f"rating_loss_weight must be >= 0, got {rating_loss_weight}")
        if finetune not in ("full", "lora", "frozen"):
            raise ValueError(f"finetune must be 'full', 'lora' or 'frozen', got {finetune!r}")
        if schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
        if not 0 <= warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}")
        if finetune != "lora" and lora_target_modules is not None:
            raise ValueError("lora_target_modules is set but finetune is not 'lora'")
        check_model_name(model)  # a mistyped name fails here, not after minutes of data reading
        self.save_hyperparameters(logger=False)  # the CLI logs the whole resolved config instead
        self.backbone: Backbone | None = None
        self.net: torch.nn.Module | None = None

    # -- building -------------------------------------------------------------------------
    def configure_model(self) -> None:
        """Build the network once; later calls (Lightning's, the launcher's) find it built."""
        if self.net is None:
            hp = self.hparams
            options = dict(hp.backbone_options or {})
            if hp.rating_loss_weight > 0:
                options.setdefault("rating", True)  # fail at build time if rating words split
            self._hf_zero3 = _hf_zero3_config(self._trainer)  # referenced while transformers builds
            self.backbone = build_backbone(hp.model, **options)
            self.net = configure_trainable(
                self.backbone.model, mode=hp.finetune, lora_rank=hp.lora_rank, lora_alpha=hp.lora_alpha,
                lora_dropout=hp.lora_dropout, lora_target_modules=hp.lora_target_modules,
                train_vision=hp.train_vision, train_projector=hp.train_projector)
            self.backbone.model = self.net
            if self._device_mesh is not None:  # ModelParallelStrategy: FSDP2 over the data-parallel ranks
                shard_blocks(self.net, self._device_mesh["data_parallel"])
            self.net.train()  # builders hand over eval-mode models; Lightning keeps modes as found
            if hp.gradient_checkpointing:
                enable_checkpointing(self.net)

    @property
    def encode_train(self) -> Callable[[list[dict]], dict]:
        """The backbone encoder's ``encode_train``: what ``ComparisonDataModule.connect(module)`` binds.

        A property, not a method, so a loader's collate holds the encoder (a processor, picklable
        for worker processes), never this module and its weights. The model must be built first:
        Lightning calls ``configure_model`` before it asks for any loader.
        """
        if self.backbone is None:
            raise RuntimeError("the model is not built yet: configure_model() comes before the data loaders")
        return self.backbone.encoder.encode_train

    @property
    def image_size(self) -> int | None:
        """The backbone encoder's ``image_size``: the data module decodes images no larger
        (``ImagePreprocessing.for_encoder``). The model must be built first, as for ``encode_train``."""
        if self.backbone is None:
            raise RuntimeError("the model is not built yet: configure_model() comes before the data loaders")
        return self.backbone.encoder.image_size

    @property
    def pad_colour(self) -> tuple[int, int, int] | None:
        """The backbone encoder's ``pad_colour`` (its processor's image mean), for the same reason."""
        return None if self.backbone is None else self.backbone.encoder.pad_colour

    @property
    def comparator(self) -> Comparator:
        """What scoring needs: level logits for (first, second) image pairs."""
        self.configure_model()
        return FastComparator(self.backbone, lockstep=True)  # every rank scores; other families: plain path

    # -- steps ----------------------------------------------------------------------------
    def _answer_loss(self, batch: dict[str, torch.Tensor], word_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-token loss on the answers, and accuracy of the answer word among ``word_ids``."""
        inputs = {k: v for k, v in model_inputs(batch).items() if k not in ("levels", "rating", "part")}
        out = self.net(**inputs)
        positions = batch["answer_positions"] - 1
        rows = torch.arange(positions.numel(), device=positions.device)
        word_logits = out.logits[rows, positions][:, torch.as_tensor(word_ids, device=positions.device)]
        return out.loss, (word_logits.argmax(-1) == batch["levels"]).float().mean()

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        """Comparison loss; in training plus ``rating_loss_weight`` x the rating loss."""
        loss, acc = self._answer_loss(batch, self.backbone.level_token_ids)
        bs, sync, log = batch["levels"].numel(), stage != "train", self._logs_now(stage)
        if log:
            self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=bs, sync_dist=sync)
            self.log(f"{stage}/level_acc", acc, prog_bar=stage != "train", batch_size=bs, sync_dist=sync)
        weight = self.hparams.rating_loss_weight
        if stage != "train":
            return loss
        if (weight > 0) != ("rating" in batch):
            raise ValueError(
                f"rating_loss_weight is {weight} but the batch {'has' if 'rating' in batch else 'has no'} "
                "rating examples: set the datamodule's rating_images_per_pair (1 or 2) together with a "
                "positive rating_loss_weight, or neither")
        if weight == 0:
            return loss
        rating_loss, rating_acc = self._answer_loss(batch["rating"], self.backbone.rating_token_ids)
        total = loss + weight * rating_loss
        if log:
            rating_bs = batch["rating"]["levels"].numel()
            self.log("train/rating_loss", rating_loss, batch_size=rating_bs)
            self.log("train/rating_acc", rating_acc, batch_size=rating_bs)
            self.log("train/total_loss", total, batch_size=bs)
        return total

    def _logs_now(self, stage: str) -> bool:
        """Whether this step calls ``self.log``: always outside training; in training on the first
        step and on those whose metrics reach the loggers (every ``log_every_n_steps``). Lightning
        drops per-step training values logged in between, and each ``self.log`` costs ~0.5-1 ms of
        CPU, 5-10% of a small model's step (``benchmarks/train_step.py``)."""
        if stage != "train" or self._trainer is None:
            return True
        every = self.trainer.log_every_n_steps
        return self.global_step == 0 or (every > 0 and (self.global_step + 1) % every == 0)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        if self._logs_now("train"):
            self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=1)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, batch.get("part", "val"))  # test/loss when the held-out pairs are test images

    # -- optimisation ---------------------------------------------------------------------
    def configure_optimizers(self):
        hp = self.hparams
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            raise ValueError("no trainable parameters: check finetune / train_vision / train_projector")
        optimizer = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay, betas=tuple(hp.betas))
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


def _hf_zero3_config(trainer):
    """transformers' ``HfDeepSpeedConfig`` when the trainer runs DeepSpeed ZeRO-3, else None.

    While such an object is alive, transformers builds models for ZeRO-3 (its weight
    initialisation gathers the partitioned parameters instead of meeting empty tensors).
    """
    config = getattr(getattr(trainer, "strategy", None), "config", None)
    if not isinstance(config, dict) or config.get("zero_optimization", {}).get("stage") != 3:
        return None
    from transformers.integrations import HfDeepSpeedConfig

    return HfDeepSpeedConfig(config)
