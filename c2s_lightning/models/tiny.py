"""Tiny vision-language models with random weights, built in-process (tests, CPU smoke runs).

Each tiny family mirrors a real Hugging Face architecture at toy size, with a WordPiece tokenizer
over the project's prompt vocabulary, so every code path (chat template, image-token expansion,
label masking, LoRA, export) runs without a download. Sizes are keyword arguments; the defaults
are a tiny LLaVA measured to learn the comparison task on a CPU (~120k parameters).
"""

from __future__ import annotations

import torch
from transformers import (
    Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor, Idefics3VisionConfig, LlamaConfig,
    LlavaConfig, LlavaForConditionalGeneration, LlavaNextConfig, LlavaNextForConditionalGeneration,
    LlavaNextImageProcessorPil, LlavaNextProcessor, LlavaProcessor, Qwen2VLConfig, Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessorPil, SiglipImageProcessorPil, SiglipVisionConfig,
)

# From its module: transformers 5.17's top-level name is a placeholder that demands torchvision.
from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

from c2s_lightning.models.mplug_owl2 import MPLUGOwl2ForCausalLM, MPLUGOwl2Processor, tiny_mplug_owl2_config
from c2s_lightning.models.processors import ImageOnlyQwen2VLProcessor
from c2s_lightning.models.tiny_tokenizer import tiny_tokenizer

TINY_DEFAULTS = dict(
    image_size=32, patch_size=8, vision_hidden_size=32, vision_layers=2, vision_heads=4,  # vision tower
    hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2,  # language model
)
"""Default sizes of every tiny family; ``build_backbone(..., **tiny_kwargs)`` overrides them."""


def _text_sizes(tokenizer, s: dict) -> dict:
    """The language model's sizes and special tokens, named as ``LlamaConfig`` (and the port) name them."""
    return dict(
        vocab_size=len(tokenizer), hidden_size=s["hidden_size"], intermediate_size=s["intermediate_size"],
        num_hidden_layers=s["num_layers"], num_attention_heads=s["num_heads"],
        num_key_value_heads=s["num_kv_heads"], max_position_embeddings=1024, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )


def _vision_sizes(s: dict) -> dict:
    """The vision tower's sizes, named as SigLIP, Idefics3 and the mPLUG-Owl2 port name them."""
    return dict(
        hidden_size=s["vision_hidden_size"], intermediate_size=2 * s["vision_hidden_size"],
        num_hidden_layers=s["vision_layers"], num_attention_heads=s["vision_heads"],
        image_size=s["image_size"], patch_size=s["patch_size"],
    )


def _llava_arguments(tokenizer, s: dict) -> tuple[dict, dict]:
    """The config and processor arguments LLaVA and LLaVA-NeXT share."""
    config = dict(
        # LLaVA reads patch features; an unused pooling head breaks DDP
        vision_config=SiglipVisionConfig(**_vision_sizes(s), vision_use_head=False),
        text_config=LlamaConfig(**_text_sizes(tokenizer, s)),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="full",  # SigLIP has no CLS token to drop
        vision_feature_layer=-1,
    )
    processing = dict(tokenizer=tokenizer, patch_size=s["patch_size"], vision_feature_select_strategy="full",
                      chat_template=tokenizer.chat_template)
    return config, processing


def _llava(s: dict):
    config, processing = _llava_arguments(tiny_tokenizer("llava"), s)
    config = LlavaConfig(**config, image_seq_length=(s["image_size"] // s["patch_size"]) ** 2)
    image_processor = SiglipImageProcessorPil(size={"height": s["image_size"], "width": s["image_size"]})
    return LlavaForConditionalGeneration(config), LlavaProcessor(image_processor=image_processor, **processing)


def _llava_next(s: dict):
    config, processing = _llava_arguments(tiny_tokenizer("llava_next"), s)
    side = s["image_size"]
    pinpoints = [[side, side], [side, 2 * side], [2 * side, side]]
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}, image_grid_pinpoints=pinpoints,
    )
    return (LlavaNextForConditionalGeneration(LlavaNextConfig(**config, image_grid_pinpoints=pinpoints)),
            LlavaNextProcessor(image_processor=image_processor, **processing))


