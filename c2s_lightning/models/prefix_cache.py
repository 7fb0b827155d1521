"""The anchors' key/value prefixes that ``FastComparator`` computes once and reuses.

A prefix is everything before a pair's second image (chat prefix, anchor image, the words between
the images); its keys and values depend only on the anchor and the prefix's tokens and positions
(``prefix_key``), so every test image compared with that anchor reuses them. Entries hold their
anchor image, so ``id(image)`` stays unique while they live.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class PrefixCache:
    """Per (anchor image, prefix key): the prefix's keys/values ``[(K, V), ...]``, one per layer."""

    def __init__(self):
        self._states: dict[tuple, tuple[object, list]] = {}

    def __len__(self) -> int:
        return len(self._states)

    def clear(self) -> None:
        self._states.clear()

    def missing(self, batches: Sequence[tuple], pairs: Sequence[tuple], size: int) -> list[tuple]:
        """``(template, anchors)`` batches of at most ``size`` anchors whose prefix is not cached,
        for the ``(template, pair rows)`` batches about to run."""
        todo: dict[tuple, tuple[object, dict]] = {}
        for template, rows in batches:
            _, anchors = todo.setdefault(template.prefix_key, (template, {}))
            for first, _ in (pairs[i] for i in rows):
                if (id(first.image), template.prefix_key) not in self._states:
                    anchors[id(first.image)] = first
        return [(template, list(anchors.values())[start : start + size])
                for template, anchors in todo.values() for start in range(0, len(anchors), size)]

    def store(self, template, anchors: Sequence, cache: DynamicCache) -> bool:
        """Keep row ``i`` of ``cache`` (a prefix forward's) as ``anchors[i]``'s prefix; False, and
        nothing kept, when the model keeps its cache in another form (e.g. sliding windows)."""
        if any(type(layer) is not DynamicLayer for layer in cache.layers):
            return False
        for row, anchor in enumerate(anchors):
            states = [(layer.keys[row : row + 1], layer.values[row : row + 1]) for layer in cache.layers]
            self._states[(id(anchor.image), template.prefix_key)] = (anchor.image, states)
        return True

    def stacked(self, template, anchors: Sequence) -> DynamicCache:
        """A cache holding, row by row, the prefixes of ``anchors`` (all stored)."""
        prefixes = [self._states[(id(a.image), template.prefix_key)][1] for a in anchors]
        # A generator: the cache copies each layer's batch as it is built, so no second full copy.
        return DynamicCache(tuple(torch.cat([p[layer][i] for p in prefixes]) for i in (0, 1))
                            for layer in range(len(prefixes[0])))
