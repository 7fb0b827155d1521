"""Visual abstractor of mPLUG-Owl2: learnable queries cross-attend to the vision tokens.

Module and parameter names follow the released checkpoints. The fixed sin-cos position tables
are recomputed here (non-persistent buffers) instead of being stored in every layer.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .attention import attend
from .configuration import MPLUGOwl2Config


def sincos_table_1d(width: int, positions: np.ndarray) -> np.ndarray:
    """Sin-cos table ``[sin(p * w), cos(p * w)]`` with ``w_j = 10000 ** (-j / (width / 2))``.

    Computed in float32 numpy, as the release does, so the tables match it bit for bit.
    """
    omega = np.arange(width // 2, dtype=np.float32) / (width / 2.0)
    omega = 1.0 / 10000**omega
    angles = np.einsum("m,d->md", positions.reshape(-1).astype(np.float32), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


class AbstractorAttention(nn.Module):
    """Multi-head attention of the queries over ``[queries; vision tokens]``, with position tables
    added to the queries and keys (not the values)."""

    is_causal = False
    num_key_value_groups = 1

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__()
        self.config = config
        settings = config.abstractor
        width = settings.hidden_size
        self.num_heads = settings.num_attention_heads
        self.head_dim = width // self.num_heads
        self.dropout = settings.attention_probs_dropout_prob
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(settings.encoder_hidden_size, width)
        self.value = nn.Linear(settings.encoder_hidden_size, width)

    def _heads(self, states: torch.Tensor) -> torch.Tensor:
        return states.view(*states.shape[:2], self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, queries, keys_values, query_pos, key_pos) -> torch.Tensor:
        query = self._heads(self.query(queries + query_pos))
        key = self._heads(self.key(keys_values + key_pos))
        value = self._heads(self.value(keys_values))
        if self.config._attn_implementation == "eager":
            context = self._eager(query, key, value)
        else:
            context = attend(self, query, key, value, None, self.head_dim**-0.5, self.dropout)
        return context.reshape(*queries.shape[:2], -1)

    def _eager(self, query, key, value) -> torch.Tensor:
        # The release divides the scores by sqrt(head_dim) (not a multiply by its inverse) and
        # takes the softmax in the input dtype; doing the same keeps "eager" bit-exact with it.
        scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(self.head_dim)
        probs = nn.functional.dropout(scores.softmax(dim=-1), self.dropout, self.training)
        return torch.matmul(probs, value).transpose(1, 2)


class AbstractorMLP(nn.Module):
    """SwiGLU feed-forward with a LayerNorm before the down projection."""

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__()
        settings = config.abstractor
        width, inner = settings.hidden_size, settings.intermediate_size
        self.w1 = nn.Linear(width, inner)
        self.w2 = nn.Linear(inner, width)
        self.w3 = nn.Linear(width, inner)
        self.ffn_ln = nn.LayerNorm(inner, eps=settings.layer_norm_eps)
        self.act = nn.SiLU()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.w2(self.ffn_ln(self.act(self.w1(hidden_states)) * self.w3(hidden_states)))


class AbstractorOutput(nn.Module):
    """Output projection and feed-forward of one abstractor layer."""

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__()
        width = config.abstractor.hidden_size
        self.out_proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)  # PyTorch's default eps, as released
        self.mlp = AbstractorMLP(config)

    def forward(self, context: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        hidden_states = residual + self.out_proj(context)
        return hidden_states + self.mlp(self.norm2(hidden_states))


class AbstractorCrossAttention(nn.Module):
    """norm1/normk, attention, output; the residual is the *normalised* queries, as released."""

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__()
        settings = config.abstractor
        self.attention = AbstractorAttention(config)
        self.output = AbstractorOutput(config)
        self.norm1 = nn.LayerNorm(settings.hidden_size)
        self.normk = nn.LayerNorm(settings.encoder_hidden_size)

    def forward(self, queries, image_tokens, query_pos, key_pos) -> torch.Tensor:
        queries = self.norm1(queries)
        keys_values = torch.cat([queries, self.normk(image_tokens)], dim=1)
        position = torch.cat([query_pos, key_pos], dim=0)
        context = self.attention(queries, keys_values, query_pos, position)
        return self.output(context, queries)


class AbstractorLayer(GradientCheckpointingLayer):
    """One abstractor layer (a wrapper kept for the released parameter names)."""

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__()
        self.crossattention = AbstractorCrossAttention(config)

    def forward(self, queries, image_tokens, query_pos, key_pos) -> torch.Tensor:
        return self.crossattention(queries, image_tokens, query_pos, key_pos)


class MPLUGOwl2VisualAbstractor(nn.Module):
    """Vision tokens ``(N, 1 + grid**2, vision width)`` -> ``(N, queries + 1, text width)``."""

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__()
        settings = config.abstractor
        width = settings.hidden_size
        self.query_embeds = nn.Parameter(torch.zeros(1, settings.num_learnable_queries, width))
        # A container only for the released names ``encoder.layers.{i}``.
        layers = nn.ModuleList(AbstractorLayer(config) for _ in range(settings.num_hidden_layers))
        self.encoder = nn.ModuleDict({"layers": layers})
        self.visual_fc = nn.Linear(width, config.hidden_size)
        self.vit_eos = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        query_pos, key_pos = self.position_tables(config)
        self.register_buffer("query_pos", query_pos, persistent=False)
        self.register_buffer("key_pos", key_pos, persistent=False)

    @staticmethod
    def position_tables(config: MPLUGOwl2Config) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed (query, key) position tables for ``config``.

        Query: ``(queries, width)``, the 1-D table of the query index. Key: ``(1 + grid**2, width)``,
        a zero row for CLS, then per patch (row-major) the column table in the first half of the
        channels and the row table in the second half.
        """
        settings = config.abstractor
        width, grid = settings.hidden_size, np.arange(settings.grid_size, dtype=np.float32)
        query = sincos_table_1d(width, np.arange(settings.num_learnable_queries, dtype=np.float32))
        columns, rows = np.meshgrid(grid, grid)
        key = np.concatenate([sincos_table_1d(width // 2, columns), sincos_table_1d(width // 2, rows)], axis=1)
        key = np.concatenate([np.zeros((1, width), dtype=np.float32), key], axis=0)
        return torch.from_numpy(query).float(), torch.from_numpy(key).float()

    def forward(self, image_tokens: torch.Tensor) -> torch.Tensor:
        queries = self.query_embeds.expand(image_tokens.shape[0], -1, -1)
        query_pos = self.query_pos.to(image_tokens.dtype)
        key_pos = self.key_pos.to(image_tokens.dtype)
        for layer in self.encoder.layers:
            queries = layer(queries, image_tokens, query_pos, key_pos)
        features = self.visual_fc(queries)
        eos = self.vit_eos.expand(features.shape[0], -1, -1)
        return torch.cat([features, eos], dim=1)
