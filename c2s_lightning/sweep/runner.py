"""The offline sweep runner: plan a W&B sweep file into runs, run them one after another as
subprocesses, record each in the sweep state, pick the best on a validation metric. ``commands/sweep.py`` is its command
line; the module docstring there says what a user sees."""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from c2s_lightning.infra.atomic_files import streaming_file, write_json
from c2s_lightning.reporting.runs import read_metrics
from c2s_lightning.sweep import processes as sweep_processes
from c2s_lightning.sweep.plan import DEFAULT_COMMAND, command_key, expand, load_sweep, param_key, substitute
from c2s_lightning.sweep.state import load_state, refuse_live_runs, runner_lock, save_state, set_aside

PROJECT_COMMANDS = ("fit", "validate", "test", "predict", "evaluate")


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its parameters, their key, folder, the exact command and its key."""

    name: str
    key: str
    params: dict[str, Any]
    folder: Path
    command: list[str]
    command_key: str = ""


def is_project_cli(command: list[str]) -> bool:
    """True when ``command`` runs one of this project's Lightning commands (which take logger keys)."""
    for i, token in enumerate(command):
        if token == "-m" and command[i + 1:i + 2] == ["c2s_lightning"]:
            rest = command[i + 2:]
        elif Path(token).name == "c2s-lightning":
            rest = command[i + 1:]
        else:
            continue
        return bool(rest) and rest[0] in PROJECT_COMMANDS
    return False


def own_folder_args(command: list[str], folder: Path, name: str) -> list[str]:
    """Options that give a run of this project's CLI its own logger, root, checkpoint and export
    folders (configs such as the quickstart fix them), each unless the command sets it already."""
    options = {"trainer.logger.init_args.save_dir": folder, "trainer.logger.init_args.name": name,
               "trainer.default_root_dir": folder, "checkpoint.dirpath": folder / "checkpoints",
               "export.dirpath": folder / "export"}
    given = {arg[2:].split("=", 1)[0] for arg in command if arg.startswith("--")}
    return [part for key, value in options.items() if key not in given for part in (f"--{key}", str(value))]


def plan_sweep(path: str | Path, out: Path, count: int | None = None, seed: int = 0) -> list[PlannedRun]:
    """Every run of the sweep file at ``path``, with folders under ``out``."""
    sweep, stem = load_sweep(path), Path(path).stem
    runs = []
    for index, params in enumerate(expand(sweep, count, seed)):
        key = param_key(params)
        name, folder = f"{stem}-{index:03d}-{key[:6]}", out / f"{stem}-{index:03d}-{key[:6]}"
        template, program = sweep.get("command", DEFAULT_COMMAND), sweep.get("program")
        # keyed without the run's own paths: the folder follows the grid position, the key must not
        keyed = substitute(template, params, program, json_file="${args_json_file}")
        command = substitute(template, params, program, json_file=str(folder / "params.json"))
        if is_project_cli(command):
            command += own_folder_args(command, folder, name)
        runs.append(PlannedRun(name, key, params, folder, command, command_key(keyed)))
    return runs


def run_one(run: PlannedRun, group: str, started: Callable[[int], None] = lambda pid: None) -> int:
    """Run one command (output in ``FOLDER/output.log``); return its exit status. ``started(pid)`` is
    called once the child runs; however this ends (a signal included), the child's group has ended."""
    run.folder.mkdir(parents=True, exist_ok=True)
    write_json(run.folder / "params.json", run.params)
    # the environment's W&B settings win, but each run has its own name
    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(run.folder), "WANDB_RUN_GROUP": group, **os.environ,
           "WANDB_NAME": run.name}
    with streaming_file(run.folder / "output.log") as log:  # output.log.partial while it runs
        log.write(f"$ {shell_line(run.command)}\n")
        log.flush()
        try:
            child = sweep_processes.start(run.command, log, env)
        except OSError as err:  # e.g. the program does not exist: a failed run, not a crash
            log.write(f"cannot start the command: {err}\n")
            return 127
        try:
            started(child.pid)
            return child.wait()
        finally:
            if child.returncode is None:
                sweep_processes.stop(child)


def shell_line(command: list[str]) -> str:
    """``command`` as one bash line: arguments holding newlines use ``$'...'`` quoting."""
    def quote(arg: str) -> str:
        if "\n" not in arg:
            return shlex.quote(arg)
        return "$'" + arg.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"

    return " ".join(quote(a) for a in command)


