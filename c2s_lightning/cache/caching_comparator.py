"""``CachingComparator``: a comparator that asks its inner model only what the cache lacks.

It has the scorer's comparator interface (``model_id``, ``level_logits``, ``anchor_rows``), so the
scorer, the evaluator and the commands take it unchanged. An image's key is ``pixel_digest`` of the
PIL image given (after RGB conversion and any padding): what is hashed is what the model saw, and no
caller passes hashes. Anchors are hashed once while the same anchor objects keep coming.

Missing pairs take as few inner calls as possible: ``anchor_rows`` groups the test images by the
anchors they still miss (nested anchor sets, as in the beta sweep, make that one call of the new
anchors against every test image), so a ``FastComparator`` keeps reusing its anchor features and
prefixes; an inner comparator without ``anchor_rows`` gets all missing pairs in one
``level_logits`` call. Pairs repeated within one call are computed once. Returned logits are the
inner comparator's, bit for bit when they come from the cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from c2s_lightning.cache.store import ComparisonCache, ComparisonKey
from c2s_lightning.cache.digests import pixel_digest, protocol_key


class CachingComparator:
    """Wraps a comparator so that every pair it has answered under a model is answered once.

    Args:
        inner: The comparator computing missing pairs (``Comparator``, ``FastComparator`` or
            anything with ``model_id`` and ``level_logits``; ``anchor_rows`` is used if present).
        cache: Where logits are kept.
        fingerprint: The model fingerprint: no entry of another model is ever returned.
        protocol: The comparison protocol as a JSON-able dict (``cache_protocol``).
    """

    def __init__(self, inner: Any, cache: ComparisonCache, fingerprint: str, protocol: Mapping[str, Any]):
        if not isinstance(fingerprint, str) or not fingerprint:
            raise ValueError(f"CachingComparator needs a non-empty weights fingerprint, got {fingerprint!r}")
        self.inner, self.cache, self.fingerprint = inner, cache, fingerprint
        self.protocol_key = protocol_key(protocol)
        self.computed = self.reused = 0
        self._anchors: dict[int, tuple[Image.Image, str]] = {}  # id -> (image kept alive, digest)

    @property
    def model_id(self) -> str:
        """The inner comparator's (anchor banks are tagged with it)."""
        return self.inner.model_id

    def counts(self) -> dict[str, int]:
        """``{"computed": pairs asked of the inner model, "reused": pairs answered without it}``."""
        return {"computed": self.computed, "reused": self.reused}

    def key(self, first_digest: str, second_digest: str) -> ComparisonKey:
        """The cache key of a pair of image digests under this model and protocol."""
        return ComparisonKey(self.fingerprint, self.protocol_key, first_digest, second_digest)

    def level_logits(self, first_images: Sequence[Image.Image], second_images: Sequence[Image.Image],
                     batch_size: int | None = None) -> Tensor:
        """As the inner ``level_logits``: ``[B, 5]`` for "second compared with first"."""
        if len(first_images) != len(second_images):
            raise ValueError(f"{len(first_images)} first images but {len(second_images)} second images")
        if not first_images:
            return self.inner.level_logits(first_images, second_images, batch_size)
        digests = _digests([*first_images, *second_images])
        keys = [self.key(a, b) for a, b in zip(digests[: len(first_images)], digests[len(first_images) :])]
        values = self.cache.get_many(keys)
        todo = {k: i for i, k in enumerate(keys) if k not in values}  # first occurrence of each
        if todo:
            rows = list(todo.values())
            logits = self.inner.level_logits([first_images[i] for i in rows], [second_images[i] for i in rows],
                                             batch_size)
            self._store(dict(zip(todo, _numpy(logits))), values)
        self.reused += len(keys) - len(todo)
        return torch.from_numpy(np.stack([values[k] for k in keys]))

    def anchor_rows(self, anchor_images: Sequence[Image.Image], test_images: Sequence[Image.Image],
                    batch_size: int | None = None) -> Tensor:
        """As ``FastComparator.anchor_rows``: ``[len(test_images), len(anchor_images), 5]``,
        the anchor shown first; pass the same anchor objects on every call (hashed once)."""
        if not anchor_images or not test_images:
            return self._inner_rows(anchor_images, test_images, batch_size)
        anchors = self._anchor_digests(anchor_images)
        tests = _digests(test_images)
        keys = [[self.key(a, t) for a in anchors] for t in tests]
        values = self.cache.get_many(k for row in keys for k in row)
        unique_anchors = list({a: j for j, a in enumerate(anchors)}.values())
        groups: dict[tuple[int, ...], dict[str, int]] = {}  # missing anchors -> {test digest: index}
        for i, row in enumerate(keys):
            missing = tuple(j for j in unique_anchors if row[j] not in values)
            if missing:
                groups.setdefault(missing, {}).setdefault(tests[i], i)
        new = self._compute_rows(groups, anchor_images, test_images, keys, batch_size)
        self._store(new, values)
        self.reused += len(tests) * len(anchors) - len(new)
        return torch.from_numpy(np.stack([np.stack([values[k] for k in row]) for row in keys]))

    def _compute_rows(self, groups: dict[tuple[int, ...], dict[str, int]], anchor_images: Sequence,
                      test_images: Sequence, keys: list[list[ComparisonKey]],
                      batch_size: int | None) -> dict[ComparisonKey, np.ndarray]:
        """Logits of the missing pairs: per group through ``anchor_rows``, or all in one
        ``level_logits`` call for an inner comparator without it."""
        if not hasattr(self.inner, "anchor_rows"):
            pairs = [(i, j) for js, rows in groups.items() for i in rows.values() for j in js]
            logits = self.inner.level_logits([anchor_images[j] for i, j in pairs],
                                             [test_images[i] for i, j in pairs], batch_size)
            return {keys[i][j]: v for (i, j), v in zip(pairs, _numpy(logits))}
        new = {}
        for js, rows in groups.items():
            block = self.inner.anchor_rows([anchor_images[j] for j in js],
                                           [test_images[i] for i in rows.values()], batch_size)
            new.update({keys[i][j]: v for i, logits in zip(rows.values(), _numpy(block))
                        for j, v in zip(js, logits)})
        return new

    def _store(self, new: dict[ComparisonKey, np.ndarray], values: dict[ComparisonKey, np.ndarray]) -> None:
        """Keep freshly computed logits: in the cache, and in ``values`` for this call's answer."""
        self.cache.put_many(new)
        values.update(new)
        self.computed += len(new)

    def _inner_rows(self, anchor_images: Sequence, test_images: Sequence, batch_size: int | None) -> Tensor:
        if hasattr(self.inner, "anchor_rows"):
            return self.inner.anchor_rows(anchor_images, test_images, batch_size)
        firsts = [a for _ in test_images for a in anchor_images]
        seconds = [t for t in test_images for _ in anchor_images]
        logits = self.inner.level_logits(firsts, seconds, batch_size)
        return logits.reshape(len(test_images), len(anchor_images), logits.shape[-1])

    def _anchor_digests(self, anchor_images: Sequence[Image.Image]) -> list[str]:
        # Only the current anchors are remembered, so a new anchor set does not grow the memo.
        known = self._anchors
        self._anchors = {id(a): known.get(id(a)) or (a, pixel_digest(a)) for a in anchor_images}
        return [self._anchors[id(a)][1] for a in anchor_images]


def _digests(images: Sequence[Image.Image]) -> list[str]:
    """``pixel_digest`` of each image, computed once per image object."""
    memo: dict[int, str] = {}
    for image in images:
        if id(image) not in memo:
            memo[id(image)] = pixel_digest(image)
    return [memo[id(image)] for image in images]


def _numpy(logits: Tensor) -> np.ndarray:
    return logits.detach().cpu().numpy()
