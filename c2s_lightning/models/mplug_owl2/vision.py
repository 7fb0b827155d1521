"""Vision tower of mPLUG-Owl2: a CLIP-style pre-norm ViT.

Parameter names follow the released checkpoints (``embeddings.patch_embed``,
``encoder.layers.{i}.self_attn.query_key_value`` ...), so they load without renaming.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer

from .attention import attend
from .configuration import MPLUGOwl2Config


class VisionEmbeddings(nn.Module):
    """Patchify (conv without bias), prepend CLS, add learned positions, pre-norm."""

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__()
        vision = config.vision
        width, patch = vision.hidden_size, vision.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.patch_embed = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        self.position_embedding = nn.Parameter(torch.zeros(1, 1 + vision.grid_size**2, width))
        self.pre_layernorm = nn.LayerNorm(width, eps=vision.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embed(pixel_values.to(self.patch_embed.weight.dtype)).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        tokens = torch.cat([cls, patches], dim=1) + self.position_embedding
        return self.pre_layernorm(tokens)


class VisionAttention(nn.Module):
    """Bidirectional self-attention with a fused, per-head interleaved q/k/v projection."""

    is_causal = False
    num_key_value_groups = 1

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__()
        self.config = config
        vision = config.vision
        self.num_heads = vision.num_attention_heads
        self.head_dim = vision.hidden_size // self.num_heads
        self.dropout = vision.attention_dropout
        self.query_key_value = nn.Linear(vision.hidden_size, 3 * vision.hidden_size)
        self.dense = nn.Linear(vision.hidden_size, vision.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden_states.shape
        # The release lays the fused output out as (heads, 3, head_dim) per token.
        qkv = self.query_key_value(hidden_states).view(batch, length, self.num_heads, 3, self.head_dim)
        query, key, value = qkv.permute(3, 0, 2, 1, 4).unbind(0)
        context = attend(self, query, key, value, None, self.head_dim**-0.5, self.dropout)
        return self.dense(context.reshape(batch, length, width))


class VisionMLP(nn.Module):
    def __init__(self, config: MPLUGOwl2Config):
        super().__init__()
        vision = config.vision
        self.fc1 = nn.Linear(vision.hidden_size, vision.intermediate_size)
        self.fc2 = nn.Linear(vision.intermediate_size, vision.hidden_size)
        self.act = ACT2FN[vision.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(hidden_states)))


class VisionLayer(GradientCheckpointingLayer):
    """Pre-norm transformer block."""

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__()
        vision = config.vision
        self.input_layernorm = nn.LayerNorm(vision.hidden_size, eps=vision.layer_norm_eps)
        self.self_attn = VisionAttention(config)
        self.post_attention_layernorm = nn.LayerNorm(vision.hidden_size, eps=vision.layer_norm_eps)
        self.mlp = VisionMLP(config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.self_attn(self.input_layernorm(hidden_states))
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))


class MPLUGOwl2VisionModel(nn.Module):
    """Images ``(N, 3, H, W)`` -> tokens ``(N, 1 + grid**2, vision width)`` after ``post_layernorm``."""

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__()
        self.embeddings = VisionEmbeddings(config)
        # A container only for the released names ``encoder.layers.{i}``.
        layers = nn.ModuleList(VisionLayer(config) for _ in range(config.vision.num_hidden_layers))
        self.encoder = nn.ModuleDict({"layers": layers})
        self.post_layernorm = nn.LayerNorm(config.vision.hidden_size, eps=config.vision.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Encode images; all tokens (CLS and patches) are returned, as the abstractor reads them all."""
        hidden_states = self.embeddings(pixel_values)
        for layer in self.encoder.layers:
            hidden_states = layer(hidden_states)
        return self.post_layernorm(hidden_states)
