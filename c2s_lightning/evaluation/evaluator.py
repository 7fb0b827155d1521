"""``SoftComparisonEvaluator``: scores held-out images against anchors and logs SRCC/PLCC.

Evaluation is a callback, not part of the model: the module only exposes ``comparator``. Keys name
the part scored, ``<eval_part>/<dataset>/<metric>``, whichever loop runs it (docs/paper.md).
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_info

from c2s_lightning.cache.wiring import cache_counts, cache_protocol, cached_comparator
from c2s_lightning.data.mix import PARTS
from c2s_lightning.evaluation.correlation_metrics import iqa_metric_collection
from c2s_lightning.evaluation.run_protocol import run_protocol
from c2s_lightning.evaluation.scatter import scatter_png
from c2s_lightning.models.fingerprint import live_fingerprint
from c2s_lightning.scoring.bank import AnchorBank
from c2s_lightning.scoring.image_feed import ImageMemo
from c2s_lightning.scoring.live import live_scorer, training_pipeline
from c2s_lightning.scoring.scorer import Compare2Scorer
from c2s_lightning.scoring.shards import merge_strided, padded_shard

log = logging.getLogger(__name__)


class SoftComparisonEvaluator(L.Callback):
    """Anchor-based soft-comparison evaluation at validation end and at test.

    Args:
        anchor_dataset: Label of the datamodule dataset that supplies anchors (default: the first one trained on).
        anchor_part: Part of its split the anchors come from (``train``, the paper's choice).
        alpha: Number of equal-width MOS intervals.
        beta: Anchors per interval.
        rule: ``min_variance`` (paper), ``max_variance`` or ``random``.
        anchor_seed: Seed of the ``random`` rule.
        matrix: ``probability`` (soft comparison) or ``count`` (ablation).
        temperature: Softmax temperature of the soft comparison.
        link: ``normal`` or ``logistic`` MAP link.
        readoff: ``raw`` or ``minmax``.
        eval_part: Part of each dataset's split to score (``test`` by default); also the prefix
            of the logged keys (``test/<dataset>/srcc``), in the validation loop too.
        max_images: Score at most this many images per dataset (a seeded subset) for quick checks.
        batch_size: Image pairs per forward pass.
        before_training: Also evaluate once before the first training step (step 0).
        plots: Write a prediction-vs-MOS scatter PNG per dataset (and log it to W&B).
        cache_dir: Comparison cache folder (``cache/store.py``); None (the default in ``fit``): off.
            ``evaluate`` sets it (default the user cache folder). Entries are keyed by a fingerprint
            of the live weights, computed once per evaluation, so a training step never reuses an
            entry of the weights before it. Logs ``<eval_part>/cache/computed`` and ``<eval_part>/cache/reused``.
        workers: Threads loading the next images while the model compares (0: none).
        image_memo_mb: Decoded evaluation images kept in memory between validations of a run, in
            MiB of pixels (0: none); images beyond it are decoded again at every validation.
        image_cache_mb: Former name of ``image_memo_mb`` (still accepted; wins when given).
    """

    def __init__(self, anchor_dataset: str | None = None, anchor_part: str = "train", alpha: int = 5,
                 beta: int = 1, rule: str = "min_variance", anchor_seed: int = 0, matrix: str = "probability",
                 temperature: float = 1.0, link: str = "normal", readoff: str = "raw", eval_part: str = "test",
                 max_images: int | None = None, batch_size: int = 32, before_training: bool = False,
                 plots: bool = True, cache_dir: str | None = None, workers: int = 2,
                 image_memo_mb: float = 2048, image_cache_mb: float | None = None):
        super().__init__()
        if eval_part not in PARTS:
            raise ValueError(f"eval_part must be one of {PARTS}, got {eval_part!r}")
        self.anchor_dataset, self.anchor_part = anchor_dataset, anchor_part
        self.alpha, self.beta, self.rule, self.anchor_seed = alpha, beta, rule, anchor_seed
        self.scorer_options = dict(matrix=matrix, temperature=temperature, link=link, readoff=readoff,
                                   batch_size=batch_size)
        self.eval_part, self.max_images = eval_part, max_images
        self.before_training, self.plots, self.cache_dir = before_training, plots, cache_dir
        image_memo_mb = image_memo_mb if image_cache_mb is None else image_cache_mb
        if workers < 0 or image_memo_mb < 0:
            raise ValueError(f"workers and image_memo_mb must be >= 0, got {workers} and {image_memo_mb}")
        self.workers, self.image_memo_mb = workers, image_memo_mb
        self._memo: ImageMemo | None = None
        self.last_results: dict[str, dict[str, float]] = {}
        self.last_predictions: dict[str, list[dict]] = {}
        """Per dataset label, one ``{"image", "path", "prediction", "mos"}`` row per scored image."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.before_training and trainer.global_step == 0:
            self.evaluate(trainer, pl_module, "val")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.evaluate(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.evaluate(trainer, pl_module, "test")

    def bank(self, datamodule) -> AnchorBank:
        label = self.anchor_dataset or datamodule.default_anchor_dataset()
        records = datamodule.anchor_records(label, self.anchor_part)
        return AnchorBank.from_records(records, dataset=label, split=self.anchor_part, alpha=self.alpha,
                                       beta=self.beta, rule=self.rule, seed=self.anchor_seed)

    def scorer(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Compare2Scorer:
        """A scorer over the model as it is now (``live_scorer``: images load as training loads
        them), through the run's memo of decoded images and, when set, the comparison cache."""
        datamodule, comparator = trainer.datamodule, pl_module.comparator
        pipeline = training_pipeline(comparator, datamodule.image_options())
        if self.cache_dir is not None:
            comparator = live_cached_comparator(comparator, self.cache_dir, trainer, pl_module)
        if self._memo is None or self._memo.pipeline != pipeline:
            self._memo = ImageMemo(pipeline, max_bytes=int(self.image_memo_mb * 2**20))
        return live_scorer(comparator, self.bank(datamodule), datamodule.image_options(), memo=self._memo,
                           workers=self.workers, **self.scorer_options)

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> dict:
        """Score every evaluated dataset, log metrics to every logger, return them."""
        scorer = self.scorer(trainer, pl_module)
        was_training = pl_module.training
        results: dict[str, dict[str, float]] = {}
        # trainer.log_dir is a collective (a broadcast) under DDP: every rank asks, rank 0 plots
        plot_dir = Path(trainer.log_dir or trainer.default_root_dir) / "plots" if self.plots else None
        self.last_predictions = {}
        scorer.anchor_block()  # once, outside the per-image timing
        for label, records in trainer.datamodule.eval_records(self.eval_part).items():
            if self.max_images is not None and len(records) > self.max_images:
                records = random.Random(0).sample(records, self.max_images)
            if len(records) < 3:
                log.warning("%s: only %d %s images; not evaluated", label, len(records), self.eval_part)
                continue
            start = time.perf_counter()
            preds, values = self._score_sharded(scorer, records, trainer, pl_module.device)
            seconds = (time.perf_counter() - start) * trainer.world_size / len(records)
            results[label] = values | {"seconds_per_image": seconds}
            self.last_predictions[label] = [{"image": r.name or r.path.name, "path": str(r.path), "prediction": p,
                                             "mos": r.mos} for r, p in zip(records, preds)]
            if plot_dir is not None and trainer.is_global_zero:
                self._plot(plot_dir, trainer, self.eval_part, label, self.last_predictions[label], results[label])
        pl_module.train(was_training)
        self._log(trainer, pl_module, stage, results, cache_counts(scorer.comparator) or {})
        self.last_results = results
        return results

    def _score_sharded(self, scorer: Compare2Scorer, records: list, trainer: L.Trainer,
                       device: torch.device) -> tuple[list[float], dict[str, float]]:
        """Every image's score and the metrics, identical on all ranks: each rank scores its
        ``padded_shard`` (equal lengths, which ZeRO-3/FSDP need) and feeds only its own images to the
        torchmetrics metrics, which gather them at ``compute``; the scores are gathered for plots."""
        world, rank, n = trainer.world_size, trainer.global_rank, len(records)
        own, shard = padded_shard(n, world, rank)
        scores = scorer.score([records[i].path for i in shard]).to(device)
        metrics = iqa_metric_collection().to(device)
        metrics.update(scores[:len(own)], [records[i].mos for i in own])
        values = {name: value.item() for name, value in metrics.compute().items()}
        parts = [scores]
        if world > 1 and dist.is_available() and dist.is_initialized():
            parts = [torch.empty_like(scores) for _ in range(world)]
            dist.all_gather(parts, scores)
        return merge_strided(parts, n).tolist(), values

    def _log(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str, results: dict,
             cache: dict[str, int]) -> None:
        part = self.eval_part  # the keys name the part scored, not the loop (``stage``) running us
        flat = {f"{part}/{label}/{name}": value for label, row in results.items() for name, value in row.items()}
        names = next(iter(results.values()), {}).keys()  # none without results
        flat |= {f"{part}/mean/{n}": sum(r[n] for r in results.values()) / len(results) for n in names}
        flat |= {f"{part}/cache/{name}": float(count) for name, count in cache.items()}  # this rank's counts
        # pl_module.log is allowed in these hooks (also feeds callback_metrics, so a checkpoint
        # can monitor val/mean/srcc when eval_part is val); torchmetrics has already synced the
        # values, so every rank logs the same numbers without another sync.
        if trainer.validating or trainer.testing:
            pl_module.log_dict(flat, sync_dist=False)
        else:  # before training: straight to the loggers at step 0
            for logger in trainer.loggers:
                logger.log_metrics(flat, step=trainer.global_step)
        rank_zero_info(f"[{stage} step {trainer.global_step}, {part} part] " + "  ".join(
            f"{label}: srcc {row['srcc']:.3f} plcc {row['plcc']:.3f}" for label, row in results.items()))

    def _plot(self, out: Path, trainer: L.Trainer, stage: str, label: str, rows: list[dict], row) -> None:
        preds, mos = [r["prediction"] for r in rows], [r["mos"] for r in rows]
        path = scatter_png(out / f"{stage}_{label}_step{trainer.global_step:06d}.png", preds, mos,
                           title=f"{label} ({stage}, step {trainer.global_step}): "
                                 f"SRCC {row['srcc']:.3f}, PLCC {row['plcc']:.3f}")
        for logger in trainer.loggers:
            if type(logger).__name__.endswith("WandbLogger"):
                import wandb

                logger.experiment.log({f"{stage}/{label}/scatter": wandb.Image(str(path)),
                                       f"{stage}/{label}/predictions": wandb.Table(
                                           columns=["image", "prediction", "mos"],
                                           data=[[r["image"], r["prediction"], r["mos"]] for r in rows]),
                                       "trainer/global_step": trainer.global_step})


def live_cached_comparator(comparator, cache_dir: str, trainer: L.Trainer, pl_module: L.LightningModule):
    """``comparator`` reading and writing the cache under the model fingerprint of the weights as they
    are now (with the backbone's config and processor), or ``comparator`` itself (with a warning) under
    a strategy that shards the weights (DeepSpeed, FSDP), where a rank's state dict does not hold them all."""
    strategy = type(trainer.strategy).__name__.lower()
    if "deepspeed" in strategy or "fsdp" in strategy:
        rank_zero_info(f"evaluator: comparison cache off under {type(trainer.strategy).__name__} (sharded weights)")
        return comparator
    # the run's own protocol (as the export records it): the key names the pipeline the scorer loads with
    protocol = run_protocol(trainer, pl_module).to_dict()
    key = cache_protocol(protocol, precision=trainer.precision)
    fingerprint = live_fingerprint(pl_module, pl_module.backbone, protocol)
    return cached_comparator(comparator, cache_dir, fingerprint, key)
