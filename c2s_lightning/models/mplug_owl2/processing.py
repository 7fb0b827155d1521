"""Prompt tokenisation with ``<|image|>`` placeholders, and the processor (tokenizer + images)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from transformers import BatchFeature, PreTrainedTokenizerBase

from .configuration import IMAGE_TOKEN_INDEX, MPLUGOwl2Config
from .image_processing import MPLUGOwl2ImageProcessor
from .multimodal import expand_image_placeholders, pad_rows

IMAGE_PLACEHOLDER = "<|image|>"


def tokenizer_image_token(
    prompt: str,
    tokenizer: PreTrainedTokenizerBase,
    image_token_index: int = IMAGE_TOKEN_INDEX,
    placeholder: str = IMAGE_PLACEHOLDER,
) -> list[int]:
    """Tokenise ``prompt``, putting one ``image_token_index`` where each ``placeholder`` stands.

    Reproduces the release: every text chunk between placeholders is tokenised on its own with
    the tokenizer's special tokens; if the first chunk starts with BOS, that BOS is kept once and
    the first token of every later chunk is dropped (its own BOS). A prompt that *starts* with a
    placeholder therefore gets no leading BOS and keeps the BOS of its later chunks, as released.

    Args:
        prompt: Text with zero or more placeholders.
        tokenizer: Any ``transformers`` tokenizer.
        image_token_index: Id written for each placeholder.
        placeholder: The placeholder string.

    Returns:
        The token ids.
    """
    chunks = [tokenizer(chunk).input_ids if chunk else [] for chunk in prompt.split(placeholder)]
    offset = 0
    ids: list[int] = []
    if chunks[0] and chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        ids.append(chunks[0][0])
    for index, chunk in enumerate(chunks):
        if index:
            ids.append(image_token_index)
        ids.extend(chunk[offset:])
    return ids


class MPLUGOwl2Processor:
    """Turn prompts and images into model inputs.

    ``input_ids`` come in the expanded layout (each placeholder repeated ``num_visual_tokens``
    times), so they line up with the model's positions and work with cached generation.

    Args:
        tokenizer: The language model's tokenizer (must have a pad token or ``pad_token_id``).
        image_processor: Image preprocessing; default 448 px CLIP.
        num_visual_tokens: Positions per image (queries + 1; 65 for the release).
        image_token_index: Placeholder id.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        image_processor: MPLUGOwl2ImageProcessor | None = None,
        num_visual_tokens: int = 65,
        image_token_index: int = IMAGE_TOKEN_INDEX,
    ):
        self.tokenizer = tokenizer
        self.image_processor = image_processor or MPLUGOwl2ImageProcessor()
        self.num_visual_tokens = num_visual_tokens
        self.image_token_index = image_token_index

    @classmethod
    def for_config(cls, tokenizer: PreTrainedTokenizerBase, config: MPLUGOwl2Config):
        """A processor whose image size and token counts follow ``config``."""
        return cls(
            tokenizer,
            MPLUGOwl2ImageProcessor(image_size=config.vision.image_size),
            num_visual_tokens=config.num_visual_tokens,
            image_token_index=config.image_token_index,
        )

    @classmethod
    def from_folder(cls, folder: str, config: MPLUGOwl2Config):
        """The tokenizer saved in a checkpoint folder (``AutoTokenizer``) plus ``config``'s images."""
        from transformers import AutoTokenizer

        return cls.for_config(AutoTokenizer.from_pretrained(folder), config)

    def __call__(
        self,
        text: str | Sequence[str],
        images: Image.Image | Sequence[Image.Image] | None = None,
        padding_side: str = "right",
    ) -> BatchFeature:
        """Tokenise ``text`` (one prompt or a batch) and preprocess ``images``.

        Args:
            text: Prompt(s) with ``<|image|>`` placeholders.
            images: All images of the batch in placeholder order (row by row).
            padding_side: Where shorter rows are padded (``"left"`` for batched generation).

        Returns:
            ``input_ids`` and ``attention_mask`` ``(batch, length)``, and ``pixel_values``
            ``(num_images, 3, size, size)`` when images are given.
        """
        prompts = [text] if isinstance(text, str) else list(text)
        images = [images] if isinstance(images, Image.Image) else list(images or [])
        rows = [torch.tensor(tokenizer_image_token(p, self.tokenizer, self.image_token_index)) for p in prompts]
        count = sum(int((row == self.image_token_index).sum()) for row in rows)
        if count != len(images):
            raise ValueError(f"The prompts hold {count} {IMAGE_PLACEHOLDER} placeholders but {len(images)} images were given")
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        expanded = [
            expand_image_placeholders(row[None], self.num_visual_tokens, self.image_token_index)
            for row in rows
        ]
        input_ids = pad_rows([ids[0] for ids, _, _ in expanded], pad_id, padding_side)
        attention_mask = pad_rows([mask[0] for _, mask, _ in expanded], 0, padding_side)
        data = {"input_ids": input_ids, "attention_mask": attention_mask}
        if images:
            data["pixel_values"] = self.image_processor(images)
        return BatchFeature(data)