def describe(params: dict[str, Any]) -> str:
    """``key=value`` pairs of a run, for progress lines."""
    return " ".join(f"{k}={v}" for k, v in params.items())


def run_sweep(runs: list[PlannedRun], out: Path, group: str) -> dict[str, int]:
    """Run every planned run not finished before with the same command; return the counts of each
    outcome. Holds the sweep folder's lock (a SweepError when another runner works in ``out``, a run
    of an earlier one still runs, or the state is corrupt); SIGTERM/SIGHUP/SIGINT end the child's group."""
    with runner_lock(out), sweep_processes.signals_raise():
        state, counts = load_state(out), {"finished": 0, "failed": 0, "skipped": 0}
        refuse_live_runs(state, out)
        todo = [run for run in runs if not _done_before(state, run)]
        clock, durations = time.monotonic(), []
        for i, run in enumerate(runs, 1):
            head = f"[{i}/{len(runs)}] {run.name} {describe(run.params)}"
            previous = state["runs"].get(run.key, {})
            if run not in todo:
                counts["skipped"] += 1
                print(f"{head}: skipped (finished before)", flush=True)
                continue
            why = {"finished": "command or config changed since it finished", "running": "interrupted earlier",
                   "interrupted": "interrupted earlier", "failed": "failed earlier"}.get(previous.get("status"))
            aside = set_aside(run.folder, out)
            if why or aside:
                kept = f" (earlier attempt kept in {aside})" if aside else ""
                print(f"{head}: {why or 'its folder exists'}; rerunning{kept}", flush=True)
            print(progress(len(durations) + 1, len(todo), time.monotonic() - clock, durations), file=sys.stderr,
                  flush=True)
            begin = time.monotonic()
            counts[_run_recorded(run, group, out, state, head)] += 1
            durations.append(time.monotonic() - begin)
    return counts


def _done_before(state: dict[str, Any], run: PlannedRun) -> bool:
    previous = state["runs"].get(run.key, {})
    return previous.get("status") == "finished" and previous.get("command_key") == run.command_key


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def progress(k: int, n: int, elapsed: float, durations: list[float]) -> str:
    """``sweep: run k of n, elapsed h:mm:ss, ETA h:mm:ss``, the ETA from the mean of ``durations``."""
    eta = _clock(sum(durations) / len(durations) * (n - k + 1)) if durations else "unknown"
    return f"sweep: run {k} of {n}, elapsed {_clock(elapsed)}, ETA {eta}"


def _run_recorded(run: PlannedRun, group: str, out: Path, state: dict[str, Any], head: str) -> str:
    """Run ``run`` with its record in the state: ``running`` with the child's pid while it runs,
    then ``finished``/``failed`` (or ``interrupted`` when the runner is stopped)."""
    record = {"name": run.name, "params": run.params, "status": "running", "folder": str(run.folder),
              "command": run.command, "command_key": run.command_key, "runner_pid": os.getpid()}
    state["runs"][run.key] = record

    def started(pid: int) -> None:
        record.update(pid=pid, pid_start=sweep_processes.process_start(pid))
        save_state(out, state)

    start, code = time.monotonic(), None
    try:
        code = run_one(run, group, started)
    finally:
        status = "interrupted" if code is None else "finished" if code == 0 else "failed"
        record.update(status=status, returncode=code, seconds=round(time.monotonic() - start, 1))
        for transient in ("pid", "pid_start", "runner_pid"):
            record.pop(transient, None)
        save_state(out, state)
    tail = "" if code == 0 else f" (exit {code}; see {run.folder / 'output.log'})"
    print(f"{head}: {status} in {time.monotonic() - start:.1f} s{tail}", flush=True)
    return status


def best_summary(runs: list[PlannedRun], out: Path, metric: dict[str, Any]) -> str:
    """The line naming the finished run (current command) best on the sweep's metric, or why none is:
    runs are picked on a validation metric (``val/...``) only, since picking on test would leak it."""
    name = metric["name"]
    if not name.startswith("val/"):
        return (f"no best run: the sweep's metric {name} is not a validation metric (val/...); test metrics "
                "are reported, never selected on")
    state = load_state(out)
    scored = [(run, value) for run in runs if _done_before(state, run)
              if (value := read_metrics(run.folder).get(name)) is not None]
    if not scored:
        return f"no best run: no finished run logged {name}"
    sign = -1.0 if metric.get("goal", "minimize") == "minimize" else 1.0
    run, value = max(scored, key=lambda item: sign * item[1])
    return f"best {name} = {value:.4g}: {run.name} {describe(run.params)}"
