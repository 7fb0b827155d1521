"""Build the vision-language backbone: a Hugging Face model, its processor and the answer tokens.

``build_backbone`` is a plain function (torchtune-style builder): a hub id or local folder is
loaded with ``AutoModelForImageTextToText`` + ``AutoProcessor``; a tiny family name builds a toy
model in-process. Either way the five level words are checked to be single tokens at the answer
position before anything trains on them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tokenizers import AddedToken
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer, PreTrainedModel

# From its module: transformers 5.17's top-level name is a placeholder that demands torchvision.
from transformers.models.auto.image_processing_auto import AutoImageProcessor

from c2s_lightning.data import prompts
from c2s_lightning.data.levels import LEVELS
from c2s_lightning.models import mplug_owl2
from c2s_lightning.models.encoding import AnswerWordError, ComparisonEncoder
from c2s_lightning.models.processors import ImageOnlyQwen2VLProcessor
from c2s_lightning.models.quiet_loading import no_transformers_bars
from c2s_lightning.models.tiny import TINY_DEFAULTS, TINY_FAMILIES, build_tiny

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

_IMAGE_ONLY_QWEN = ("qwen2_vl", "qwen2_5_vl")  # their processors need torchvision for video
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # owner/name, as the hub spells repository ids

@dataclass
class Backbone:
    """A model with everything needed to feed it comparisons and read its answers.

    Attributes:
        model: The Hugging Face image-text-to-text model (possibly wrapped by peft later).
        processor: Its processor (tokenizer, image processor, chat template).
        family: The model type, e.g. ``"llava"``, ``"qwen2_vl"``, ``"idefics3"``,
            ``"mplug_owl2_native"`` (the native mPLUG-Owl2 port, whichever folder it came from).
        encoder: Picklable ``ComparisonEncoder`` over ``processor``.
        level_token_ids: Token id of each word of ``LEVELS`` at the answer position, in order.
        rating_token_ids: Same for ``RATING_LEVELS``, or None when not checked/usable.
        model_id: Names the weights (hub id, folder, or ``"tiny-llava@seed0"``); tags anchor banks.
        build_args: Keyword arguments of ``build_backbone`` that rebuild these base weights
            (an exported LoRA adapter records them to find its base).
    """

    model: PreTrainedModel
    processor: object
    family: str
    encoder: ComparisonEncoder
    level_token_ids: list[int]
    rating_token_ids: list[int] | None
    model_id: str
    build_args: dict = field(default_factory=dict)


def build_backbone(model: str = "tiny-llava", *, dtype: str = "float32", attn_implementation: str | None = None,
                   add_level_tokens: bool = False, rating: bool | None = None, image_size: int | None = None,
                   seed: int = 0, **tiny_kwargs) -> Backbone:
    """Load or build a backbone and check its answer words.

    Args:
        model: Hub id or local folder (LLaVA 1.5/NeXT, Qwen2-VL/2.5-VL, Idefics3, anything
            ``AutoModelForImageTextToText`` loads), a local mPLUG-Owl2 folder (the released
            mPLUG-Owl2 / Compare2Score weights, or one written by ``export_pretrained``), or a
            tiny family: ``"tiny-llava"`` (default, fastest), ``"tiny-llava-next"``,
            ``"tiny-qwen2-vl"``, ``"tiny-idefics3"``, ``"tiny-mplug-owl2"``.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        attn_implementation: Passed to Hugging Face (``"sdpa"``, ``"eager"``, ``"flash_attention_2"``).
        add_level_tokens: Add answer words that split into several tokens to the vocabulary
            (and resize the embeddings) instead of raising.
        rating: Check the single-image rating words too: True requires them, None uses them when
            they are single tokens (else ``rating_token_ids`` is None), False skips them.
        image_size: Tiny models: the vision input size. Hub Qwen2-VL: the target pixel area is
            ``image_size**2``. Other hub models have a fixed input size and reject it.
        seed: Seed of a tiny model's random weights.
        **tiny_kwargs: Tiny models only: overrides of ``TINY_DEFAULTS`` (``patch_size``,
            ``hidden_size``, ``num_layers``, ...).

    Raises:
        AnswerWordError: A level word (or required rating word) is not a single token.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if model in TINY_FAMILIES or (str(model).startswith("tiny-") and not os.path.exists(model)):
        sizes = dict(tiny_kwargs, **({"image_size": image_size} if image_size else {}))
        net, processor = build_tiny(model, seed=seed, **sizes)
        net = net.to(DTYPES[dtype])
        model_id = tiny_model_id(model, seed, sizes)
        if attn_implementation:
            net.set_attn_implementation(attn_implementation)
    else:
        if tiny_kwargs:
            raise TypeError(f"{sorted(tiny_kwargs)} only apply to tiny models, not {model!r}")
        check_model_name(model)  # before any hub call
        net, processor = _load_pretrained(model, DTYPES[dtype], attn_implementation, image_size)
        model_id = str(model)
    backbone = assemble_backbone(net, processor, model_id=model_id, add_level_tokens=add_level_tokens, rating=rating)
    backbone.build_args = dict(model=str(model), dtype=dtype, add_level_tokens=add_level_tokens, rating=rating,
                               image_size=image_size, seed=seed, **tiny_kwargs)
    return backbone


