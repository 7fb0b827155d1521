"""Attention dispatch shared by the vision tower, the abstractor and the decoder.

Every attention block goes through ``transformers``' attention-function table, so the model's
``attn_implementation`` ("eager" or "sdpa") selects the kernel in all three parts at once.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.llama.modeling_llama import eager_attention_forward


def attend(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
) -> torch.Tensor:
    """Run the configured attention kernel; returns the context ``(batch, q_len, heads, head_dim)``.

    ``module`` is the calling block, carrying ``config`` (for ``_attn_implementation``), ``is_causal``
    and ``num_key_value_groups``. ``query`` is ``(batch, heads, q_len, head_dim)``, ``key`` and
    ``value`` are ``(batch, kv_heads, kv_len, head_dim)``; ``attention_mask`` is an additive float or
    boolean mask broadcastable to the scores, or None; ``dropout`` applies in training mode only.
    """
    implementation = module.config._attn_implementation or "eager"
    interface = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
    output, _ = interface(
        module, query, key, value, attention_mask, dropout=dropout if module.training else 0.0, scaling=scaling
    )
    return output
