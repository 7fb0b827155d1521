"""Processor classes that work without torchvision.

Qwen2-VL's processor requires a video processor, and every video processor in transformers needs
torchvision, which this project never installs. Comparisons use still images only, so the
image-only subclass below drops the video slot. It cannot be saved and reloaded with
``AutoProcessor`` (the saved files name the video-capable class); ``load_backbone`` rebuilds it.
"""

from __future__ import annotations

import math

from transformers import ProcessorMixin, Qwen2VLProcessor


class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """Qwen2-VL / Qwen2.5-VL processor with images only (the image-token logic is the same)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        # Skip Qwen2VLProcessor.__init__: it insists on the video processor.
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def input_side(image_processor) -> int | None:
    """Side S in pixels of the square a model's image processor scales an image to; None if unknown.

    What an image must keep for the processor to only ever scale it down (``ImagePreprocessing``
    decodes JPEGs no smaller than S): fixed ``height``/``width`` -> the larger; ``shortest_edge``
    (CLIP, LLaVA) -> that edge; ``longest_edge`` (Idefics3) and LLaVA-NeXT's grid resolutions ->
    the largest side any of them asks for; Qwen2-VL's ``longest_edge`` is a pixel count (its
    largest area), so S is its square root, rounded up; mPLUG-Owl2 -> its ``image_size``.
    """
    own = getattr(image_processor, "image_size", None)
    if isinstance(own, int):
        return own
    size = getattr(image_processor, "size", None)
    if size is None:
        return None

    def get(key):
        return size.get(key) if isinstance(size, dict) else getattr(size, key, None)

    if hasattr(image_processor, "temporal_patch_size"):  # Qwen2-VL family: sizes are pixel counts
        area = get("longest_edge") or get("max_pixels") or getattr(image_processor, "max_pixels", None)
        return math.isqrt(area - 1) + 1 if area else None
    sides = [get(key) for key in ("height", "width", "shortest_edge", "longest_edge")]
    sides += [max(res) for res in getattr(image_processor, "image_grid_pinpoints", None) or []]
    biggest = getattr(image_processor, "max_image_size", None)
    if isinstance(biggest, dict):
        sides.append(biggest.get("longest_edge"))
    sides = [int(s) for s in sides if s]
    return max(sides) if sides else None
