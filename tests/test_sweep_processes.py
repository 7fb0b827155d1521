"""The sweep runner leaves no orphans and reuses nothing stale: children die with the runner (SIGTERM
or SIGKILL), a live run is never started twice, a dead one is retried, a changed command or config
reruns the runs, and a corrupt state file or sweep file is named in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from c2s_lightning.cli import main as cli_main
from c2s_lightning.commands import sweep as sweep_cmd
from c2s_lightning.sweep.plan import SweepError, load_sweep
from c2s_lightning.sweep.processes import process_start
from c2s_lightning.sweep.state import STATE_FILE, load_state, save_state

REPO = Path(__file__).resolve().parents[1]
# Writes its pid, then sleeps far longer than any test waits.
SLEEPER = "import os, pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text(str(os.getpid())); time.sleep(600)"
# Appends its parameter to marker.txt (the config file named after it is only there to be hashed).
MARKER = "import json, pathlib, sys; open(pathlib.Path(sys.argv[2]) / 'marker.txt', 'a').write(sys.argv[1] + '\\n')"


def write_sweep(path: Path, command: list[str], values=(1,)) -> Path:
    path.write_text(yaml.safe_dump({"method": "grid", "parameters": {"x": {"values": list(values)}},
                                    "command": command}, sort_keys=False))
    return path


def wait_for(condition, seconds: float = 60.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return False


def start_runner(sweep: Path, out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "c2s_lightning", "sweep", str(sweep), "--out", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def logs(record: dict) -> list[str]:
    return sorted(p.name for p in Path(record["folder"]).glob("output.log*"))


def test_killing_the_runner_leaves_no_child(tmp_path):
    pid_file = tmp_path / "child.pid"
    sweep, out = write_sweep(tmp_path / "s.yaml", ["${interpreter}", "-c", SLEEPER, str(pid_file)]), tmp_path / "out"
    for kill in (signal.SIGTERM, signal.SIGKILL):  # the runner's own handler, then the kernel's death signal
        pid_file.unlink(missing_ok=True)
        runner = start_runner(sweep, out)
        assert wait_for(pid_file.exists), runner.stderr
        assert wait_for(lambda: pid_file.read_text().strip())
        child = int(pid_file.read_text())
        record = next(iter(load_state(out)["runs"].values()))
        assert record["status"] == "running" and record["pid"] == child and process_start(child) is not None
        assert logs(record) == ["output.log.partial"]  # no output.log until the run ends
        runner.send_signal(kill)
        runner.wait(60)
        assert wait_for(lambda: process_start(child) is None, 30), f"child {child} outlived the runner ({kill!r})"
        status = next(iter(load_state(out)["runs"].values()))["status"]
        assert status == ("interrupted" if kill == signal.SIGTERM else "running")  # SIGKILL: no last word
        # the log so far is kept, named for what happened: stopped by the runner, or cut off
        kept = Path(record["folder"]) / ("output.log.interrupted" if kill == signal.SIGTERM else "output.log.partial")
        assert logs(record) == [kept.name] and kept.read_text().startswith("$ ")
        # the second round is a rerun of the interrupted run: it is retried, not skipped


def test_a_live_run_is_never_started_twice_and_a_dead_one_is_retried(tmp_path, capsys):
    sweep = write_sweep(tmp_path / "s.yaml", ["${interpreter}", "-c", MARKER, "${args_json}", str(tmp_path)])
    out = tmp_path / "out"
    run = sweep_cmd.plan_sweep(sweep, out)[0]
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        record = {"name": run.name, "status": "running", "pid": other.pid, "pid_start": process_start(other.pid),
                  "command_key": run.command_key, "folder": str(run.folder)}
        out.mkdir()
        save_state(out, {"runs": {run.key: record}})
        with pytest.raises(SweepError, match=f"still running as pid {other.pid}"):
            sweep_cmd.main([str(sweep), "--out", str(out)])
        assert not (tmp_path / "marker.txt").exists()
    finally:
        other.kill()
        other.wait()
    sweep_cmd.main([str(sweep), "--out", str(out)])  # the pid is gone now: the run is retried
    assert (tmp_path / "marker.txt").read_text().splitlines() == ['{"x": 1}']
    assert "interrupted earlier; rerunning" in capsys.readouterr().out


def test_editing_the_command_or_a_config_reruns_the_runs(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("trainer:\n  max_steps: 10\n")
    command = ["${interpreter}", "-c", MARKER, "${args_json}", str(tmp_path), "--config", str(config)]
    sweep, out = write_sweep(tmp_path / "s.yaml", command, values=(1, 2)), tmp_path / "out"
    marker = tmp_path / "marker.txt"

    def runs() -> list[str]:
        sweep_cmd.main([str(sweep), "--out", str(out)])
        return marker.read_text().splitlines() if marker.exists() else []

    assert runs() == ['{"x": 1}', '{"x": 2}']
    assert len(runs()) == 2  # unchanged: both skipped
    config.write_text("trainer:\n  max_steps: 20\n")  # the config changes, its name does not
    assert runs()[2:] == ['{"x": 1}', '{"x": 2}']
    assert "command or config changed since it finished; rerunning (earlier attempt kept in" in capsys.readouterr().out
    write_sweep(sweep, command + ["--extra"], values=(1, 2))  # the command changes
    assert runs()[4:] == ['{"x": 1}', '{"x": 2}']
    assert len(runs()) == 6
    kept = sorted(p.name for p in (out / ".superseded").iterdir())
    assert len(kept) == 4 and all(p.split(".")[0] in {r.name for r in sweep_cmd.plan_sweep(sweep, out)} for p in kept)


def one_line_error(args: list[str], capsys) -> str:
    """The error line ``python -m c2s_lightning ARGS`` ends with, having checked its exit status is 2."""
    with pytest.raises(SystemExit) as exit_info:
        cli_main(args)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    return message


def test_a_corrupt_state_or_sweep_file_is_named_in_one_line(tmp_path, capsys):
    sweep = write_sweep(tmp_path / "s.yaml", ["${interpreter}", "-c", "pass"])
    out = tmp_path / "out"
    out.mkdir()
    (out / STATE_FILE).write_text('{"runs": {"abc": ')  # cut off mid-write by an older runner
    message = one_line_error(["sweep", str(sweep), "--out", str(out)], capsys)
    assert str(out / STATE_FILE) in message and "corrupt sweep state" in message
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: grid\nparameters:\n  x: {values: [1, 2]\ncommand: [a]\n")
    with pytest.raises(SweepError, match=rf"{bad}: line 4, column \d+: not valid YAML"):
        load_sweep(bad)
    missing = tmp_path / "sweeps" / "nothing.yaml"
    assert one_line_error(["sweep", str(missing)], capsys) == \
        f"error: {missing}: no such file or directory (--debug shows the traceback)"
    empty = tmp_path / "empty.yaml"
    empty.write_text("method: grid\nparameters:\n  x: {values: [1]}\n  evaluator.beta: {values: []}\n")
    message = one_line_error(["sweep", str(empty), "--out", str(tmp_path / "o")], capsys)
    assert f"{empty}: parameter 'evaluator.beta' has no values" in message
    assert not (tmp_path / "o").exists()


def test_reports_skip_superseded_attempts_and_folders_being_written(tmp_path):
    from c2s_lightning.reporting.runs import find_runs

    current = tmp_path / "s-000-abc"
    hidden = [tmp_path / ".superseded" / "s-000-abc.1", tmp_path / ".export.123-ab.tmp"]
    for folder in [current, *hidden]:
        (folder / "csv").mkdir(parents=True)
        (folder / "csv" / "metrics.csv").write_text("step\n0\n")
    assert list(find_runs(tmp_path)) == [current]
    assert list(find_runs(hidden[0].parent)) == [hidden[0]]  # named directly, a hidden folder is read


def test_a_second_runner_on_the_same_folder_refuses_at_once(tmp_path):
    from c2s_lightning.sweep.state import runner_lock

    with runner_lock(tmp_path):
        with pytest.raises(SweepError, match=rf"another sweep runner \(pid {os.getpid()}\)"), runner_lock(tmp_path):
            pass
    with runner_lock(tmp_path):  # released when the first runner ends
        pass
