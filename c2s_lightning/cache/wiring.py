"""How scorers get the comparison cache: which cache, under which key, wrapping which comparator.

An entry is keyed by the model fingerprint and by ``cache_protocol``: the protocol's comparison
fields (``comparison_fields``) plus the compute dtype or precision, which the fingerprint does not
see when a float32 export is loaded in bfloat16. The training datasets stay out, so protocols that
differ only there share entries; so does the device (CPU and GPU logits differ only by rounding).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from c2s_lightning.models.fingerprint import comparison_fields
from c2s_lightning.cache.caching_comparator import CachingComparator
from c2s_lightning.cache.store import ComparisonCache, default_cache_dir

CacheSetting = bool | str | os.PathLike | ComparisonCache | None
"""``True``: the user cache folder (``default_cache_dir()``, None when ``C2S_CACHE_DIR=off``); a
folder; a cache; False/None: off."""


def cache_protocol(protocol: Mapping[str, Any], **compute: Any) -> dict[str, Any]:
    """The part of a protocol dict (``ComparisonProtocol.to_dict()``) that keys the cache, with
    ``compute``: how the logits are computed besides the weights (``dtype=``, ``precision=``).

    Raises:
        KeyError: naming a missing field.
    """
    return {**comparison_fields(protocol), **{name: str(value) for name, value in compute.items()}}


def open_cache(setting: CacheSetting) -> ComparisonCache | None:
    """The cache a ``CacheSetting`` names, or None when caching is off."""
    if setting is True:
        setting = default_cache_dir()
    if setting is None or setting is False:
        return None
    return setting if isinstance(setting, ComparisonCache) else ComparisonCache(setting)


def cached_comparator(inner: Any, setting: CacheSetting, fingerprint: str, protocol: Mapping[str, Any]) -> Any:
    """``inner`` wrapped in a ``CachingComparator`` (``protocol`` as from ``cache_protocol``),
    or ``inner`` itself when ``setting`` turns caching off.

    A wrapped ``inner`` is taken out of lockstep (``FastComparator.lockstep = False``): each rank
    misses other pairs, so ranks have no common count of forwards to keep. Lockstep is needed only
    under sharded weights, where the callers turn the cache off.
    """
    cache = open_cache(setting)
    if cache is None:
        return inner
    if hasattr(inner, "lockstep"):
        inner.lockstep = False
    return CachingComparator(inner, cache, fingerprint, protocol)


def cache_counts(comparator: Any) -> dict[str, int] | None:
    """``{"computed", "reused"}`` of a caching comparator; None for any other."""
    return comparator.counts() if isinstance(comparator, CachingComparator) else None
