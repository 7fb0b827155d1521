"""Training steps through a sharded strategy on 2 CPU processes, against DDP's.

Lightning refuses ``fsdp`` and DeepSpeed without a GPU, but ``ModelParallelStrategy`` hands the
module a device mesh and ``Compare2ScoreModule.configure_model`` shards it with torch's FSDP2
``fully_shard``, which runs on gloo. One 2-process launch fits tiny-qwen2-vl twice from the same
seed, with ``ddp`` and with FSDP2: the evaluator scores images of mixed sizes before training
(under FSDP2 every module forward gathers its parameters collectively, so it finishes only if
both ranks run the same forwards), then three optimizer steps. Losses, scores and final weights
must agree with DDP's.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from gloo_group import run_on_ranks
from mixed_images import write_list
from test_equal_forwards import data_module

STEPS = 3


def _fit(rank: int, world: int, folder: Path) -> dict:
    os.environ.update(LOCAL_RANK=str(rank), NODE_RANK="0", WORLD_SIZE=str(world))  # Lightning joins our group
    import lightning as L
    from lightning.pytorch.strategies import DDPStrategy, ModelParallelStrategy
    from torch.distributed.tensor import DTensor

    from c2s_lightning.evaluation.evaluator import SoftComparisonEvaluator
    from c2s_lightning.models.module import Compare2ScoreModule

    class Losses(L.Callback):
        def __init__(self):
            self.values = []

        def on_train_batch_end(self, trainer, module, outputs, batch, index):
            self.values.append(float(outputs["loss"]))

    runs = {}
    for name, strategy in [("ddp", DDPStrategy()),
                           ("fsdp2", ModelParallelStrategy(data_parallel_size=world, tensor_parallel_size=1))]:
        L.seed_everything(0)
        module = Compare2ScoreModule("tiny-qwen2-vl", lr=1e-3, warmup_ratio=0.0, schedule="constant")
        datamodule = data_module(folder)
        datamodule.connect(module)
        losses = Losses()
        evaluator = SoftComparisonEvaluator(batch_size=10, before_training=True, plots=False, workers=0)
        trainer = L.Trainer(accelerator="cpu", devices=world, strategy=strategy, max_steps=STEPS,
                            limit_val_batches=0, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            default_root_dir=str(folder / name), callbacks=[losses, evaluator])
        trainer.fit(module, datamodule=datamodule)
        params = dict(module.net.named_parameters())
        runs[name] = {
            "losses": losses.values,
            "scores": [row["prediction"] for row in evaluator.last_predictions["mixed"]],
            "sharded": sum(isinstance(p, DTensor) for p in params.values()) / len(params),
            "local": sum((p.to_local() if isinstance(p, DTensor) else p).numel() for p in params.values()),
            "weights": {k: (p.full_tensor() if isinstance(p, DTensor) else p).detach().clone()
                        for k, p in params.items()},
        }
    return runs


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sharded_steps")
    write_list(folder, "train", 40)
    write_list(folder / "mixed", "mixed", 11, seed=1)
    return run_on_ranks(_fit, 2, folder, folder)


def test_the_fsdp2_run_holds_half_of_every_parameter_on_each_rank(ranks):
    for rank in ranks:
        assert rank["ddp"]["sharded"] == 0 and rank["fsdp2"]["sharded"] == 1
        total = sum(w.numel() for w in rank["fsdp2"]["weights"].values())
        assert rank["fsdp2"]["local"] < 0.6 * total  # dim-0 shards: rank 0 holds the odd rows' extra
    assert ranks[0]["fsdp2"]["local"] + ranks[1]["fsdp2"]["local"] == total


def test_sharded_steps_give_ddps_losses_and_weights(ranks):
    for rank in ranks:
        ddp, fsdp2 = rank["ddp"], rank["fsdp2"]
        assert len(fsdp2["losses"]) == STEPS and fsdp2["losses"][-1] < fsdp2["losses"][0]  # it trains
        torch.testing.assert_close(torch.tensor(fsdp2["losses"]), torch.tensor(ddp["losses"]), rtol=0, atol=1e-5)
        assert ddp["weights"].keys() == fsdp2["weights"].keys()
        for key, weight in ddp["weights"].items():
            torch.testing.assert_close(fsdp2["weights"][key], weight, rtol=0, atol=1e-5, msg=key)
            assert torch.equal(weight, ranks[0]["ddp"]["weights"][key])  # DDP's replicas agree


def test_evaluation_under_fsdp2_scores_mixed_sizes_as_ddp(ranks):
    for rank in ranks:
        assert len(rank["fsdp2"]["scores"]) == 11
        torch.testing.assert_close(torch.tensor(rank["fsdp2"]["scores"]), torch.tensor(rank["ddp"]["scores"]),
                                   rtol=0, atol=1e-5)
