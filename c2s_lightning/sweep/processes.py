"""The sweep runner's child processes: each in a process group of its own, none outliving the runner.

A child starts a new session (its group is its pid; a terminal's Ctrl-C reaches the runner alone)
and on Linux gets SIGTERM when the runner dies, even by SIGKILL; ``stop`` ends its whole group
(data-loader workers included).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PROC = Path("/proc/self/stat").exists()


def _die_with_runner():
    """A ``preexec_fn`` (Linux) that makes the child receive SIGTERM when the runner dies."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork: the child only calls it
    runner = os.getpid()

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != runner:  # the runner died before prctl took effect
            os._exit(1)

    return arm


def start(command: list[str], log: IO, env: dict[str, str]) -> subprocess.Popen:
    """Start ``command`` with stdout and stderr to ``log``, in a new process group."""
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, preexec_fn=_die_with_runner())


def stop(child: subprocess.Popen, grace: float = 10.0) -> None:
    """End ``child`` and every process of its group: SIGTERM, SIGKILL after ``grace`` seconds.
    A second Ctrl-C or SIGTERM to the runner meanwhile waits until this is done."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    try:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                break
            try:
                child.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # what the child left behind in its group
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(5.0)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def process_start(pid: int) -> str | None:
    """What tells process ``pid`` from a later one that reuses the number: its start time since
    boot (Linux), else ``""`` while the pid exists; None when there is no such live process."""
    if not _PROC:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return None if fields[0] in ("Z", "X") else fields[19]  # state (field 3), starttime (field 22)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Make SIGTERM and SIGHUP raise ``SystemExit`` in the runner (SIGINT already raises
    ``KeyboardInterrupt``), so the ``finally`` blocks that stop a child run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)
