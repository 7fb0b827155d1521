"""Transformers' own progress bars ("Loading weights", "Writing model shards") off while this
package loads or saves a model, and back as they were afterwards.

A tiny model loads in milliseconds and a 7B one in seconds from a local folder: either way the bar
tells the user nothing to act on (issue 15), while our own bars (scoring, training) stay. Only
transformers' bars are touched, through its tqdm hook (``set_tqdm_hook``, which hands back the
hook it replaces): the user's process keeps its settings, and huggingface_hub's download bars,
which do say how long a first download will take, stay on.
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
