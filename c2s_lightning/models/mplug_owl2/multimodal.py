"""Placing image features into the token sequence.

Two layouts of ``input_ids`` are accepted. *Compact*: one ``image_token_index`` placeholder per
image, as the release's ``tokenizer_image_token`` produces. *Expanded*: each placeholder already
repeated ``num_visual_tokens`` times, so ids, mask and labels line up with the language model's
positions (what :class:`MPLUGOwl2Processor` produces; needed for cached generation). Images are
consumed in order over the whole batch: row 0's placeholders left to right, then row 1's, ...
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence

from .configuration import IGNORE_INDEX


def placeholder_layout(
    input_ids: torch.Tensor, num_images: int, num_visual_tokens: int, image_token_index: int
) -> str:
    """Classify ``input_ids`` as ``"compact"``, ``"expanded"`` or ``"none"`` (no placeholders).

    Raises:
        ValueError: If the placeholder count fits neither layout for ``num_images`` images.
    """
    count = int((input_ids == image_token_index).sum())
    if count == 0 and num_images == 0:
        return "none"
    if count == num_images:
        return "compact"
    if count == num_images * num_visual_tokens:
        return "expanded"
    raise ValueError(
        f"input_ids hold {count} image placeholders ({image_token_index}) but {num_images} image(s) "
        f"were given: expected {num_images} (one per image) or {num_images * num_visual_tokens} "
        f"({num_visual_tokens} per image)"
    )


def expand_image_placeholders(
    input_ids: torch.Tensor,
    num_visual_tokens: int,
    image_token_index: int,
    attention_mask: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    pad_token_id: int = 0,
    padding_side: str = "right",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Turn compact placeholders (one per image) into runs of ``num_visual_tokens`` placeholders.

    Visual positions keep the mask value of their placeholder (the mask is all ones when None) and
    get label ``-100``. Rows that end up shorter than the longest are padded (id ``pad_token_id``,
    mask 0, label ``-100``) on ``padding_side``, ``"right"`` or ``"left"``. (The release instead
    prepends ones to the mask, which agrees with this for right-padded batches only.)

    Returns:
        ``(input_ids, attention_mask, labels)`` in the expanded layout (labels None if not given).
    """
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    is_image = input_ids == image_token_index
    repeats = torch.where(is_image, num_visual_tokens, 1)

    def expand(rows: torch.Tensor, value: int) -> torch.Tensor:
        expanded = [row.repeat_interleave(count) for row, count in zip(rows, repeats)]
        return pad_sequence(expanded, batch_first=True, padding_value=value, padding_side=padding_side)

    new_labels = None if labels is None else expand(labels.masked_fill(is_image, IGNORE_INDEX), IGNORE_INDEX)
    return expand(input_ids, pad_token_id), expand(attention_mask, 0), new_labels


def merge_image_features(
    inputs_embeds: torch.Tensor, is_visual: torch.Tensor, image_features: torch.Tensor
) -> torch.Tensor:
    """Write the N images' features ``(N, tokens, width)`` into the ``N * tokens`` visual positions
    (``is_visual``) of ``inputs_embeds``, in batch order; returns a new tensor."""
    features = image_features.reshape(-1, image_features.shape[-1]).to(inputs_embeds.dtype)
    if features.shape[0] != int(is_visual.sum()):
        raise ValueError(
            f"{int(is_visual.sum())} visual positions but {features.shape[0]} image feature vectors"
        )
    mask = is_visual.unsqueeze(-1).expand_as(inputs_embeds)
    return inputs_embeds.masked_scatter(mask, features)
