"""Which exceptions are the user's mistakes, and the one line ``cli.main`` prints for each.

A user error is bad input, not a defect: a value a reader or constructor refuses (``ValueError``
and its kinds: ``DatasetError``, ``SweepError``, ``CheckpointFileError``, ...), a missing or
unwritable file, a checkpoint safe loading refuses, a comparison cache that is not one, a full or
read-only disk. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
import errno
import os
import pickle
import re
import sys

USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
               PermissionError, pickle.UnpicklingError)
"""Exception types that end a command with one line (and exit status 2)."""
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)  # the disk, not the code: full or read-only
_FOREIGN_ERRNO = re.compile(r"\(os error (\d+)\)")
"""How Rust libraries (safetensors, tokenizers) word an operating-system error they raise as their own type."""


def disk_error(error: BaseException, path: str | os.PathLike | None = None) -> OSError | None:
    """``error`` as the ``OSError`` of a full or read-only disk (naming ``path`` when given), also
    when a library raised it as its own type ("No space left on device (os error 28)"); None for
    any other error."""
    if isinstance(error, OSError):
        number = error.errno
    else:
        found = _FOREIGN_ERRNO.search(str(error))
        number = int(found.group(1)) if found else None
    if number not in _DISK_ERRNOS:
        return None
    if isinstance(error, OSError) and (path is None or error.filename is not None):
        return error
    return OSError(number, os.strerror(number), None if path is None else str(path))


def is_user_error(error: BaseException) -> bool:
    """True for the types above, a full or read-only disk, and the comparison cache's
    ``CacheError`` (looked up only when its module was loaded: the command line never imports the
    scoring stack for this)."""
    cache_db = sys.modules.get("c2s_lightning.cache.database")
    return (isinstance(error, USER_ERRORS) or disk_error(error) is not None
            or (cache_db is not None and isinstance(error, cache_db.CacheError)))


def one_line(error: BaseException) -> str:
    """The message of ``error`` as one line: what went wrong, and where, as the raiser said it."""
    if isinstance(error, pickle.UnpicklingError):
        from c2s_lightning.infra.checkpoint_files import unsafe_load_reason

        return unsafe_load_reason(error)
    error = disk_error(error) or error
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename is not None else ""
        return f"{where}{error.strerror[:1].lower()}{error.strerror[1:]}"
    text = str(error).strip()
    if "Original Traceback" in text:  # re-raised from a data-loader worker: its last line is the error
        text = text.splitlines()[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


def suggestion(word: str, candidates) -> str:
    """``"; did you mean 'x'?"`` when a candidate is close to ``word``, else ``""``: the one
    did-you-mean of commands, options, backbones and datasets."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_name(kind: str, name: str, entries: dict) -> str:
    """An error text for an unknown ``kind`` name: a suggestion when one is close, then the list
    (``name  description`` per line)."""
    width = max(map(len, entries))
    listing = "\n".join(f"  {key:<{width}}  {info.description}" for key, info in entries.items())
    return f"unknown {kind} {name!r}{suggestion(name, entries)} Known {kind}s:\n{listing}"
