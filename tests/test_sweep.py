"""The offline sweep runner: expansion, macros, dry runs, resuming, and every shipped sweep file."""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from c2s_lightning.commands import sweep as sweep_cmd
from c2s_lightning.sweep import runner as sweep_runner
from c2s_lightning.sweep.plan import (
    SweepError, expand, expand_grid, load_sweep, param_key, sample_random, substitute,
)
from c2s_lightning.sweep.state import save_state

REPO = Path(__file__).resolve().parents[1]
SWEEP_FILES = sorted((REPO / "sweeps").rglob("*.yaml"))
# Planned runs of each shipped file (grid: every combination; random: run_cap).
EXPECTED_RUNS = {"beta.yaml": 5, "anchor_selection.yaml": 3, "train_lr_lora.yaml": 8, "paper_splits.yaml": 10}


def write_sweep(path: Path, **sweep) -> Path:
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def test_grid_is_the_cartesian_product_in_file_order():
    runs = expand_grid({"a": {"values": [1, 2]}, "b": {"values": ["x", "y", "z"]}, "c": {"value": 0}})
    assert len(runs) == 6
    assert runs[:4] == [{"a": 1, "b": "x", "c": 0}, {"a": 1, "b": "y", "c": 0},
                        {"a": 1, "b": "z", "c": 0}, {"a": 2, "b": "x", "c": 0}]
    assert expand_grid({"n": {"distribution": "int_uniform", "min": 2, "max": 4}}) == [{"n": 2}, {"n": 3}, {"n": 4}]
    assert [r["q"] for r in expand_grid({"q": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25}})] \
        == [0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(SweepError, match="values"):
        expand_grid({"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-3}})
    with pytest.raises(SweepError, match="1.0e-5"):
        sample_random({"lr": {"distribution": "uniform", "min": "1e-5", "max": 1.0}}, count=1)


def test_grid_count_and_run_cap_take_the_first_runs():
    sweep = {"method": "grid", "parameters": {"a": {"values": [1, 2, 3]}}, "run_cap": 2}
    assert expand(sweep) == [{"a": 1}, {"a": 2}]
    assert expand(sweep, count=1) == [{"a": 1}]


SPACE = {
    "u": {"distribution": "uniform", "min": -1.0, "max": 2.0},
    "lv": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-3},
    "ln": {"distribution": "log_uniform", "min": 0.0, "max": 1.0},
    "i": {"distribution": "int_uniform", "min": 3, "max": 7},
    "q": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 2},
    "c": {"values": ["a", "b"]},
    "k": {"value": "lora"},
}


def test_random_draws_are_seeded_distinct_and_in_range():
    runs = sample_random(SPACE, count=40, seed=3)
    assert len(runs) == 40 and len({param_key(r) for r in runs}) == 40
    assert runs == sample_random(SPACE, count=40, seed=3)
    assert runs != sample_random(SPACE, count=40, seed=4)
    for r in runs:
        assert -1.0 <= r["u"] <= 2.0 and 1e-5 <= r["lv"] <= 1e-3 and 1.0 <= r["ln"] <= math.e
        assert isinstance(r["i"], int) and 3 <= r["i"] <= 7
        assert r["q"] in (0, 2, 4, 6, 8, 10) and r["c"] in ("a", "b") and r["k"] == "lora"
    # log-uniform: about half the draws below the geometric middle, 1e-4
    assert 10 < sum(r["lv"] < 1e-4 for r in runs) < 30


def test_random_needs_a_count_and_stops_at_a_small_space():
    sweep = {"method": "random", "parameters": {"c": {"values": ["a", "b"]}}}
    with pytest.raises(SweepError, match="--count"):
        expand(sweep)
    assert sorted(r["c"] for r in expand(sweep, count=5)) == ["a", "b"]  # only 2 distinct runs exist
    assert len(expand(sweep | {"run_cap": 1})) == 1


def test_bayes_and_bad_files_are_refused(tmp_path):
    with pytest.raises(SweepError, match="server"):
        load_sweep(write_sweep(tmp_path / "b.yaml", method="bayes", parameters={"a": {"values": [1]}}))
    with pytest.raises(SweepError, match="nested"):
        load_sweep(write_sweep(tmp_path / "n.yaml", method="grid", parameters={"model": {"parameters": {}}}))


def test_macros_expand_as_wandb_agent_does():
    params = {"model.lr": 0.001, "flag": True, "off": False}
    cmd = substitute(["${env}", "${interpreter}", "${program}", "-x", "${args}"], params, program="train.py")
    assert cmd == ["/usr/bin/env", sys.executable, "train.py", "-x", "--model.lr=0.001", "--flag=True", "--off=False"]
    assert substitute(["${args_no_hyphens}"], params) == ["model.lr=0.001", "flag=True", "off=False"]
    assert substitute(["${args_no_boolean_flags}"], params) == ["--model.lr=0.001", "--flag"]
    assert json.loads(substitute(["${args_json}"], params)[0]) == params
    assert substitute(["${args_json_file}"], params, json_file="p.json") == ["p.json"]
    with pytest.raises(SweepError, match="unknown"):
        substitute(["${nope}"], params)


def test_project_commands_get_their_own_logger_folder(tmp_path):
    ours = write_sweep(tmp_path / "ours.yaml", method="grid", parameters={"evaluator.beta": {"values": [1, 2]},
                                                                         "export.dirpath": {"value": "keep"}},
                       command=["${interpreter}", "-m", "c2s_lightning", "evaluate", "${args}"])
    runs = sweep_cmd.plan_sweep(ours, tmp_path / "out")
    folder = runs[1].folder
    assert runs[1].command[4:] == ["--evaluator.beta=2", "--export.dirpath=keep",
                                   "--trainer.logger.init_args.save_dir", str(folder),
                                   "--trainer.logger.init_args.name", runs[1].name,
                                   "--trainer.default_root_dir", str(folder),
                                   "--checkpoint.dirpath", str(folder / "checkpoints")]  # export.dirpath: given
    assert runs[1].folder.parent == tmp_path / "out" and runs[0].name != runs[1].name
    other = write_sweep(tmp_path / "other.yaml", method="grid", parameters={"a": {"values": [1]}},
                        command=["${interpreter}", "-m", "c2s_lightning", "data", "${args}"])
    assert sweep_cmd.plan_sweep(other, tmp_path / "out")[0].command == [sys.executable, "-m", "c2s_lightning",
                                                                         "data", "--a=1"]


# Appends its parameters to marker.txt; fails while fail.flag exists and x == 2.
SCRIPT = """import json, os, pathlib, sys
p = json.loads(sys.argv[1]); d = pathlib.Path(sys.argv[2])
with open(d / 'marker.txt', 'a') as f: f.write(f"{p['x']} {os.environ.get('WANDB_MODE')}\\n")
print('hello from', p['x'])
sys.exit(3 if p['x'] == 2 and (d / 'fail.flag').exists() else 0)
"""


def marker_sweep(tmp_path: Path) -> Path:
    return write_sweep(tmp_path / "fake.yaml", method="grid", metric={"name": "m", "goal": "maximize"},
                       parameters={"x": {"values": [1, 2, 3]}},
                       command=["${interpreter}", "-c", SCRIPT, "${args_json}", str(tmp_path)])


def bash_words(line: str) -> list[str]:
    """The arguments bash makes of ``line``."""
    out = subprocess.run(["bash", "-c", "printf '%s\\0' " + line], capture_output=True, check=True).stdout
    return out.decode().split("\0")[:-1]


def test_dry_run_prints_each_command_and_runs_nothing(tmp_path, capsys):
    sweep_cmd.main([str(marker_sweep(tmp_path)), "--dry-run", "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    planned = sweep_cmd.plan_sweep(tmp_path / "fake.yaml", tmp_path / "out")
    assert [bash_words(line) for line in lines] == [run.command for run in planned]  # exact, runnable
    assert [json.loads(bash_words(line)[3])["x"] for line in lines] == [1, 2, 3]
    assert not (tmp_path / "marker.txt").exists() and not (tmp_path / "out").exists()


def test_rerun_skips_finished_runs_and_retries_failed_ones(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    file, out = marker_sweep(tmp_path), tmp_path / "out"
    (tmp_path / "fail.flag").touch()
    with pytest.raises(SystemExit) as exit_info:
        sweep_cmd.main([str(file), "--out", str(out)])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    printed = captured.out
    assert "2 finished, 1 failed, 0 skipped" in printed and "exit 3" in printed
    assert "no best run: the sweep's metric m is not a validation metric" in printed
    progress = [line for line in captured.err.splitlines() if line.startswith("sweep: run")]
    assert [line.split(",")[0] for line in progress] == [f"sweep: run {k} of 3" for k in (1, 2, 3)]
    assert progress[0].endswith("ETA unknown") and "ETA 0:00:" in progress[1]
    assert (tmp_path / "marker.txt").read_text().splitlines() == ["1 offline", "2 offline", "3 offline"]
    state = json.loads((out / "sweep_state.json").read_text())["runs"]
    assert sorted(r["status"] for r in state.values()) == ["failed", "finished", "finished"]
    failed = next(r for r in state.values() if r["status"] == "failed")
    assert "hello from 2" in (Path(failed["folder"]) / "output.log").read_text()
    for record in state.values():  # finished or failed, the log got its final name
        assert sorted(p.name for p in Path(record["folder"]).glob("output.log*")) == ["output.log"]
    assert json.loads((Path(failed["folder"]) / "params.json").read_text()) == {"x": 2}

    (tmp_path / "fail.flag").unlink()
    sweep_cmd.main([str(file), "--out", str(out)])  # no SystemExit: nothing failed
    captured = capsys.readouterr()
    assert "1 finished, 0 failed, 2 skipped" in captured.out
    assert "sweep: run 1 of 1, elapsed" in captured.err  # only the failed run is run again
    assert (tmp_path / "marker.txt").read_text().splitlines()[3:] == ["2 offline"]  # only the failed one reran
    assert {r["status"] for r in json.loads((out / "sweep_state.json").read_text())["runs"].values()} == {"finished"}


def test_best_run_follows_the_metric_goal_on_validation_only(tmp_path, monkeypatch):
    file, out = marker_sweep(tmp_path), tmp_path / "out"
    runs = sweep_cmd.plan_sweep(file, out)
    out.mkdir()
    save_state(out, {"runs": {
        r.key: {"status": "finished", "folder": str(r.folder), "command_key": r.command_key} for r in runs[:2]}})
    values = {runs[0].folder: 0.5, runs[1].folder: 0.9, runs[2].folder: 5.0}  # the third never finished
    monkeypatch.setattr(sweep_runner, "read_metrics", lambda folder: {"val/m": values[Path(folder)]})
    assert sweep_runner.best_summary(runs, out, {"name": "val/m", "goal": "maximize"}) == \
        f"best val/m = 0.9: {runs[1].name} x=2"
    assert sweep_runner.best_summary(runs, out, {"name": "val/m", "goal": "minimize"}) == \
        f"best val/m = 0.5: {runs[0].name} x=1"
    assert sweep_runner.best_summary(runs, out, {"name": "val/other"}) == "no best run: no finished run logged val/other"
    # never selected on test: a line says why, whatever the values
    assert sweep_runner.best_summary(runs, out, {"name": "test/mean/srcc", "goal": "maximize"}).startswith(
        "no best run: the sweep's metric test/mean/srcc is not a validation metric")


def test_progress_counts_the_runs_to_run_and_estimates_from_those_done():
    assert sweep_runner.progress(1, 5, 0.4, []) == "sweep: run 1 of 5, elapsed 0:00:00, ETA unknown"
    # 2 runs took 60 s and 40 s: 3 left (this one included) at 50 s each
    assert sweep_runner.progress(3, 5, 125.0, [60.0, 40.0]) == "sweep: run 3 of 5, elapsed 0:02:05, ETA 0:02:30"
    assert sweep_runner.progress(2, 2, 3725.0, [4000.0]) == "sweep: run 2 of 2, elapsed 1:02:05, ETA 1:06:40"


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_shipped_sweep_plans_with_dry_run(path, capsys, tmp_path):
    spec = yaml.safe_load(path.read_text())
    assert {"program", "method", "metric", "parameters", "command"} <= set(spec)
    assert path.read_text().startswith("#"), "a sweep file opens with a comment: launch and what it reproduces"
    sweep_cmd.main([str(path), "--dry-run", "--out", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == EXPECTED_RUNS.get(path.name, len(lines)) and lines
    for line in lines:
        args = shlex.split(line)
        assert args[args.index("-m") + 1] == "c2s_lightning" and "--trainer.logger.init_args.save_dir" in args
        assert all(any(a.startswith(f"--{name}=") for a in args) for name in spec["parameters"])
    assert len(set(lines)) == len(lines)


def test_shipped_sweeps_are_found():
    assert {p.name for p in SWEEP_FILES} >= set(EXPECTED_RUNS)
