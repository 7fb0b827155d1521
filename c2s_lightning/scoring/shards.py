"""Equal-length strided shards of a list of images, for scoring with several processes.

Rank ``r`` of ``world`` takes items ``r, r + world, r + 2 world, ...``, padded to ``ceil(n / world)``
by repeating an item, because under ZeRO-3 or FSDP a rank with one forward more than the others
waits for ever (docs/gpu.md); padded scores are dropped. No Lightning import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def padded_shard(n: int, world: int, rank: int) -> tuple[list[int], list[int]]:
    """``(own, padded)``: rank ``rank``'s strided item indices, and the list to score: the same padded
    to ``ceil(n / world)`` by repeating its first item (item 0 when the shard is empty: more ranks
    than items) at the end, so ``scores[:len(own)]`` are the rank's real scores."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"need 0 <= rank < world, got rank {rank} of world {world}")
    if n < 1:
        raise ValueError(f"need at least one item to shard, got {n}")
    own = list(range(rank, n, world))
    return own, own + [own[0] if own else 0] * (math.ceil(n / world) - len(own))


def merge_strided(parts: Sequence[torch.Tensor], n: int) -> torch.Tensor:
    """The ``n`` scores in item order from every rank's padded shard scores (rank order).

    Position ``j`` of rank ``r`` holds item ``r + j * world``; the padding holds items ``>= n``
    in that numbering, so it falls off the end.
    """
    lengths = {len(p) for p in parts}
    if len(lengths) != 1:
        raise ValueError(f"shards must have one length, got {sorted(lengths)}")
    if len(parts) * lengths.pop() < n:
        raise ValueError(f"{len(parts)} shards cannot hold {n} items")
    return torch.stack(list(parts), dim=1).reshape(-1)[:n]
