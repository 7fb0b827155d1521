"""``fit --help`` (and validate/test/predict) in a fraction of a second after the first time.

LightningCLI's help needs Lightning imported (about 6 s on a 2-core machine). The text changes
only with the package's sources, the describing libraries' versions or the terminal width, so the
first rendering is kept (``<cache root>/help/<key>.txt``) and printed while the key holds. Only a
bare ``COMMAND --help`` is kept: with ``--config`` the help shows that config's defaults.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from c2s_lightning.infra.atomic_files import write_text
from c2s_lightning.infra.cache_folders import cache_folder

HELP_FLAGS = ("-h", "--help")
# the libraries whose classes' signatures make up LightningCLI's option list
DESCRIBING_PACKAGES = ("lightning", "jsonargparse", "torch", "transformers", "peft", "torchmetrics", "wandb")
PACKAGE = Path(__file__).resolve().parents[1]


def is_bare_help(args: list[str]) -> bool:
    """``[COMMAND, --help]``: a help whose text depends on nothing the user passes."""
    return len(args) == 2 and args[1] in HELP_FLAGS


def help_key(args: list[str]) -> str:
    """A digest of what the help text depends on: the command, the terminal width, the versions of
    the describing libraries, and every source file of the package (path, size, modification time)."""
    digest = hashlib.sha256()
    digest.update(f"{args[0]}\0{shutil.get_terminal_size().columns}\0{sys.version}\0".encode())
    for name in DESCRIBING_PACKAGES:
        try:
            digest.update(f"{name}={metadata.version(name)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=none\0".encode())
    for folder, _, files in sorted(os.walk(PACKAGE)):
        for file in sorted(f for f in files if f.endswith(".py")):
            stat = os.stat(os.path.join(folder, file))
            digest.update(f"{folder}/{file}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:32]


def print_help(args: list[str], render: Callable[[], object]) -> None:
    """Print the help of ``args`` (a bare ``COMMAND --help``) from the cache, or ``render()`` it (it
    prints the help and exits 0, as argparse does), keep the text and print it."""
    folder = cache_folder("help")
    kept = None if folder is None else folder / f"{help_key(args)}.txt"
    if kept is not None and kept.is_file():
        sys.stdout.write(kept.read_text(encoding="utf-8"))
        return
    captured = io.StringIO()
    status = 0
    with contextlib.redirect_stdout(captured):
        try:
            render()
        except SystemExit as exit_:
            status = exit_.code or 0
    text = captured.getvalue()
    if kept is not None and status == 0 and text:
        with contextlib.suppress(OSError):  # a read-only cache only costs the next call its speed
            write_text(kept, text)
    sys.stdout.write(text)
    if status:
        raise SystemExit(status)
