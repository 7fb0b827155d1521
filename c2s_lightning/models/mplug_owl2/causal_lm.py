"""mPLUG-Owl2 with its language-modelling head: training loss, scoring logits, generation."""

from __future__ import annotations

import torch
from torch import nn
from transformers import GenerationMixin
from transformers.cache_utils import Cache

from .configuration import MPLUGOwl2Config
from .modeling import CACHE_FIELD, MPLUGOwl2CausalLMOutput, MPLUGOwl2Model, MPLUGOwl2PreTrainedModel


class MPLUGOwl2ForCausalLM(MPLUGOwl2PreTrainedModel, GenerationMixin):
    """mPLUG-Owl2 for next-token prediction (``lm_head`` not tied to the embeddings)."""

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__(config)
        self.model = MPLUGOwl2Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        modality_indicators: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> MPLUGOwl2CausalLMOutput:
        """Logits for every position, and the shifted next-token loss when ``labels`` are given.

        The arguments not listed below are those of :meth:`MPLUGOwl2Model.forward`.

        Args:
            labels: ``(batch, length)`` aligned with ``input_ids``; ``-100`` is ignored, and visual
                positions are ignored automatically.
            logits_to_keep: If > 0, compute logits only for that many last positions; a 1-D
                tensor keeps those sequence positions (of the expanded layout), in its order.
            **kwargs: ``num_items_in_batch`` for the loss; ``past_key_values`` alias of ``cache``.

        Returns:
            :class:`MPLUGOwl2CausalLMOutput`; its ``attention_mask`` and ``modality_indicators``
            describe the expanded sequence the logits refer to.
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        outputs = self.model(
            input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask,
            position_ids=position_ids, cache=cache, inputs_embeds=inputs_embeds,
            modality_indicators=modality_indicators, labels=labels, use_cache=use_cache,
            output_hidden_states=output_hidden_states, **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        if isinstance(logits_to_keep, torch.Tensor):
            hidden_states = hidden_states[:, logits_to_keep.to(hidden_states.device)]
        elif logits_to_keep:
            hidden_states = hidden_states[:, -logits_to_keep:]
        logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=outputs.labels, vocab_size=self.config.vocab_size,
                num_items_in_batch=num_items_in_batch,
            )
        return MPLUGOwl2CausalLMOutput(
            loss=loss,
            logits=logits,
            **{CACHE_FIELD: getattr(outputs, CACHE_FIELD)},
            hidden_states=outputs.hidden_states,
            attention_mask=outputs.attention_mask,
            modality_indicators=outputs.modality_indicators,
        )

    def prepare_inputs_for_generation(self, input_ids, pixel_values=None, **kwargs):
        """Pass the images only while the step's ids still hold placeholders (the prefill)."""
        inputs = super().prepare_inputs_for_generation(input_ids, **kwargs)
        step_ids = inputs.get("input_ids")
        if step_ids is not None and (step_ids == self.config.image_token_index).any():
            inputs["pixel_values"] = pixel_values
        return inputs

    @torch.no_grad()
    def generate(self, input_ids=None, pixel_values=None, attention_mask=None, **kwargs):
        """``GenerationMixin.generate`` after expanding compact placeholders (see the forward).

        Batched prompts whose expanded lengths differ are left-padded here, as generation needs.
        """
        if input_ids is not None:
            input_ids, attention_mask, _ = self.model.expand_inputs(
                input_ids, pixel_values, attention_mask, padding_side="left"
            )
        return super().generate(
            input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask, **kwargs
        )


def lora_target_modules(names: tuple[str, ...] = ("q_proj", "v_proj")) -> str:
    """A peft ``target_modules`` regex for the language model's ``nn.Linear`` projections.

    Modality-specific projections are containers with ``text`` and ``visual`` Linear children,
    which peft cannot wrap by the container's name; this pattern names the Linears themselves
    (both branches), and only inside the decoder (``model.layers``), never the vision tower.

    Args:
        names: Projection names, e.g. ``("q_proj", "v_proj")`` or all of
            ``q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj``.

    Returns:
        A regex for ``peft.LoraConfig(target_modules=...)``.
    """
    modality_specific = {"k_proj", "v_proj"}
    alternatives = "|".join(
        rf"{name}\.(text|visual)" if name in modality_specific else name for name in names
    )
    return rf"^model\.layers\.\d+\.(self_attn|mlp)\.({alternatives})$"
