"""Transformers' own progress bars ("Loading weights", "Writing model shards") off while this
package loads or saves a model, and back as they were afterwards.

A tiny model loads in milliseconds and a 7B one in seconds from a local folder: either way the bar
tells the user nothing to act on (issue 15). Only transformers' tqdm hook is swapped (``set_tqdm_hook``
hands back the one it replaces): our own bars, the user's settings and huggingface_hub's download
bars, which do say how long a first download will take, stay as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


def _silent(factory, args, kwargs):
    return factory(*args, **{**kwargs, "disable": True})


@contextlib.contextmanager
def no_transformers_bars() -> Iterator[None]:
    """Inside the block (or the decorated function) transformers creates its bars disabled."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.set_tqdm_hook(_silent)
    try:
        yield
    finally:
        hf_logging.set_tqdm_hook(previous)
