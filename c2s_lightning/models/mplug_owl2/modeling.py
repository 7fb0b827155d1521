"""mPLUG-Owl2 as ``transformers`` models: the multimodal base model and the causal-LM head."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.models.llama.modeling_llama import LlamaRMSNorm, LlamaRotaryEmbedding

from .abstractor import MPLUGOwl2VisualAbstractor
from .configuration import MPLUGOwl2Config
from .decoder import MPLUGOwl2DecoderLayer
from .multimodal import expand_image_placeholders, merge_image_features, placeholder_layout
from .vision import MPLUGOwl2VisionModel, VisionEmbeddings

# transformers 5.2x renamed ``past_key_values`` to ``cache``, in the mask helper's keywords and in the
# output classes' fields; both names are read off the installed version (5.17 has the old ones).
_MASK_CACHE_KEYWORD = "cache" if "cache" in inspect.signature(create_causal_mask).parameters else "past_key_values"
CACHE_FIELD = "cache" if "cache" in {f.name for f in fields(BaseModelOutputWithPast)} else "past_key_values"


@dataclass
class MPLUGOwl2ModelOutput(BaseModelOutputWithPast):
    """Base-model output plus the sequence layout the decoder actually saw.

    Args:
        attention_mask: ``(batch, length)`` 2-D mask over the expanded sequence.
        modality_indicators: ``(batch, length)``, 1 at visual positions, 0 at text positions.
        labels: Labels in the expanded layout (None when none were given).
    """

    attention_mask: torch.Tensor | None = None
    modality_indicators: torch.Tensor | None = None
    labels: torch.Tensor | None = None


@dataclass
class MPLUGOwl2CausalLMOutput(CausalLMOutputWithPast):
    """Causal-LM output plus the expanded ``attention_mask`` and ``modality_indicators``."""

    attention_mask: torch.Tensor | None = None
    modality_indicators: torch.Tensor | None = None


class MPLUGOwl2PreTrainedModel(PreTrainedModel):
    """Shared ``transformers`` plumbing (weight init, attention and checkpointing flags)."""

    config_class = MPLUGOwl2Config
    config: MPLUGOwl2Config
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MPLUGOwl2DecoderLayer", "VisionLayer", "AbstractorLayer"]
    _supports_sdpa = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, VisionEmbeddings):
            init.normal_(module.cls_token, std=std)
            init.normal_(module.position_embedding, std=std)
        elif isinstance(module, MPLUGOwl2VisualAbstractor):
            init.normal_(module.query_embeds, std=std)
            init.normal_(module.vit_eos, std=std)
            query_pos, key_pos = module.position_tables(self.config)
            init.copy_(module.query_pos, query_pos)
            init.copy_(module.key_pos, key_pos)


class MPLUGOwl2Model(MPLUGOwl2PreTrainedModel):
    """Vision tower, abstractor and modality-adaptive LLaMA decoder (no LM head)."""

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__(config)
        self.vision_model = MPLUGOwl2VisionModel(config)
        self.visual_abstractor = MPLUGOwl2VisualAbstractor(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList(
            MPLUGOwl2DecoderLayer(config, index) for index in range(config.num_hidden_layers)
        )
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config=config)
        self.gradient_checkpointing = False
        self.post_init()

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Images ``(N, 3, H, W)`` -> visual tokens ``(N, queries + 1, hidden)`` for the decoder."""
        return self.visual_abstractor(self.vision_model(pixel_values))

    def expand_inputs(self, input_ids, pixel_values, attention_mask=None, labels=None, padding_side="right"):
        """Bring compact placeholders into the expanded layout (no-op when already expanded)."""
        num_images = 0 if pixel_values is None else pixel_values.shape[0]
        layout = placeholder_layout(
            input_ids, num_images, self.config.num_visual_tokens, self.config.image_token_index
        )
        if layout != "compact":
            return input_ids, attention_mask, labels
        return expand_image_placeholders(
            input_ids, self.config.num_visual_tokens, self.config.image_token_index,
            attention_mask, labels, pad_token_id=self.config.pad_token_id or 0, padding_side=padding_side,
        )

    def embed_inputs(self, input_ids, pixel_values=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Expanded ``input_ids`` -> ``(inputs_embeds, modality_indicators)``."""
        is_visual = input_ids == self.config.image_token_index
        embeds = self.embed_tokens(input_ids.masked_fill(is_visual, 0))
        if is_visual.any():
            if pixel_values is None:
                raise ValueError("input_ids hold image placeholders but no pixel_values were given")
            embeds = merge_image_features(embeds, is_visual, self.get_image_features(pixel_values))
        return embeds, is_visual.long()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        modality_indicators: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> MPLUGOwl2ModelOutput:
        """Run the decoder over text and image positions.

        Args:
            input_ids: ``(batch, length)`` token ids with image placeholders (compact or expanded).
            pixel_values: ``(num_images, 3, H, W)``, images in placeholder order over the batch.
            attention_mask: ``(batch, length)`` 1 = attend, 0 = padding.
            position_ids: ``(batch, length)``; default ``past + 0..length-1``.
            cache: A ``transformers`` cache for incremental decoding.
            inputs_embeds: Instead of ``input_ids``; then ``modality_indicators`` says which rows are
                visual (all text when omitted).
            modality_indicators: ``(batch, length)`` 0/1, only with ``inputs_embeds``.
            labels: Carried through the placeholder expansion (returned in the output).
            use_cache: Create and fill a ``DynamicCache`` when ``cache`` is None.
            output_hidden_states: Return the input of every layer plus the final normed states.
            **kwargs: ``past_key_values`` is accepted as an alias of ``cache``.
        """
        cache = kwargs.pop("past_key_values", cache)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Give exactly one of input_ids or inputs_embeds")
        if input_ids is not None:
            input_ids, attention_mask, labels = self.expand_inputs(
                input_ids, pixel_values, attention_mask, labels
            )
            inputs_embeds, modality_indicators = self.embed_inputs(input_ids, pixel_values)
        elif modality_indicators is None:
            modality_indicators = inputs_embeds.new_zeros(inputs_embeds.shape[:2], dtype=torch.long)
        hidden_states, all_hidden, cache = self._decode(
            inputs_embeds, modality_indicators, attention_mask, position_ids, cache, use_cache
        )
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        return MPLUGOwl2ModelOutput(
            last_hidden_state=hidden_states,
            **{CACHE_FIELD: cache},
            hidden_states=all_hidden if output_hidden_states else None,
            attention_mask=attention_mask,
            modality_indicators=modality_indicators,
            labels=labels,
        )

    def _decode(self, inputs_embeds, modality_indicators, attention_mask, position_ids, cache, use_cache):
        """The decoder stack; returns (normed last states, per-layer states, the cache used or None)."""
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and cache is None and not (self.gradient_checkpointing and self.training):
            cache = DynamicCache(config=self.config)
        if position_ids is None:
            start = cache.get_seq_length() if cache is not None else 0
            position_ids = (torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + start)[None]
        mask = create_causal_mask(
            config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask,
            position_ids=position_ids, **{_MASK_CACHE_KEYWORD: cache},
        )
        hidden_states = inputs_embeds
        position_embeddings = self.rotary_emb(hidden_states, position_ids=position_ids)
        all_hidden = []
        for layer in self.layers:
            all_hidden.append(hidden_states)
            hidden_states = layer(
                hidden_states, modality_indicators, position_embeddings, mask, cache=cache
            )
        hidden_states = self.norm(hidden_states)
        # As in transformers' LLaMA: the last entry is the normed output, not the raw last layer.
        all_hidden.append(hidden_states)
        return hidden_states, tuple(all_hidden), cache
