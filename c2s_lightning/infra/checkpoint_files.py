"""Lightning checkpoint files: written whole, and looked at before anything loads them.

Lightning moves a local checkpoint into place from a temporary file in the system's temp folder:
a copy, not atomic, when that is another disk, and never flushed. ``AtomicCheckpointIO`` writes
it beside its name and renames it (``atomic_files``), so ``last.ckpt`` is the old or the new one.

``torch.load`` fails on a bad file with a bare ``EOFError``, ``KeyError`` or unpickling error, and
safe loading's refusal advises loading unsafely. ``check_checkpoint_file`` reads the first bytes
and says in one line what is wrong; ``unsafe_load_reason`` keeps a refusal's reason, not its advice.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from c2s_lightning.infra.atomic_files import atomic_path

# ckpt_path values Lightning resolves itself (no file name)
LIGHTNING_KEYWORDS = ("last", "best", "hpc", "registry")
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6
_PICKLE_PROTOCOL = b"\x80"  # the legacy format: a pickle, protocol 2 or later


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer with local files written atomically (remote ones as before)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_path(path) as temp:
            torch.save(checkpoint, temp)


def use_atomic_checkpoints(strategy) -> None:
    """Give ``strategy`` the atomic writer, unless it was configured with a writer of its own."""
    if type(strategy.checkpoint_io) is TorchCheckpointIO:
        strategy.checkpoint_io = AtomicCheckpointIO()


class CheckpointFileError(ValueError):
    """A file given as a checkpoint is not one (empty, cut short, text, another archive)."""


def check_checkpoint_file(path: str | os.PathLike, option: str = "--ckpt_path",
                          allow_folder: bool = False) -> Path:
    """Check that ``path`` holds a checkpoint written by ``torch.save``, before it is loaded; a
    folder (a DeepSpeed checkpoint, which its engine checks) passes with ``allow_folder``.

    Raises:
        CheckpointFileError: one line naming ``option``, the path and what is wrong.
    """
    file = Path(path)
    if not file.exists():
        raise CheckpointFileError(f"{option} {path}: no such file")
    if file.is_dir():
        if allow_folder:
            return file
        raise CheckpointFileError(f"{option} {path} is a folder; give the .ckpt file (e.g. {file / 'last.ckpt'})")
    with open(file, "rb") as handle:
        head = handle.read(64)
    if not head:
        raise CheckpointFileError(f"{option} {path} is empty (0 bytes), e.g. a save that was cut off; "
                                  "use an earlier checkpoint")
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(file) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            raise CheckpointFileError(f"{option} {path} is cut short or damaged (an incomplete archive); "
                                      "use an earlier checkpoint") from None
        if not any(name.endswith("/data.pkl") or name == "data.pkl" for name in names):
            raise CheckpointFileError(f"{option} {path} is a zip archive but not a PyTorch checkpoint (no data.pkl)")
        return file
    if head.startswith(_PICKLE_PROTOCOL):
        return file
    kind = "a text file" if _is_text(head) else "not a file torch.save writes"
    raise CheckpointFileError(f"{option} {path} is not a PyTorch checkpoint: {kind} (it starts with "
                              f"{head[:16]!r})")


def _is_text(head: bytes) -> bool:
    try:
        return head.decode("utf-8").isprintable() or "\n" in head.decode("utf-8")
    except UnicodeDecodeError:
        return False


def unsafe_load_reason(error: pickle.UnpicklingError) -> str:
    """The reason safe loading refused a checkpoint, without torch's advice to load it unsafely."""
    text = str(error)
    marker = "WeightsUnpickler error:"
    if marker in text:
        reason = text.split(marker, 1)[1].strip().split("\n", 1)[0]
        reason = reason.split(". Please use", 1)[0].rstrip(".")
    else:
        reason = text.strip().split("\n", 1)[0]
    return (f"safe loading (weights_only=True) refused it: {reason}; checkpoints written by this "
            "project's fit load safely, so this file comes from elsewhere or was altered")
