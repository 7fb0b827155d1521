"""The sweep folder's bookkeeping: ``OUT/sweep_state.json`` (each run's record by parameter key:
status, ``command_key``, folder, the child's pid while it runs), the one runner's ``OUT/.sweep.lock``,
and ``OUT/.superseded/``, where an earlier attempt's folder goes before a run starts again, so each
run folder holds one attempt and nothing is overwritten (report readers skip hidden folders).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from c2s_lightning.infra.atomic_files import is_nonempty_folder, write_json
from c2s_lightning.infra.run_files import SWEEP_STATE as STATE_FILE
from c2s_lightning.sweep.plan import SweepError
from c2s_lightning.sweep.processes import process_start

LOCK_FILE = ".sweep.lock"
SUPERSEDED = ".superseded"


def load_state(out: Path) -> dict[str, Any]:
    """The state of the sweep in ``out`` (empty when there is none yet); a SweepError if corrupt."""
    path = out / STATE_FILE
    if not path.is_file():
        return {"runs": {}}
    try:
        state = json.loads(path.read_text())
        if not isinstance(state, dict) or not isinstance(state.get("runs"), dict):
            raise ValueError("expected an object with a 'runs' object")
    except (ValueError, UnicodeDecodeError) as error:
        raise SweepError(f"{path}: corrupt sweep state ({error}); fix it, or move it away to rerun "
                         "every run") from None
    return state


def save_state(out: Path, state: dict[str, Any]) -> None:
    """Write the state file atomically: an interrupted runner never leaves half of one."""
    write_json(out / STATE_FILE, state, default=str)


@contextlib.contextmanager
def runner_lock(out: Path) -> Iterator[None]:
    """Hold ``OUT/.sweep.lock`` while running; a second runner on the same folder fails at once,
    naming the holder's pid (kept beside the lock)."""
    out.mkdir(parents=True, exist_ok=True)
    lock, holder_file = FileLock(out / LOCK_FILE), out / f"{LOCK_FILE}.pid"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = holder_file.read_text().strip() if holder_file.is_file() else "unknown"
        raise SweepError(f"{out}: another sweep runner (pid {holder}) is running this sweep; wait for "
                         "it or stop it") from None
    try:
        holder_file.write_text(str(os.getpid()))
        yield
    finally:
        lock.release()


def set_aside(folder: Path, out: Path) -> Path | None:
    """Move an earlier attempt's folder to ``OUT/.superseded/<name>.<n>``; return where, or None."""
    if not is_nonempty_folder(folder):
        return None
    aside = out / SUPERSEDED
    aside.mkdir(exist_ok=True)
    n = 1
    while (target := aside / f"{folder.name}.{n}").exists():
        n += 1
    os.replace(folder, target)
    return target


def refuse_live_runs(state: dict[str, Any], out: Path) -> None:
    """A run recorded as running whose process still lives is never started a second time (a
    SweepError naming the run and its pid)."""
    for record in state["runs"].values():
        pid, identity = record.get("pid"), record.get("pid_start")
        if (record.get("status") == "running" and isinstance(pid, int) and identity is not None
                and process_start(pid) == identity):
            raise SweepError(f"run {record.get('name')} in {out} is still running as pid {pid}, started by an "
                             f"earlier runner; stop it (kill -- -{pid}) or let it finish, then rerun")