def _qwen2_vl(s: dict):
    tokenizer = tiny_tokenizer("qwen2_vl")
    ids = tokenizer.convert_tokens_to_ids
    head_dim = s["hidden_size"] // s["num_heads"]
    text = LlamaConfig(**_text_sizes(tokenizer, s)).to_dict()
    text.update(rope_parameters={"rope_type": "default", "mrope_section": _mrope_section(head_dim)})
    vision = dict(
        depth=s["vision_layers"], embed_dim=s["vision_hidden_size"], hidden_size=s["hidden_size"],
        num_heads=s["vision_heads"], patch_size=s["patch_size"], spatial_merge_size=2, temporal_patch_size=2,
    )
    config = Qwen2VLConfig(
        text_config=text, vision_config=vision,
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )
    pixels = s["image_size"] ** 2
    image_processor = Qwen2VLImageProcessorPil(size={"shortest_edge": pixels, "longest_edge": pixels},
                                               patch_size=s["patch_size"], merge_size=2, temporal_patch_size=2)
    processor = ImageOnlyQwen2VLProcessor(image_processor, tokenizer, chat_template=tokenizer.chat_template)
    return Qwen2VLForConditionalGeneration(config), processor


def _mrope_section(head_dim: int) -> list[int]:
    """Split the rotary half-dimension over (time, height, width) like Qwen2-VL's 16/24/24."""
    half = head_dim // 2
    return [half - 2 * (3 * half // 8), 3 * half // 8, 3 * half // 8]


def _idefics3(s: dict):
    tokenizer = tiny_tokenizer("idefics3")
    scale = 2
    config = Idefics3Config(
        vision_config=Idefics3VisionConfig(**_vision_sizes(s)), text_config=LlamaConfig(**_text_sizes(tokenizer, s)),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), scale_factor=scale,
        pad_token_id=tokenizer.pad_token_id,
    )
    side = s["image_size"]
    image_processor = Idefics3ImageProcessorPil(
        do_image_splitting=False, size={"longest_edge": side}, max_image_size={"longest_edge": side},
    )
    processor = Idefics3Processor(
        image_processor, tokenizer, image_seq_len=(side // s["patch_size"]) ** 2 // scale**2,
        chat_template=tokenizer.chat_template,
    )
    return Idefics3ForConditionalGeneration(config), processor


def _mplug_owl2(s: dict):
    """The native mPLUG-Owl2 port: the abstractor is as wide and deep as the vision tower."""
    tokenizer = tiny_tokenizer("mplug_owl2")
    abstractor = dict(
        num_learnable_queries=8, hidden_size=s["vision_hidden_size"],
        num_hidden_layers=s["vision_layers"], num_attention_heads=s["vision_heads"],
        intermediate_size=2 * s["vision_hidden_size"], encoder_hidden_size=s["vision_hidden_size"],
        grid_size=s["image_size"] // s["patch_size"],
    )
    config = tiny_mplug_owl2_config(
        **_text_sizes(tokenizer, s), vision_config=_vision_sizes(s), abstractor_config=abstractor,
        # At toy width the default 0.02 leaves ~1% of the abstractor's output image-dependent
        # (queries dominate) and the model does not learn to compare; 0.1 does (measured).
        initializer_range=0.1,
    )
    return MPLUGOwl2ForCausalLM(config), MPLUGOwl2Processor.for_config(tokenizer, config)


TINY_FAMILIES = {
    "tiny-llava": _llava,
    "tiny-llava-next": _llava_next,
    "tiny-qwen2-vl": _qwen2_vl,
    "tiny-idefics3": _idefics3,
    "tiny-mplug-owl2": _mplug_owl2,
}
"""Tiny family name -> builder of ``(model, processor)`` from a dict of sizes."""


def build_tiny(name: str, *, seed: int = 0, **sizes):
    """``(model, processor)`` of one of ``TINY_FAMILIES``: random weights from ``seed`` (the global RNG
    is restored afterwards), the model in eval mode; ``sizes`` override ``TINY_DEFAULTS``."""
    if name not in TINY_FAMILIES:
        from c2s_lightning.infra.user_errors import suggestion

        raise ValueError(f"unknown backbone {name!r}{suggestion(name, TINY_FAMILIES)} Known tiny families: "
                         + ", ".join(TINY_FAMILIES))
    unknown = set(sizes) - set(TINY_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown tiny size(s) {sorted(unknown)}; known: {sorted(TINY_DEFAULTS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, processor = TINY_FAMILIES[name]({**TINY_DEFAULTS, **sizes})
    return model.eval(), processor
