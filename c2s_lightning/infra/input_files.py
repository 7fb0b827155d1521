"""Reading input files: only regular files, never a FIFO, socket or device; hashing one whole.

Opening a FIFO blocks until another process writes to it (a FIFO named ``photo.png`` would hang a
run for ever) and a device such as ``/dev/zero`` never ends, so readers look at the file's type
(``stat`` neither blocks nor reads) before they open it (``docs/safety.md``).
"""

from __future__ import annotations

import os
import stat

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def special_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it is a FIFO, device or socket (symlinks followed), else None
    (a regular file, a folder, or nothing at all: the caller's open reports those as usual)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), None)


def not_regular_reason(path: str | os.PathLike) -> str | None:
    """``"<path> is a FIFO (named pipe), not a regular file"`` for a special file, else None."""
    kind = special_kind(path)
    return None if kind is None else f"{path} is {kind}, not a regular file"


def hash_file(path: str | os.PathLike, digest):
    """``digest`` (a hashlib object) fed the bytes of ``path`` in 1 MiB reads, so memory stays flat for
    any file size (``hashlib.file_digest`` once Python 3.11 is the floor)."""
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest
