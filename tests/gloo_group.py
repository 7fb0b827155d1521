"""Run a function on every rank of a real CPU process group (gloo), without Lightning.

``run_on_ranks(fn, world, tmp_path, *args)`` spawns ``world`` processes, joins them into one
``torch.distributed`` group, calls ``fn(rank, world, *args)`` in each and returns the results in
rank order. ``fn`` must live in an importable module (a test module is fine: pytest puts tests/
on ``sys.path`` and spawned children inherit it). Each call pays one start-up of the children's
imports, so a test module should spawn once and check several things on the results.
"""

from __future__ import annotations

import os
import pickle
import socket
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, world: int, port: int, fn: Callable, args: tuple, out: str) -> None:
    torch.set_num_threads(1)  # the two test cores are shared by every rank
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        result = fn(rank, world, *args)
        tmp = Path(out) / f"rank{rank}.pkl.tmp"
        tmp.write_bytes(pickle.dumps(result))
        os.replace(tmp, Path(out) / f"rank{rank}.pkl")
    finally:
        dist.destroy_process_group()


def run_on_ranks(fn: Callable, world: int, tmp_path: Path, *args) -> list:
    """``[fn(0, world, *args), ..., fn(world - 1, world, *args)]``, each run in its own process."""
    out = Path(tmp_path) / "ranks"
    out.mkdir(parents=True, exist_ok=True)
    mp.spawn(_entry, args=(world, _free_port(), fn, args, str(out)), nprocs=world, join=True)
    return [pickle.loads((out / f"rank{rank}.pkl").read_bytes()) for rank in range(world)]
