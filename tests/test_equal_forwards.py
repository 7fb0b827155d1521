"""Every rank runs the same module forwards, in the same order, on images of mixed sizes.

Under ZeRO-3 or FSDP each module's forward gathers its parameters collectively, so a rank with one
forward more than another waits for ever. One 2-process launch (gloo) trains each backbone family
with Lightning's ``ddp`` (evaluation before training, training steps, the export's anchor bank),
then runs ``score --devices 2`` on the export, recording every forward call of every submodule of
the Hugging Face model on both ranks. The evaluated images mix 64x64 and 128x96 so that rank 0's
shard holds one size and rank 1's both (``mixed_images``): for Qwen2-VL, whose tokens follow the
image size, that takes rank 1 more batches unless the comparator keeps the ranks in lockstep,
which the last test shows by switching lockstep off.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

import pytest

from gloo_group import run_on_ranks
from mixed_images import write_list

FAMILIES = ("tiny-llava", "tiny-qwen2-vl", "tiny-idefics3", "tiny-mplug-owl2")
PHASES = ("evaluate", "train", "export", "score")
EVAL_IMAGES = 11  # shards of 6 and 5 (+1 padding): rank 1's holds all three 128x96 images


def record_forwards(model, phase: list[str], calls: list[tuple[str, str]]) -> None:
    """Append ``(phase[0], module name)`` to ``calls`` at every forward call of every submodule."""
    for name, module in model.named_modules():
        module.register_forward_pre_hook(lambda _module, _args, name=name: calls.append((phase[0], name)))


def data_module(folder: Path):
    from c2s_lightning.data.datamodule import ComparisonDataModule
    from c2s_lightning.data.mix import MixEntry

    return ComparisonDataModule([
        MixEntry(name="list", root=str(folder / "train.csv"), pairs=16, split="random", evaluate=False),
        MixEntry(name="list", root=str(folder / "mixed" / "mixed.csv"), split="none", label="mixed"),
    ], batch_size=4, val_pairs=4)


def _family(rank: int, family: str, folder: Path, out: Path) -> dict:
    import lightning as L

    import c2s_lightning.models.export as export_py
    import c2s_lightning.models.lockstep as lockstep_py
    from c2s_lightning.cli import main
    from c2s_lightning.evaluation.evaluator import SoftComparisonEvaluator
    from c2s_lightning.models.module import Compare2ScoreModule
    from c2s_lightning.training.export_callback import HFExport

    phase, calls = ["build"], []

    class Phases(L.Callback):  # first in the list: its hooks run before the evaluator's and export's
        def on_fit_start(self, trainer, module):
            record_forwards(module.net, phase, calls)

        def on_train_start(self, trainer, module):
            phase[0] = "evaluate"

        def on_train_batch_start(self, trainer, module, batch, index):
            phase[0] = "train"

        def on_fit_end(self, trainer, module):
            phase[0] = "export"

    L.seed_everything(0)
    module = Compare2ScoreModule(family, lr=1e-3, warmup_ratio=0.0, schedule="constant")
    datamodule = data_module(folder)
    datamodule.connect(module)
    evaluator = SoftComparisonEvaluator(batch_size=10, before_training=True, plots=False, workers=0)
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=2, limit_val_batches=0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=str(out),
                        callbacks=[Phases(), evaluator, HFExport(dirpath=str(out / "export"))])
    trainer.fit(module, datamodule=datamodule)

    phase[0] = "unlocked"  # the evaluation again, each rank running only its own forwards
    real = lockstep_py.several_ranks
    lockstep_py.several_ranks = lambda: False
    try:
        evaluator.evaluate(trainer, module, "val")
    finally:
        lockstep_py.several_ranks = real

    load_export = export_py.load_export

    def counted(*args, **kwargs):
        backbone, protocol = load_export(*args, **kwargs)
        record_forwards(backbone.model, phase, calls)
        return backbone, protocol

    phase[0] = "score"
    export_py.load_export = counted
    try:
        code = main(["score", *map(str, sorted((folder / "mixed").glob("*.png"))), "--checkpoint", str(out / "export"), "--out",
                     str(out / "scores.csv"), "--device", "cpu", "--devices", "2", "--no-cache",
                     "--batch-size", "10", "--workers", "0"])
    finally:
        export_py.load_export = load_export
    return {"calls": calls, "score_exit": code}


def _all_families(rank: int, world: int, folder: Path) -> dict:
    os.environ.update(LOCAL_RANK=str(rank), NODE_RANK="0", WORLD_SIZE=str(world))  # Lightning joins our group
    return {family: _family(rank, family, folder, folder / family) for family in FAMILIES}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("equal_forwards")
    write_list(folder, "train", 40)
    write_list(folder / "mixed", "mixed", EVAL_IMAGES, seed=1)
    return folder, run_on_ranks(_all_families, 2, folder, folder)


def sequence(run: dict, family: str, phase: str) -> list[str]:
    return [name for p, name in run[family]["calls"] if p == phase]


@pytest.mark.parametrize("family", FAMILIES)
def test_both_ranks_run_the_same_forwards_in_every_phase(runs, family):
    _, (rank0, rank1) = runs
    for phase in PHASES:
        first, second = sequence(rank0, family, phase), sequence(rank1, family, phase)
        assert first, f"{family}: no forward recorded in {phase}"
        assert first == second, (f"{family} {phase}: rank 0 ran {Counter(first)[''] } model forwards, "
                                 f"rank 1 {Counter(second)['']}")


def test_scoring_runs_the_vision_tower_and_the_language_model_and_writes_every_image(runs):
    folder, (rank0, rank1) = runs
    for family in FAMILIES:
        assert rank0[family]["score_exit"] == rank1[family]["score_exit"] == 0
        names = set(sequence(rank0, family, "score"))
        assert any("vision" in n or "visual" in n for n in names) and any("layers" in n for n in names), family
        rows = list(csv.DictReader((folder / family / "scores.csv").open()))
        assert sorted(Path(r["path"]).name for r in rows) == sorted(p.name for p in (folder / "mixed").glob("*.png"))
        assert all(r["score"] and not r["error"] for r in rows)


def test_without_lockstep_the_size_mix_makes_rank_1_run_more_forwards(runs):
    """The control: the same evaluation, each rank running only the batches its images need."""
    _, (rank0, rank1) = runs
    first, second = sequence(rank0, "tiny-qwen2-vl", "unlocked"), sequence(rank1, "tiny-qwen2-vl", "unlocked")
    assert Counter(second)[""] > Counter(first)[""] > 0  # "" is the model itself: one per forward
    assert sequence(rank0, "tiny-llava", "unlocked") == sequence(rank1, "tiny-llava", "unlocked")  # one size
