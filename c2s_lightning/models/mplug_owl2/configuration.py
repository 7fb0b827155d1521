"""Configuration of the native mPLUG-Owl2 port.

The text part is a LLaMA configuration (the release subclasses ``LlamaConfig`` too); the vision
tower and the visual abstractor are described by two small dataclasses stored as plain dicts, so
``config.json`` stays readable and round-trips through ``save_pretrained``/``from_pretrained``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from huggingface_hub.dataclasses import strict
from transformers import LlamaConfig

IMAGE_TOKEN_INDEX = -200
IGNORE_INDEX = -100


@dataclass(frozen=True)
class VisionConfig:
    """CLIP-style ViT of mPLUG-Owl2 (defaults: ViT-L/14 at 448 px).

    Args:
        hidden_size: Width of the vision transformer.
        intermediate_size: Width of its MLP.
        num_hidden_layers: Number of transformer blocks.
        num_attention_heads: Number of attention heads.
        image_size: Side of the (square) input image in pixels.
        patch_size: Side of a patch; ``image_size`` must be a multiple of it.
        hidden_act: MLP activation (a ``transformers`` ACT2FN name).
        layer_norm_eps: Epsilon of every vision LayerNorm.
        attention_dropout: Dropout on attention probabilities (training only).
    """

    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    image_size: int = 448
    patch_size: int = 14
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-6
    attention_dropout: float = 0.0

    @property
    def grid_size(self) -> int:
        """Number of patches along one side."""
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class AbstractorConfig:
    """Visual abstractor: learnable queries cross-attending to the vision tokens.

    Args:
        num_learnable_queries: Number of queries (visual tokens per image is this plus one).
        hidden_size: Width of the abstractor.
        num_hidden_layers: Number of cross-attention layers.
        num_attention_heads: Number of attention heads.
        intermediate_size: Width of the SwiGLU feed-forward.
        attention_probs_dropout_prob: Dropout on attention probabilities (training only).
        layer_norm_eps: Epsilon of the feed-forward LayerNorm (the other norms use 1e-5, as released).
        encoder_hidden_size: Width of the vision tokens it reads.
        grid_size: Side of the vision patch grid (sets the 2-D position table).
    """

    num_learnable_queries: int = 64
    hidden_size: int = 1024
    num_hidden_layers: int = 6
    num_attention_heads: int = 16
    intermediate_size: int = 2816
    attention_probs_dropout_prob: float = 0.0
    layer_norm_eps: float = 1e-6
    encoder_hidden_size: int = 1024
    grid_size: int = 32


def _checked_fields(cls, values: dict | None, what: str) -> dict:
    """Merge ``values`` over the dataclass defaults, rejecting unknown keys."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values or {}) - names)
    if unknown:
        raise ValueError(f"Unknown {what} field(s) {unknown}; known: {sorted(names)}")
    return dataclasses.asdict(cls(**(values or {})))


@strict
class MPLUGOwl2Config(LlamaConfig):
    """mPLUG-Owl2 configuration: LLaMA text fields plus ``vision_config`` and ``abstractor_config``.

    Args:
        vision_config: Fields of :class:`VisionConfig` (missing ones take its defaults).
        abstractor_config: Fields of :class:`AbstractorConfig`.
        image_token_index: Placeholder id marking visual positions in ``input_ids``.
        **kwargs: Any ``LlamaConfig`` field (``vocab_size``, ``hidden_size``, ...).
    """

    model_type = "mplug_owl2_native"

    vision_config: dict | None = None
    abstractor_config: dict | None = None
    image_token_index: int = IMAGE_TOKEN_INDEX

    def __post_init__(self, **kwargs):
        for name, cls in (("vision_config", VisionConfig), ("abstractor_config", AbstractorConfig)):
            setattr(self, name, _checked_fields(cls, getattr(self, name), name))
        super().__post_init__(**kwargs)
        vision, abstractor = self.vision, self.abstractor
        if vision.image_size % vision.patch_size:
            raise ValueError("vision image_size must be a multiple of patch_size")
        if abstractor.grid_size != vision.grid_size:
            raise ValueError(
                f"abstractor grid_size ({abstractor.grid_size}) must equal the vision patch grid "
                f"({vision.grid_size} = image_size // patch_size)"
            )
        if abstractor.encoder_hidden_size != vision.hidden_size:
            raise ValueError("abstractor encoder_hidden_size must equal the vision hidden_size")

    @property
    def vision(self) -> VisionConfig:
        """The vision tower settings as a typed object."""
        return VisionConfig(**self.vision_config)

    @property
    def abstractor(self) -> AbstractorConfig:
        """The abstractor settings as a typed object."""
        return AbstractorConfig(**self.abstractor_config)

    @property
    def num_visual_tokens(self) -> int:
        """Language-model positions per image: the queries plus the end-of-image token."""
        return self.abstractor.num_learnable_queries + 1


def tiny_mplug_owl2_config(**overrides) -> MPLUGOwl2Config:
    """A small random-weight configuration for tests and the quickstart; ``overrides`` replace its fields.

    Sizes equal those of the stored numerical reference (text 64 wide with 2 layers, vision 32 wide on
    32 px images with 8 px patches, 8 queries, so 9 visual tokens per image).
    """
    fields = dict(
        vocab_size=200, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=256, rms_norm_eps=1e-6,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, use_cache=False,
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            image_size=32, patch_size=8,
        ),
        abstractor_config=dict(
            num_learnable_queries=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=88, encoder_hidden_size=32, grid_size=4,
        ),
    )
    fields.update(overrides)
    return MPLUGOwl2Config(**fields)
