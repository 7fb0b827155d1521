"""``load_scorer``: a scorer over an exported checkpoint and its own anchor bank (``api.score_images`` wraps it)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from c2s_lightning.cache.store import ComparisonCache
from c2s_lightning.cache.wiring import CacheSetting, cache_protocol, cached_comparator, open_cache
from c2s_lightning.data.image_checks import unreadable_images
from c2s_lightning.data.records import DatasetError
from c2s_lightning.infra.input_files import not_regular_reason
from c2s_lightning.models.protocol import ANCHORS_FILE, PROTOCOL_FILE, ComparisonProtocol, has_protocol
from c2s_lightning.scoring.bank import AnchorBank
from c2s_lightning.scoring.scorer import Compare2Scorer


def export_bank(checkpoint: str | os.PathLike, anchors: str | os.PathLike | AnchorBank | None) -> AnchorBank:
    """``anchors`` as a bank; None: the export's own ``anchors.json``."""
    if isinstance(anchors, AnchorBank):
        return anchors
    if anchors is None:
        anchors = Path(checkpoint) / ANCHORS_FILE
        if not anchors.is_file():
            raise FileNotFoundError(f"{checkpoint} holds no {ANCHORS_FILE} (exports written by `fit` do): give an "
                                    "anchor bank (--anchors), or build one with `python -m c2s_lightning anchors build`")
    if special := not_regular_reason(anchors):  # reading a FIFO would block for ever
        raise ValueError(f"anchor bank {special}")
    return AnchorBank.load(anchors)


def check_before_loading(checkpoint: str | os.PathLike, bank: AnchorBank, batch_size: int, workers: int,
                         cache: CacheSetting) -> ComparisonCache | None:
    """What can be found wrong before the weights load (seconds to minutes for a 7B model) is found
    here: the batch size, the export's protocol file, anchor images that are missing or do not decode,
    a comparison cache that is not one (``ProtocolError``, ``DatasetError``, ``CacheError``, ...).
    Returns the opened cache (None: off)."""
    for name, value, least in (("batch_size", batch_size, 1), ("workers", workers, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    if has_protocol(checkpoint):
        ComparisonProtocol.load(checkpoint).check_current(str(Path(checkpoint) / PROTOCOL_FILE))
    paths = [anchor.path for anchor in bank.anchors]
    missing = [f"anchor {k} image {path}" for k, path in enumerate(paths) if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]} is missing or not a regular file ({len(missing)} of "
                                f"{len(paths)} anchor images); the bank must carry its images")
    if bad := unreadable_images(paths, "full"):
        path, reason = next(iter(bad.items()))
        raise DatasetError(f"anchor image {path} cannot be read ({reason}); {len(bad)} of {len(paths)} anchor "
                           "images are unreadable: rebuild the bank (anchors build)")
    opened = open_cache(cache)
    if opened is not None:
        opened.get_many([])  # opens the database: a file that is no cache fails now
    return opened


def refuse_stale_bank(bank: AnchorBank, checkpoint: str | os.PathLike, pad_to_square: bool | None) -> None:
    """Fail before loading the weights when the export's recorded model fingerprint already shows
    that the bank's matrix is not its model's (the scorer then checks the folder as it is now)."""
    if bank.matrix is not None and has_protocol(checkpoint):
        protocol = ComparisonProtocol.load(checkpoint)
        preprocessing = protocol.image_preprocessing
        if pad_to_square is not None:  # the scorer reports the override; here it only has to be applied
            preprocessing = {**preprocessing, "pad_to_square": bool(pad_to_square)}
        bank.matrix_for(protocol.model_fingerprint or protocol.weights_fingerprint, preprocessing)


def load_scorer(checkpoint: str | os.PathLike, anchors: str | os.PathLike | AnchorBank | None = None,
                batch_size: int = 16, recompute_anchors: bool = False, device: str | None = None,
                dtype: str = "float32", pad_to_square: bool | None = None, cache: CacheSetting = True,
                lockstep: bool = False, **options) -> Compare2Scorer:
    """A scorer over an exported folder (``export_pretrained``), with its protocol and anchor bank.

    Args:
        checkpoint: Exported model folder (merged weights or a LoRA adapter folder).
        anchors: Anchor bank JSON (``anchors build``) or an ``AnchorBank``; default: the export's
            own ``anchors.json``.
        batch_size: Image pairs per forward pass.
        recompute_anchors: Recompute the anchor matrix, even if the bank holds one.
        device: Where the model runs (``cuda``, ``cpu``, ...); default: the first GPU if any.
        dtype: Weight dtype: ``float32``, ``bfloat16`` or ``float16`` (a 7B model in float32 needs
            ~33 GB of memory; bfloat16 halves it).
        pad_to_square: Override the export's image preprocessing (logged); None: as trained.
        cache: The comparison cache: True (default) the user cache folder (``<cache root>/comparisons``,
            ``cache_folders``; off when ``C2S_CACHE_DIR=off``), a folder, a ``ComparisonCache``, or False
            (off). Keyed by the export's model fingerprint (weights, config, tokenizer, processor, chat
            template, protocol) and ``dtype``, so no other model or dtype ever hits.
        lockstep: Every process scores in the same calls (``score --devices``): each runs as many
            forwards per call as the busiest (``FastComparator``); off while the cache is on.
        **options: Further ``Compare2Scorer`` options (``matrix``, ``temperature``, ``link``, ``workers``, ...).
    """
    from c2s_lightning.models.export import load_export
    from c2s_lightning.models.fast_comparator import FastComparator

    bank = export_bank(checkpoint, anchors)
    cache = check_before_loading(checkpoint, bank, batch_size, options.get("workers", 0), cache)
    if not recompute_anchors:
        refuse_stale_bank(bank, checkpoint, pad_to_square)
    backbone, protocol = load_export(checkpoint, dtype=dtype)
    backbone.model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    scorer = Compare2Scorer(FastComparator(backbone, lockstep=lockstep), bank, batch_size=batch_size, protocol=protocol,
                            pad_to_square=pad_to_square, recompute_anchors=recompute_anchors, **options)
    # keyed on the protocol the scorer applies (with any pad_to_square override) and the dtype
    key = cache_protocol(scorer.protocol.to_dict(), dtype=dtype)
    scorer.comparator = cached_comparator(scorer.comparator, cache, backbone.model_id, key)
    return scorer
