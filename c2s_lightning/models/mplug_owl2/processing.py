"""Prompt tokenisation with ``<|image|>`` placeholders, and the processor (tokenizer + images)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import torch
from PIL import Image
from torch.nn.utils.rnn import pad_sequence
from transformers import AutoTokenizer, BatchFeature, PreTrainedTokenizerBase

from .configuration import IMAGE_TOKEN_INDEX, MPLUGOwl2Config
from .image_processing import MPLUGOwl2ImageProcessor
from .multimodal import expand_image_placeholders

IMAGE_PLACEHOLDER = "<|image|>"

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | upper }}: "
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<|image|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% if m['role'] == 'assistant' %}</s>{% else %} {% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
"""The release's ``mplug_owl2`` conversation (``USER: <|image|>text ASSISTANT: answer</s>``).

It is the release's inference layout (no system prompt; images right before the text), used for
training and inference alike; the release trained with a system prompt, a difference the method
page asks not to repeat.
"""


def tokenizer_image_token(
    prompt: str,
    tokenizer: PreTrainedTokenizerBase,
    image_token_index: int = IMAGE_TOKEN_INDEX,
    placeholder: str = IMAGE_PLACEHOLDER,
    add_special_tokens: bool = True,
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
        add_special_tokens: False tokenises every chunk without BOS (for text that already
            holds it), so nothing is dropped.

    Returns:
        The token ids.
    """
    chunks = [
        tokenizer(chunk, add_special_tokens=add_special_tokens).input_ids if chunk else []
        for chunk in prompt.split(placeholder)
    ]
    offset = 1 if chunks[0] and chunks[0][0] == tokenizer.bos_token_id else 0
    ids = list(chunks[0])
    for chunk in chunks[1:]:
        ids += [image_token_index, *chunk[offset:]]
    return ids


@dataclasses.dataclass(eq=False)  # hashable and compared by identity, like any processor
class MPLUGOwl2Processor:
    """Turn prompts and images into model inputs.

    ``input_ids`` come in the expanded layout (each placeholder repeated ``num_visual_tokens``
    times), so they line up with the model's positions and work with cached generation. It also
    offers what the framework's ``ComparisonEncoder`` asks of a Hugging Face processor
    (``apply_chat_template``, ``save_pretrained``, ``text=``/``images=`` batches), plus
    ``text_token_ids``, the tokenisation it really applies (chunks split at placeholders).

    Args:
        tokenizer: The language model's tokenizer (must have a pad token or ``pad_token_id``).
        image_processor: Image preprocessing; default 448 px CLIP.
        num_visual_tokens: Positions per image (queries + 1; 65 for the release).
        image_token_index: Placeholder id.
        chat_template: Jinja template rendering chat messages; default ``CHAT_TEMPLATE``.
    """

    tokenizer: PreTrainedTokenizerBase
    image_processor: MPLUGOwl2ImageProcessor = dataclasses.field(default_factory=MPLUGOwl2ImageProcessor)
    num_visual_tokens: int = 65
    image_token_index: int = IMAGE_TOKEN_INDEX
    chat_template: str = CHAT_TEMPLATE

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
        return cls.for_config(AutoTokenizer.from_pretrained(folder), config)

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write the tokenizer; ``from_folder`` rebuilds the rest from the model's config."""
        self.tokenizer.save_pretrained(folder)

    def apply_chat_template(self, messages: list[dict], tokenize: bool = False, **kwargs) -> str:
        """Render Hugging Face chat messages (``{"type": "image"}`` entries become placeholders).

        Args:
            messages: ``[{"role", "content": [{"type": "image"} | {"type": "text", "text"}]}]``.
            tokenize: Must be False: placeholders are tokenised by ``text_token_ids``/``__call__``.
            **kwargs: ``add_generation_prompt``, ``continue_final_message``.
        """
        if tokenize:
            raise ValueError("MPLUGOwl2Processor renders text only; tokenise with text_token_ids or __call__")
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.chat_template, tokenize=False, **kwargs
        )

    def text_token_ids(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Ids of ``text`` as ``__call__`` tokenises it, with one placeholder id per image."""
        return tokenizer_image_token(
            text, self.tokenizer, self.image_token_index, add_special_tokens=add_special_tokens
        )

    def __call__(
        self,
        text: str | Sequence[str],
        images: Image.Image | Sequence | None = None,
        padding_side: str = "right",
        *,
        padding: bool | str = True,
        return_tensors: str | None = "pt",
        add_special_tokens: bool = True,
    ) -> BatchFeature:
        """Tokenise ``text`` (one prompt or a batch) and preprocess ``images``.

        Args:
            text: Prompt(s) with ``<|image|>`` placeholders.
            images: All images of the batch in placeholder order (row by row), flat or as one
                list per prompt.
            padding_side: Where shorter rows are padded (``"left"`` for batched generation).
            padding: Accepted for Hugging Face compatibility; rows are always padded to the longest.
            return_tensors: ``"pt"`` (or None, same result): tensors are always returned.
            add_special_tokens: Passed to ``tokenizer_image_token``.

        Returns:
            ``input_ids`` and ``attention_mask`` ``(batch, length)``, and ``pixel_values``
            ``(num_images, 3, size, size)`` when images are given.
        """
        if return_tensors not in (None, "pt"):
            raise ValueError(f"MPLUGOwl2Processor returns PyTorch tensors only, not {return_tensors!r}")
        prompts = [text] if isinstance(text, str) else list(text)
        images = _flat_images(images)
        rows = [torch.tensor(self.text_token_ids(p, add_special_tokens)) for p in prompts]
        count = sum(int((row == self.image_token_index).sum()) for row in rows)
        if count != len(images):
            raise ValueError(f"The prompts hold {count} {IMAGE_PLACEHOLDER} placeholders but {len(images)} images were given")
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        rows = [
            expand_image_placeholders(row[None], self.num_visual_tokens, self.image_token_index)[0][0]
            for row in rows
        ]
        ones = [torch.ones_like(row) for row in rows]
        data = {
            "input_ids": pad_sequence(rows, batch_first=True, padding_value=pad_id, padding_side=padding_side),
            "attention_mask": pad_sequence(ones, batch_first=True, padding_side=padding_side),
        }
        if images:
            data["pixel_values"] = self.image_processor(images)
        return BatchFeature(data)


def _flat_images(images) -> list[Image.Image]:
    """One image, a flat list, or one list per prompt -> a flat list in order."""
    if images is None:
        return []
    if isinstance(images, Image.Image):
        return [images]
    flat = []
    for item in images:
        flat.extend([item] if isinstance(item, Image.Image) else list(item))
    return flat
