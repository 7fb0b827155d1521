"""Where the project's caches live: one root folder, one named subfolder per cache.

The root is ``$C2S_CACHE_DIR`` if set, else the user cache folder platformdirs names for the
project (on Linux ``$XDG_CACHE_HOME/c2s_lightning``, else ``~/.cache/c2s_lightning``);
``C2S_CACHE_DIR=off`` (or ``0``, ``none``, empty) turns every cache off. The caches under it:
``decoded-images/`` (images that decoded once, ``data/image_checks.py``), ``comparisons/`` (level
logits of compared pairs, ``cache/store.py``) and ``help/`` (``help_cache.py``). All are
optimisations only: deleting the root costs recomputation, nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_VAR = "C2S_CACHE_DIR"
IMAGE_CHECKS = "decoded-images"
COMPARISONS = "comparisons"


def cache_folder(name: str) -> Path | None:
    """The folder of the cache ``name`` (``IMAGE_CHECKS``, ``COMPARISONS``) under the root, or None
    when caches are off."""
    configured = os.environ.get(ENV_VAR)
    if configured is None:
        return Path(platformdirs.user_cache_dir("c2s_lightning", appauthor=False)) / name
    if configured.strip().lower() in ("", "off", "0", "none"):
        return None
    return Path(configured).expanduser() / name
