"""A reader of offline W&B run files, so tests, sweeps and reports read a run back without a W&B
server, and without importing Lightning (the logger that writes them is ``c2s_lightning.training.loggers``).

An offline run is one binary ``run-<id>.wandb`` file: a LevelDB-style log (32 KiB blocks, 7-byte
record headers: crc32, length, type) after a 7-byte file header, whose records are protobuf
``wandb_internal_pb2.Record`` messages. wandb ships no Python reader for it, hence this one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from pathlib import Path
from typing import Any

_FILE_HEADER = struct.Struct("<4sHB")
_RECORD_HEADER = struct.Struct("<IHB")
_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclasses.dataclass
class RunData:
    """What an offline run holds: one dict per logged step, the final summary, the config."""

    path: Path
    run_id: str
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    config: dict[str, Any]

    def series(self, key: str) -> list[Any]:
        """Every logged value of ``key``, in order."""
        return [row[key] for row in self.history if key in row]


def _records(data: bytes, source: Path):
    ident, magic, version = _FILE_HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError(f"{source}: not a W&B run file (header {data[:7]!r})")
    pos, chunks = _FILE_HEADER.size, []
    while pos + _RECORD_HEADER.size <= len(data):
        room = _BLOCK - pos % _BLOCK
        if room < _RECORD_HEADER.size:
            pos += room
            continue
        _, length, kind = _RECORD_HEADER.unpack_from(data, pos)
        if kind == 0 and length == 0:
            pos += room  # zero padding at a block end
            continue
        start = pos + _RECORD_HEADER.size
        chunk = data[start:start + length]
        pos = start + length
        if kind in (_FULL, _FIRST):
            chunks = [chunk]
        elif kind in (_MIDDLE, _LAST):
            chunks.append(chunk)
        else:
            raise ValueError(f"{source}: bad record type {kind} at byte {pos - length}")
        if kind in (_FULL, _LAST):
            yield b"".join(chunks)


def _item_value(item) -> tuple[str, Any]:
    key = "/".join(item.nested_key) if item.nested_key else item.key
    return key, json.loads(item.value_json)


def read_run(path: str | os.PathLike) -> RunData:
    """Read an offline run: a ``run-*.wandb`` file or the run folder that holds one."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("run-*.wandb"))
        if not files:
            raise FileNotFoundError(f"{path}: no run-*.wandb file in this folder")
        path = files[0]
    history, summary, config, run_id = [], {}, {}, path.stem.removeprefix("run-")
    for raw in _records(path.read_bytes(), path):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append(dict(_item_value(i) for i in record.history.item))
        elif kind == "summary":
            summary.update(_item_value(i) for i in record.summary.update)
        elif kind == "config":
            config.update(_item_value(i) for i in record.config.update)
        elif kind == "run":
            run_id = record.run.run_id or run_id
            config.update(_item_value(i) for i in record.run.config.update)
    return RunData(path=path, run_id=run_id, history=history, summary=summary, config=config)


def find_runs(root: str | os.PathLike) -> list[Path]:
    """Every offline run file under ``root``, oldest first; hidden folders below ``root`` are
    skipped (a sweep's ``.superseded/`` attempts, folders still being written under a temporary name)."""
    root = Path(root)
    found = [p for p in root.rglob("run-*.wandb")
             if not any(part.startswith(".") for part in p.relative_to(root).parts[:-1])]
    return sorted(found, key=lambda p: p.stat().st_mtime)