def check_model_name(model: str) -> None:
    """Fail at once, before any hub call, on a ``model`` that cannot load: neither a tiny family,
    nor an existing local folder, nor a hub id ``owner/name``; or, with ``HF_HUB_OFFLINE`` set, a
    hub id missing from the local cache (instead of a network error after the hub's retries).

    Raises:
        ValueError: one line naming ``model``, the known families and the closest of them.
    """
    model = str(model)
    if model in TINY_FAMILIES or Path(model).expanduser().is_dir():
        return
    if Path(model).expanduser().exists():
        raise ValueError(f"model {model!r} is a file; give the model's folder (the one holding config.json)")
    owner = model.split("/", 1)[0]
    if _HUB_ID.fullmatch(model) and not Path(owner).is_dir():
        _check_offline_cache(model)
        return
    if "/" in model or model.startswith((".", "~")):
        raise ValueError(f"model {model!r}: no such folder" + (
            f" ({owner}/ exists here, so this is not taken for a hub id)" if _HUB_ID.fullmatch(model) else ""))
    from c2s_lightning.infra.user_errors import suggestion

    raise ValueError(f"unknown model {model!r}: not a tiny family ({', '.join(TINY_FAMILIES)}), an existing "
                     "folder or a hub id (owner/name)" + suggestion(model, TINY_FAMILIES))


def _check_offline_cache(hub_id: str) -> None:
    flags = [name for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
             if os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")]
    if not flags:
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(hub_id, "config.json"), str):
        raise ValueError(f"model {hub_id!r} is not in the local Hugging Face cache and {flags[0]} is set: "
                         f"download it where the hub is reachable (hf download {hub_id}) or give its folder")


def tiny_model_id(name: str, seed: int, sizes: dict) -> str:
    """``"tiny-llava@seed0"``, plus the sizes that differ from ``TINY_DEFAULTS``."""
    suffix = ",".join(f"{k}={v}" for k, v in sorted(sizes.items()) if TINY_DEFAULTS.get(k) != v)
    return f"{name}@seed{seed}" + (f"[{suffix}]" if suffix else "")


def assemble_backbone(model, processor, *, model_id: str, add_level_tokens: bool = False,
                      rating: bool | None = None) -> Backbone:
    """Wrap an already built model and processor: check the answer words (the arguments and the
    ``AnswerWordError`` are ``build_backbone``'s), make the encoder."""
    encoder = ComparisonEncoder(processor)
    checks = {"level": (prompts.COMPARISON_PROMPT, prompts.COMPARISON_ANSWER, LEVELS)}
    if rating is not False:
        checks["rating"] = (prompts.RATING_PROMPT, prompts.RATING_ANSWER, prompts.RATING_LEVELS)
    ids: dict[str, list[int] | None] = {}
    for name, (prompt, answer, words) in checks.items():
        try:
            ids[name] = encoder.answer_word_ids(prompt, answer, words)
        except AnswerWordError:
            if add_level_tokens and _add_word_tokens(model, processor, words):
                ids[name] = encoder.answer_word_ids(prompt, answer, words)
            elif name == "rating" and rating is None:
                ids[name] = None
            else:
                raise
    return Backbone(
        model=model, processor=processor, family=model.config.model_type, encoder=encoder,
        level_token_ids=ids["level"], rating_token_ids=ids.get("rating"), model_id=model_id,
    )


def _add_word_tokens(net, processor, words) -> bool:
    """Add ``words`` as whole tokens and grow the embeddings; False if nothing was added.

    ``lstrip`` lets the token absorb the space before it, so ``"is superior"`` becomes
    ``is`` + ``superior`` rather than a stray space token followed by the word.
    """
    tokens = [AddedToken(w, single_word=True, lstrip=True, normalized=False) for w in words]
    if processor.tokenizer.add_tokens(tokens) == 0:
        return False
    net.resize_token_embeddings(len(processor.tokenizer))
    return True


@no_transformers_bars()
def _load_pretrained(name: str, dtype, attn_implementation, image_size):
    if mplug_owl2.folder_format(name) is not None:  # not an AutoConfig model type
        if image_size:
            raise ValueError("image_size applies to tiny and Qwen2-VL models, not an mPLUG-Owl2 folder")
        return mplug_owl2.load_folder(name, dtype, attn_implementation)
    config = AutoConfig.from_pretrained(name)
    net = AutoModelForImageTextToText.from_pretrained(name, dtype=dtype, attn_implementation=attn_implementation)
    if config.model_type in _IMAGE_ONLY_QWEN:
        tokenizer = AutoTokenizer.from_pretrained(name)
        processor = ImageOnlyQwen2VLProcessor(AutoImageProcessor.from_pretrained(name), tokenizer,
                                              chat_template=tokenizer.chat_template)
        if image_size:
            area = image_size**2
            processor.image_processor.size = {"shortest_edge": area, "longest_edge": area}
    else:
        if image_size:
            raise ValueError(f"image_size applies to tiny and Qwen2-VL models, not {config.model_type!r}")
        processor = AutoProcessor.from_pretrained(name)
    return net.eval(), processor
