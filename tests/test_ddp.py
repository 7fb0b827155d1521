"""Training under DDP: 2 CPU processes (Lightning's ``ddp`` strategy, gloo) on the quickstart config.

Two subprocess runs serve every test here: an uninterrupted one (7 steps: epoch 0 whole, two
steps of epoch 1, pairs resampled per epoch, evaluation before training and at steps 3 and 6 with
plots on), and one resumed from its checkpoint at step 6, one step into epoch 1. ``ddp`` starts rank 1 by re-running the
command line, so it cannot run inside pytest itself.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from c2s_lightning.cli import main
from c2s_lightning.data.datamodule import ComparisonDataModule
from c2s_lightning.data.mix import MixEntry
from c2s_lightning.data.synth import write_synthetic_kadid

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "experiments" / "quickstart.yaml")
PAIRS, BATCH, WORLD = 80, 8, 2  # 40 pairs, 5 steps per epoch on each rank, no padding
STEPS, CKPT = 7, 6
DATASET = {"name": "kadid10k", "pairs": PAIRS, "pairs_per_image": None, "split": "random",
           "synthesize": False, "synth_options": {}, "split_options": {"test_refs": ["I04", "I05", "I06", "I07", "I08"]}}


def override(out: Path, root: Path, **trainer) -> Path:
    """The quickstart as written (rating loss, balanced levels, augmentation), small and in ``out``."""
    cfg = {
        "trainer": {"default_root_dir": str(out), "max_steps": STEPS, "val_check_interval": 3,
                    "log_every_n_steps": 1, "enable_progress_bar": False,
                    "logger": {"class_path": "c2s_lightning.training.loggers.WandbLogger",
                               "init_args": {"save_dir": str(out), "name": "ddp"}},
                    "callbacks": [{"class_path": "ddp_probe.RecordPairs", "init_args": {"out": str(out / "probe")}}],
                    **trainer},
        "data": {"datasets": [DATASET | {"root": str(root)}], "batch_size": BATCH, "val_pairs": 8,
                 "num_workers": 0, "resample_every_epoch": True},
        "checkpoint": {"dirpath": str(out / "checkpoints"), "every_n_train_steps": CKPT, "save_top_k": -1},
        "evaluator": {"max_images": 10, "before_training": True},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "override.yaml").write_text(yaml.safe_dump(cfg))
    return out / "override.yaml"


def fit_ddp(config: Path, *extra: str) -> None:
    from launcher_env import without_launcher_env  # an inherited LOCAL_RANK would stop rank 1 from being spawned

    env = dict(without_launcher_env(os.environ), OMP_NUM_THREADS="1",
               WANDB_MODE="offline", PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "c2s_lightning", "fit", "--config", QUICKSTART, "--config", str(config),
               "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu", "--trainer.devices", str(WORLD), *extra]
    # its own session, so that a hang (a collective some rank never reaches) kills rank 1 too
    run = subprocess.Popen(command, env=env, cwd=config.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, start_new_session=True)
    try:
        output, _ = run.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        output, _ = run.communicate()
        pytest.fail("the 2-process run hung (a collective not reached by every rank?):\n" + output[-5000:])
    assert run.returncode == 0, output[-8000:]


def probes(out: Path) -> list[dict]:
    return [json.loads((out / "probe" / f"rank{r}.json").read_text()) for r in range(WORLD)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    root = write_synthetic_kadid(base / "kadid", size=32)
    straight, resumed = base / "straight", base / "resumed"
    fit_ddp(override(straight, root))
    ckpt = straight / "checkpoints" / f"step{CKPT:06d}.ckpt"
    fit_ddp(override(resumed, root, logger=False), "--ckpt_path", str(ckpt), "--export.enabled", "false")
    return {"root": root, "straight": straight, "resumed": resumed, "ckpt": ckpt}


def test_ranks_read_disjoint_shares_covering_each_epoch_and_a_new_draw_next_epoch(runs):
    ranks = probes(runs["straight"])
    assert [r["world_size"] for r in ranks] == [WORLD, WORLD]
    assert [r["sampler"] for r in ranks] == ["EpochSampler", "EpochSampler"]  # not Lightning's wrapper
    reads = [[tuple(x) for x in r["reads"]] for r in ranks]
    assert [len(r) for r in reads] == [STEPS * BATCH] * WORLD  # the same number of steps on both ranks
    epoch0 = [{i for _, e, i, *_ in r if e == 0} for r in reads]
    assert not epoch0[0] & epoch0[1] and epoch0[0] | epoch0[1] == set(range(PAIRS))
    # the pairs themselves: exactly the epoch's draw, computed here in one process
    dm = ComparisonDataModule([MixEntry(**DATASET | {"root": str(runs["root"])})], batch_size=BATCH,
                              val_pairs=8, resample_every_epoch=True, balance_levels=True)
    drawn = collections.Counter((str(p.first.path), str(p.second.path)) for p in dm.mix.train_pairs(0))
    assert sum(drawn.values()) == PAIRS
    assert collections.Counter(x[3:] for r in reads for x in r if x[1] == 0) == drawn
    # epoch 1 (steps 6 and 7): its own order and pairs, again disjoint between the ranks
    epoch1 = [[x for x in r if x[1] == 1] for r in reads]
    assert [len(e) for e in epoch1] == [2 * BATCH, 2 * BATCH]
    assert not {x[2] for x in epoch1[0]} & {x[2] for x in epoch1[1]}
    assert [x[2] for x in epoch1[0]] != [x[2] for x in reads[0][: 2 * BATCH]]
    assert {x[3:] for e in epoch1 for x in e} - set(drawn)  # pairs epoch 0 did not draw
    assert [r["loader_state"] for r in ranks] == [{"epoch": 1, "consumed": 2 * BATCH, "replicas": WORLD}] * 2


def test_resume_mid_epoch_gives_the_uninterrupted_batches_and_weights(runs):
    saved = torch.load(runs["ckpt"], weights_only=False)["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert saved == [{"epoch": 1, "consumed": BATCH, "replicas": WORLD}]  # one step into epoch 1
    for straight, resumed in zip(probes(runs["straight"]), probes(runs["resumed"])):
        assert [tuple(x) for x in resumed["reads"]] == [tuple(x) for x in straight["reads"] if x[0] == CKPT]
    assert [r["global_step"] for r in probes(runs["resumed"])] == [STEPS] * WORLD
    weights = {(run, rank): torch.load(runs[run] / "probe" / f"weights{rank}.pt")
               for run in ("straight", "resumed") for rank in range(WORLD)}
    a = weights["straight", 0]
    for other in (weights["straight", 1], weights["resumed", 0], weights["resumed", 1]):
        assert other.keys() == a.keys()
        for key, value in a.items():
            torch.testing.assert_close(other[key], value, rtol=0, atol=1e-6, msg=key)


def test_evaluation_plots_and_export_run_on_two_processes_as_on_one(runs, tmp_path):
    straight = runs["straight"]
    plots = sorted(p.name for p in (straight / "plots").glob("*.png"))
    assert plots == [f"test_kadid10k_step{s:06d}.png" for s in (0, 3, 6)]  # rank 0 plotted, no rank hung
    assert (straight / "latest" / "export" / "model.safetensors").is_file()  # in the run folder
    two = probes(straight)
    quality = [{k: v for k, v in r["before_training"]["kadid10k"].items() if k != "seconds_per_image"} for r in two]
    assert quality[0] == quality[1]  # every rank computed its metrics from all the gathered scores
    one = tmp_path / "one"
    main(["fit", "--config", QUICKSTART, "--config", str(override(one, runs["root"], logger=False)),
          "--trainer.max_steps", "1", "--export.enabled", "false"])
    one = json.loads((one / "probe" / "rank0.json").read_text())
    assert one["world_size"] == 1 and one["before_training"].keys() == two[0]["before_training"].keys() == {"kadid10k"}
    for name in ("srcc", "plcc", "krcc", "pairwise_accuracy"):
        assert two[0]["before_training"]["kadid10k"][name] == pytest.approx(
            one["before_training"]["kadid10k"][name], abs=1e-6)
