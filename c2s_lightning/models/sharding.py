"""FSDP2 for ``Compare2ScoreModule`` under Lightning's ``ModelParallelStrategy`` (also on CPU).

Lightning refuses ``fsdp`` and ``deepspeed`` without a GPU; ``ModelParallelStrategy`` leaves the
sharding to ``configure_model``, where torch's ``fully_shard`` runs on gloo as on NCCL. Each
transformer block (``_no_split_modules``) is its own unit; the root unit holds the rest and is
gathered around ``forward`` and ``get_image_features`` (called alone in scoring). No Lightning import."""

from __future__ import annotations

import torch


def shard_blocks(model: torch.nn.Module, mesh) -> None:
    """Shard ``model`` in place with FSDP2 over ``mesh`` (1-D, data parallel)."""
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    blocks = set(getattr(base, "_no_split_modules", None) or ())
    for unit in [m for m in model.modules() if type(m).__name__ in blocks]:
        fully_shard(unit, mesh=mesh)
    fully_shard(model, mesh=mesh)
    if hasattr(model, "get_image_features"):  # FastComparator's vision phase calls it, not forward
        register_fsdp_forward_method(model, "get_image_features")
