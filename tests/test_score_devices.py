"""``score --devices N`` and its resume: 2 CPU processes write the CSV one process writes, and a
run killed after its first part is completed by a rerun that scores only the missing images."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import c2s_lightning
from c2s_lightning.cli import main
from c2s_lightning.commands import evaluate, score, score_shards

from test_commands import trained  # noqa: F401  (fixture)
from test_cli import QUICKSTART, override, synth  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
N = 7  # two-image parts: one part kept by the "kill", 5 missing, shared 3 + 2 (+1 padding) by 2 ranks


@pytest.fixture
def images(synth):  # noqa: F811
    return sorted((synth / "images").glob("I04_*.png"))[:N]


def read(out: Path) -> list[tuple[str, float]]:
    return [(r["path"], float(r["score"])) for r in csv.DictReader(out.open())]


def killed_run(monkeypatch, images, export: Path, out: Path) -> None:
    """A run that dies while scoring its second part: the first part stays in ``<out>.parts``."""
    monkeypatch.setattr(score_shards, "CHUNK", 2)
    real, calls = score.score_paths, []

    def dies_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(score, "score_paths", dies_second)
    with pytest.raises(SystemExit) as killed:  # Ctrl-C: the CLI exits with 130
        main(["score", *map(str, images), "--checkpoint", str(export), "--out", str(out), "--device", "cpu"])
    assert killed.value.code == 130
    monkeypatch.setattr(score, "score_paths", real)
    assert not out.exists() and len(list(score_shards.parts_folder(out).glob("part-*.csv"))) == 1


def test_a_killed_run_resumes_scoring_only_the_missing_images(trained, images, tmp_path, monkeypatch):  # noqa: F811
    export, out = trained / "export", tmp_path / "scores.csv"
    killed_run(monkeypatch, images, export, out)
    scored = []
    real = score.score_paths
    monkeypatch.setattr(score, "score_paths",
                        lambda scorer, chunk, pad, **kw: scored.extend(chunk) or real(scorer, chunk, pad, **kw))
    assert main(["score", *map(str, images), "--checkpoint", str(export), "--out", str(out), "--device", "cpu"]) == 0
    assert scored == images[2:]  # the first part's two images were not scored again
    rows = read(out)
    assert [p for p, _ in rows] == list(map(str, images))  # every image once, in input order
    api = c2s_lightning.score_images(images, export, device="cpu")  # no parts, no shards
    torch.testing.assert_close(torch.tensor([s for _, s in rows], dtype=api.dtype), api, rtol=0, atol=1e-6)
    assert not score_shards.parts_folder(out).exists()


def test_parts_of_other_inputs_are_refused(trained, images, tmp_path, monkeypatch, capsys):  # noqa: F811
    export, out = trained / "export", tmp_path / "scores.csv"
    killed_run(monkeypatch, images, export, out)
    with pytest.raises(SystemExit) as stop:
        main(["score", *map(str, images[1:]), "--checkpoint", str(export), "--out", str(out), "--device", "cpu"])
    assert stop.value.code == 2
    assert re.search("holds parts of another run.*inputs", capsys.readouterr().err)


def test_an_unusable_out_fails_before_scoring(images, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # the checkpoint does not even exist: --out is checked first
        main(["score", *map(str, images), "--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "folder" in capsys.readouterr().err


def test_evaluate_devices_map_to_the_trainer_ddp_options():
    assert evaluate._ddp_options(None, None) == []
    assert evaluate._ddp_options(1, None) == ["--trainer.devices", "1"]
    assert evaluate._ddp_options(2, None) == ["--trainer.devices", "2", "--trainer.strategy", "ddp"]
    assert evaluate._ddp_options(1, 2) == ["--trainer.devices", "1", "--trainer.num_nodes", "2",
                                           "--trainer.strategy", "ddp"]


def subprocess_env() -> dict:
    """This environment for a ``--devices 2`` command, less what a launcher may have exported into it
    (``LOCAL_RANK`` inherited would make the command take itself for a rank started from outside)."""
    from launcher_env import without_launcher_env

    return {**without_launcher_env(os.environ), "OMP_NUM_THREADS": "1",
            "WANDB_MODE": "offline", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def test_evaluate_on_two_processes_logs_the_metrics_of_one(trained, synth, tmp_path):  # noqa: F811
    common = ["evaluate", "--checkpoint", str(trained / "export"), "--config", QUICKSTART,
              "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"]
    cli = main([*common, "--config", str(override(tmp_path / "one", synth))])
    one = next(c for c in cli.trainer.callbacks if type(c).__name__ == "SoftComparisonEvaluator").last_results
    run = subprocess.run([sys.executable, "-m", "c2s_lightning", *common, "--config",
                          str(override(tmp_path / "two", synth)), "--devices", "2"],
                         env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         start_new_session=True)
    assert run.returncode == 0, run.stderr[-5000:]
    assert "Starting with 2 processes" in run.stdout + run.stderr
    for name in ("srcc", "plcc"):  # rank 0's table of logged metrics
        logged = re.search(rf"test/kadid10k/{name}[\s│|]+([-\d.e]+)", run.stdout)
        assert logged and float(logged.group(1)) == pytest.approx(one["kadid10k"][name], abs=1e-6)


def test_two_processes_finish_a_killed_run_as_one_process_scores_it(trained, images, tmp_path,  # noqa: F811
                                                                    monkeypatch):
    export = trained / "export"
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert main(["score", *map(str, images), "--checkpoint", str(export), "--out", str(one), "--device", "cpu"]) == 0
    killed_run(monkeypatch, images, export, two)
    env = subprocess_env()
    command = [sys.executable, "-m", "c2s_lightning", "score", *map(str, images), "--checkpoint", str(export),
               "--out", str(two), "--device", "cpu", "--devices", "2"]
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         start_new_session=True)
    assert run.returncode == 0, run.stderr[-5000:]
    assert "Starting with 2 processes" in run.stdout + run.stderr
    ones, twos = read(one), read(two)
    assert [p for p, _ in twos] == [p for p, _ in ones] == list(map(str, images))
    for (_, a), (_, b) in zip(ones, twos):
        assert b == pytest.approx(a, abs=1.01e-6)  # printed with 6 decimals
    assert not score_shards.parts_folder(two).exists()
