"""Modality-adaptive LLaMA decoder layer of mPLUG-Owl2, built from ``transformers`` Llama parts.

Text and visual positions share the query/output projections and the MLP, but each modality has
its own key/value projections and its own RMSNorms. Nothing global is patched: these are new
modules that reuse ``LlamaRMSNorm``, ``LlamaMLP`` and ``apply_rotary_pos_emb``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn
from transformers.cache_utils import Cache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm, apply_rotary_pos_emb

from .attention import attend
from .configuration import MPLUGOwl2Config

TEXT, VISUAL = 0, 1


class ModalitySpecific(nn.Module):
    """Two copies of a module, ``text`` and ``visual``; each position goes through its own copy.

    Both copies always run (possibly on zero rows), so every parameter takes part in each step,
    which distributed wrappers (DDP, ZeRO-3) expect.
    """

    def __init__(self, factory: Callable[[], nn.Module]):
        super().__init__()
        self.text = factory()
        self.visual = factory()

    def forward(self, hidden_states: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        """``(batch, length, width)`` -> ``(batch, length, out width)``; ``modality`` 0 = text, 1 = visual."""
        is_visual = modality == VISUAL
        text_out = self.text(hidden_states[~is_visual])
        output = text_out.new_empty(*hidden_states.shape[:-1], text_out.shape[-1])
        output[~is_visual] = text_out
        output[is_visual] = self.visual(hidden_states[is_visual])
        return output


class MPLUGOwl2Attention(nn.Module):
    """LLaMA self-attention with modality-specific key and value projections."""

    is_causal = True

    def __init__(self, config: MPLUGOwl2Config, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.head_dim
        self.num_key_value_groups = config.num_attention_heads // config.num_key_value_heads
        self.scaling = self.head_dim**-0.5
        width, bias = config.hidden_size, config.attention_bias
        kv_width = config.num_key_value_heads * self.head_dim
        self.q_proj = nn.Linear(width, config.num_attention_heads * self.head_dim, bias=bias)
        self.k_proj = ModalitySpecific(partial(nn.Linear, width, kv_width, bias=bias))
        self.v_proj = ModalitySpecific(partial(nn.Linear, width, kv_width, bias=bias))
        self.o_proj = nn.Linear(config.num_attention_heads * self.head_dim, width, bias=bias)

    def forward(
        self,
        hidden_states: torch.Tensor,
        modality: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None,
        cache: Cache | None = None,
    ) -> torch.Tensor:
        shape = (*hidden_states.shape[:-1], -1, self.head_dim)
        query = self.q_proj(hidden_states).view(shape).transpose(1, 2)
        key = self.k_proj(hidden_states, modality).view(shape).transpose(1, 2)
        value = self.v_proj(hidden_states, modality).view(shape).transpose(1, 2)
        cos, sin = position_embeddings
        query, key = apply_rotary_pos_emb(query, key, cos, sin)
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)
        context = attend(
            self, query, key, value, attention_mask, self.scaling, self.config.attention_dropout
        )
        return self.o_proj(context.reshape(*hidden_states.shape[:-1], -1))


class MPLUGOwl2DecoderLayer(GradientCheckpointingLayer):
    """Pre-norm LLaMA block whose two RMSNorms and k/v projections depend on the modality."""

    def __init__(self, config: MPLUGOwl2Config, layer_idx: int):
        super().__init__()
        width, eps = config.hidden_size, config.rms_norm_eps
        self.self_attn = MPLUGOwl2Attention(config, layer_idx)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = ModalitySpecific(partial(LlamaRMSNorm, width, eps=eps))
        self.post_attention_layernorm = ModalitySpecific(partial(LlamaRMSNorm, width, eps=eps))

    def forward(
        self,
        hidden_states: torch.Tensor,
        modality: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
    ) -> torch.Tensor:
        """One block; ``modality`` is ``(batch, length)`` with 0 = text, 1 = visual."""
        normed = self.input_layernorm(hidden_states, modality)
        hidden_states = hidden_states + self.self_attn(
            normed, modality, position_embeddings, attention_mask, cache=cache
        )
        normed = self.post_attention_layernorm(hidden_states, modality)
        return hidden_states + self.mlp(normed)
