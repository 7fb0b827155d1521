"""Where ``transformers`` releases differ, the form the installed one takes, read off its signatures.

Floor 5.17 (constraints-floor.txt), pin 5.24 (constraints.txt). Each choice inspects the installed
function, never a version number, and no name is left for a ``**kwargs`` to swallow silently.
``past_key_values`` -> ``cache`` in the mask helper and output fields: ``mplug_owl2/modeling.py``.
"""

from __future__ import annotations

import functools
import inspect
import logging

import torch
import transformers
from transformers.modeling_outputs import BaseModelOutputWithPooling

log = logging.getLogger(__name__)


def forward_parameters(model) -> frozenset[str]:
    """Names the model's ``forward`` declares (under a peft wrapper, the wrapped model's)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return frozenset(inspect.signature(base.forward).parameters)


def cache_argument(model) -> str:
    """The forward argument for a key/value cache: ``cache`` (5.2x) or ``past_key_values`` (5.17)."""
    return "cache" if "cache" in forward_parameters(model) else "past_key_values"


def image_token_id(config) -> int | None:
    """The id of the image placeholder token: ``image_token_id``, or ``image_token_index`` on a config that
    has only that name (LLaVA's configs answer to both)."""
    return getattr(config, "image_token_id", None) or getattr(config, "image_token_index", None)


def image_inputs(model, ids: torch.Tensor, features: list[torch.Tensor]) -> dict:
    """Forward arguments for ``ids`` [rows, L] whose image tokens take ``features`` (one [k, hidden]
    per image, in token order): ``mm_encoder_outputs`` where declared (5.2x), else ``inputs_embeds``
    (5.17 would ignore it, giving every image the same logits: docs/versions.md)."""
    if "mm_encoder_outputs" in forward_parameters(model):
        return {"input_ids": ids, "mm_encoder_outputs": {"image": BaseModelOutputWithPooling(pooler_output=features)}}
    _note_embedding_path()
    token = image_token_id(model.config)
    embeds = model.get_input_embeddings()(ids)
    slots, rows = (ids == token).unsqueeze(-1), torch.cat(features).to(embeds.device, embeds.dtype)
    if int(slots.sum()) != rows.shape[0]:
        raise RuntimeError(f"{int(slots.sum())} image tokens but {rows.shape[0]} cached feature rows")
    return {"inputs_embeds": embeds.masked_scatter(slots, rows)}


@functools.cache
def _note_embedding_path() -> None:
    log.info("transformers %s has no mm_encoder_outputs: cached image features enter as inputs_embeds",
             transformers.__version__)


def enable_checkpointing(model) -> None:
    """Non-reentrant activation checkpointing: ``activation_checkpointing_enable`` on 5.2x (the old
    name warns there), ``gradient_checkpointing_enable`` on 5.17."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
