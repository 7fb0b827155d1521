"""Processor classes that work without torchvision.

Qwen2-VL's processor requires a video processor, and every video processor in transformers needs
torchvision, which this project never installs. Comparisons use still images only, so the
image-only subclass below drops the video slot. It cannot be saved and reloaded with
``AutoProcessor`` (the saved files name the video-capable class); ``load_backbone`` rebuilds it.
"""

from __future__ import annotations

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
