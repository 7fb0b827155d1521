"""``score --devices N``: images scored by N processes (Lightning Fabric, ``ddp``), resumable
from the part files in ``<out>.parts/``; docs/gpu.md#scoring-on-several-processes says how.

Ranks meet only at barriers (no DDP wrapper: scoring needs no gradient) and, cache off, in each
comparator call (``models/lockstep.py``); an unreadable image is scored as a stand-in so that
every rank makes the same calls.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from c2s_lightning.infra.atomic_files import atomic_open, write_json
from c2s_lightning.scoring.shards import padded_shard

Row = tuple[str, "float | None", str]  # (path, score, error), as score.score_paths gives
KEY_FILE = "key.json"
CHUNK = 64  # images per part file: what a kill can lose at most, per rank


@dataclass
class Ranks:
    """This process's place among the scoring processes; ``fabric`` is None for one process."""

    rank: int = 0
    world: int = 1
    device: str | None = None
    fabric: Any = None

    def barrier(self) -> None:
        if self.fabric is not None:
            self.fabric.barrier()


def start_ranks(devices: int, num_nodes: int, device: str | None) -> Ranks:
    """Start ``devices`` processes per node on ``num_nodes`` (``ddp``: the others re-run this command;
    torchrun or SLURM place the nodes) and place this one; ``device`` (``--device``) names a single
    device such as ``cuda:1`` only with one process."""
    if devices < 1 or num_nodes < 1:
        raise SystemExit(f"error: --devices and --num-nodes must be at least 1, got {devices} and {num_nodes}")
    if devices * num_nodes == 1:
        return Ranks(device=device)
    if device not in (None, "cpu", "cuda"):
        raise SystemExit(f"error: --device {device} names one device; with --devices {devices} give cpu or cuda")
    from lightning.fabric import Fabric

    accelerator = {None: "auto", "cpu": "cpu", "cuda": "gpu"}[device]
    fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy="ddp")
    fabric.launch()
    return Ranks(fabric.global_rank, fabric.world_size, str(fabric.device), fabric)


def parts_folder(out: Path) -> Path:
    """Where the parts of ``out`` are kept until the final CSV is written."""
    return out.with_name(out.name + ".parts")


def run_key(paths: Sequence[Path], scorer, dtype: str) -> dict:
    """What the scores depend on: the images (path, size, mtime), the weights, the anchors and
    the scoring options. Parts are reused only under an equal key."""
    images = hashlib.sha256()
    for path in paths:
        try:
            stat = path.stat()
            images.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:  # scored as an error row; a later appearance changes the key
            images.update(f"{path}\0missing\n".encode())
    anchors = json.dumps([str(a.path) for a in scorer.bank.anchors])
    return {"images": len(paths), "inputs": "sha256:" + images.hexdigest(), "model": str(scorer.comparator.model_id),
            "anchors": "sha256:" + hashlib.sha256(anchors.encode()).hexdigest(),
            "scoring": {"matrix": scorer.matrix, "temperature": scorer.temperature, "link": scorer.link,
                        "readoff": scorer.readoff, "preprocessing": scorer.preprocessing, "dtype": dtype}}


def check_parts(folder: Path, key: dict) -> None:
    """Refuse a parts folder that is not this very run's (read only, so every rank can ask)."""
    key_file = folder / KEY_FILE
    if key_file.is_file():
        found = json.loads(key_file.read_text())
        if found != key:
            differ = sorted(k for k in key.keys() | found.keys() if key.get(k) != found.get(k))
            raise SystemExit(f"error: {folder} holds parts of another run (its {', '.join(differ)} differ); "
                             "remove it to start afresh, or give another --out")
    elif folder.exists() and any(not p.name.startswith(".") for p in folder.iterdir()):
        raise SystemExit(f"error: {folder} exists without {KEY_FILE}; it is not ours to use: "
                         "remove it or give another --out")


def read_parts(folder: Path, paths: Sequence[Path]) -> dict[int, Row]:
    """The rows every finished part holds, by input index (a part names its file and rows)."""
    rows: dict[int, Row] = {}
    for part in sorted(folder.glob("part-*.csv")):
        with part.open(newline="", encoding="utf-8") as file:
            for line, row in enumerate(csv.DictReader(file), start=2):
                index = int(row["index"])
                if not 0 <= index < len(paths) or row["path"] != str(paths[index]):
                    raise SystemExit(f"error: {part} row {line}: {row['path']} is not input {index}; "
                                     f"remove {folder} to start afresh")
                rows[index] = (row["path"], float(row["score"]) if row["score"] else None, row["error"])
    return rows


def score_missing(ranks: Ranks, folder: Path, paths: Sequence[Path],
                  score_chunk: Callable[[list[Path]], list[Row]]) -> None:
    """Score this rank's share of the images no part holds, a part file per chunk."""
    done = read_parts(folder, paths)
    missing = [i for i in range(len(paths)) if i not in done]
    ranks.barrier()  # every rank has read the parts before any rank adds one
    if not missing:
        return
    own, padded = padded_shard(len(missing), ranks.world, ranks.rank)
    tag = f"{ranks.rank}-{os.getpid()}-{os.urandom(3).hex()}"  # unique across ranks and reruns
    for number, start in enumerate(range(0, len(padded), CHUNK)):
        positions = padded[start:start + CHUNK]
        rows = score_chunk([paths[missing[p]] for p in positions])
        kept = [(missing[p], row) for j, (p, row) in enumerate(zip(positions, rows)) if start + j < len(own)]
        if not kept:  # the padding repeats an image of this share: scored for equal counts, not written
            continue
        with atomic_open(folder / f"part-{tag}-{number:05d}.csv", newline="") as table:
            writer = csv.writer(table)
            writer.writerow(["index", "path", "score", "error"])
            writer.writerows((i, p, "" if s is None else repr(s), e) for i, (p, s, e) in kept)  # full precision


def score_sharded(ranks: Ranks, paths: Sequence[Path], out: Path | None, key: dict,
                  score_chunk: Callable[[list[Path]], list[Row]],
                  write: Callable[[list[Row]], Any]) -> list[Row] | None:
    """Score ``paths`` over ``ranks``; rank 0 ``write``s every row in input order and returns them,
    the other ranks return None. Parts are kept beside ``out`` until ``write`` has run; without
    ``out`` (one process only) the rows stay in memory."""
    if out is None:
        if ranks.world > 1:
            raise SystemExit("error: --devices/--num-nodes above 1 need --out: the ranks write their parts beside it")
        rows = score_chunk(list(paths))
        write(rows)
        return rows
    folder = parts_folder(out)
    check_parts(folder, key)  # on every rank, so that all stop together on a mismatch
    ranks.barrier()  # every rank has looked before rank 0 writes the key (else one sees it half-made)
    if ranks.rank == 0 and not (folder / KEY_FILE).is_file():
        write_json(folder / KEY_FILE, key, indent=1)
    score_missing(ranks, folder, paths, score_chunk)
    ranks.barrier()  # every part is written
    if ranks.rank != 0:
        return None
    done = read_parts(folder, paths)
    lost = [str(paths[i]) for i in range(len(paths)) if i not in done]
    if lost:
        # every rank wrote its share before the barrier: a gap is a defect (or a hand in the folder), not a mistake
        raise RuntimeError(f"{len(lost)} images have no score in {folder}, e.g. {lost[0]}")
    rows = [done[i] for i in range(len(paths))]
    write(rows)
    shutil.rmtree(folder)  # only once the final CSV is in place
    return rows
