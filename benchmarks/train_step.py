"""Time training steps: our Lightning ``fit`` vs a bare PyTorch loop, same model, batches and optimiser.

Both train the tiny LLaVA from the same initial weights on the same list of batches, built once
beforehand (so the data path is not measured): Lightning runs ``Compare2ScoreModule`` under a real
``Trainer`` with the project's settings (gradient clipping 1.0, the W&B logger offline every 10
steps, progress bar, checkpointing off); the bare loop runs forward, loss, backward, clipping,
AdamW and the learning-rate schedule on its own copy of the model.

The two are timed in pairs, step by step, in one process: after each Lightning step a callback
runs the bare loop's step on the same batch. On a machine shared with other jobs, separate runs
of each differ by +-20% from load alone; paired steps see the same load. Lightning's time per step
is everything between two bare steps (its loop, hooks, logging, progress bar: whatever it does
between steps counts). Steady state: after ``--warmup`` steps. Both must end with the same weights
(``max_param_diff``). The last line is ``overhead=<lightning s/step / bare s/step>``.

    .venv/bin/python benchmarks/train_step.py --quick                  # the quickstart's 32 pairs per batch
    .venv/bin/python benchmarks/train_step.py --quick --batch-size 8   # shorter steps: fixed costs weigh more
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings

import numpy as np
import torch
from PIL import Image

from c2s_lightning.data import prompts
from c2s_lightning.data.levels import LEVELS
from c2s_lightning.models.encoding import model_inputs
from c2s_lightning.models.module import Compare2ScoreModule, lr_factor

MODULE_OPTIONS = dict(model="tiny-llava", finetune="full", train_vision=True, lr=1e-3, warmup_ratio=0.05)


def make_batches(encoder, count: int, batch_size: int, image_size: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        examples = []
        for _ in range(batch_size):
            level = int(rng.integers(len(LEVELS)))
            images = [Image.fromarray(rng.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8))
                      for _ in range(2)]
            examples.append({"images": images, "prompt": prompts.COMPARISON_PROMPT,
                             "answer": prompts.COMPARISON_ANSWER.format(level=LEVELS[level]), "level": level})
        batch = encoder.encode_train(examples)
        batch["levels"] = torch.tensor([e["level"] for e in examples])
        batches.append(batch)
    return batches


class Batches:
    """The prebuilt batches as one iterable (Lightning reads a bare list as a list of loaders)."""

    def __init__(self, batches: list[dict]):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class BareLoop:
    """The bare PyTorch loop: forward, loss, backward, clipping, AdamW, schedule; one step per call."""

    def __init__(self, steps: int):
        module = Compare2ScoreModule(**MODULE_OPTIONS)
        module.configure_model()
        self.net, hp = module.net, module.hparams
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=hp.lr, weight_decay=hp.weight_decay,
                                           betas=tuple(hp.betas))
        warm = int(hp.warmup_ratio * steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, warm, steps, hp.schedule))
        self.net.train()

    def step(self, batch: dict) -> None:
        inputs = {k: v for k, v in model_inputs(batch).items() if k != "levels"}
        loss = self.net(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()


def paired_run(batches: list[dict], root: str):
    """Lightning ``fit`` over the batches; after each of its steps the bare loop takes its own step
    on the same batch. Returns per-step seconds (Lightning, bare) and both trained networks."""
    import lightning as L

    from c2s_lightning.training.loggers import WandbLogger

    bare = BareLoop(len(batches))

    class Pairing(L.Callback):
        def __init__(self):
            self.lightning, self.bare, self.resumed = [], [], None

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            ended = time.perf_counter()
            if self.resumed is not None:  # everything since the last bare step is Lightning's
                self.lightning.append(ended - self.resumed)
            bare.step(batches[batch_idx])
            self.resumed = time.perf_counter()
            self.bare.append(self.resumed - ended)

    pairing = Pairing()
    module = Compare2ScoreModule(**MODULE_OPTIONS)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=len(batches), gradient_clip_val=1.0,
                        log_every_n_steps=10, logger=WandbLogger(save_dir=root, offline=True, name="bench"),
                        enable_checkpointing=False, enable_model_summary=False, callbacks=[pairing],
                        default_root_dir=root, num_sanity_val_steps=0)
    trainer.fit(module, train_dataloaders=Batches(batches))
    return pairing.lightning, pairing.bare[1:], module.net, bare.net


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 steps, 10 of warm-up")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per batch (32: the quickstart's)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the quickstart uses 1)")
    args = parser.parse_args(argv)
    steps = args.steps or (100 if args.quick else 400)
    warmup = args.warmup or (10 if args.quick else 20)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("WANDB_SILENT", "true")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    encoder = Compare2ScoreModule(**MODULE_OPTIONS)
    encoder.configure_model()
    batches = make_batches(encoder.backbone.encoder, steps, args.batch_size, image_size=32)
    print(f"tiny-llava, {steps} steps of {args.batch_size} pairs, steady state after {warmup}")
    with tempfile.TemporaryDirectory() as root:
        lightning, bare, lightning_net, bare_net = paired_run(batches, root)
    lightning, bare = lightning[warmup:], bare[warmup:]  # step k+1 of each: after the same warm-up
    ratios = sorted(a / b for a, b in zip(lightning, bare))
    print(f"lightning {sum(lightning) / len(lightning) * 1e3:.2f} ms/step, bare {sum(bare) / len(bare) * 1e3:.2f} "
          f"ms/step over {len(bare)} paired steps; median per-step ratio {ratios[len(ratios) // 2]:.3f}")
    diff = max(float((a - b).abs().max()) for a, b in zip(bare_net.parameters(), lightning_net.parameters()))
    print(f"max_param_diff={diff:.2e} (same weights after both: the same work was done)")
    print(f"overhead={sum(lightning) / sum(bare):.3f}")


if __name__ == "__main__":
    main()
