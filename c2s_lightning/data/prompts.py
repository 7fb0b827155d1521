"""Instruction templates: plain text with image placeholders, shared by training and inference.

The authors' release trained with one template and inferred with another; here one template
serves both. Turning these texts into tokens is the backbone's job (its processor and chat
template), so nothing here knows about any model.
"""

from __future__ import annotations

IMAGE_PLACEHOLDER = "<image>"

COMPARISON_PROMPT = "<image> <image> Compared with the first image, how is the quality of the second image?"
COMPARISON_ANSWER_PREFIX = "The quality of the second image is"
COMPARISON_ANSWER = COMPARISON_ANSWER_PREFIX + " {level}."

RATING_PROMPT = "<image> Rate the quality of this picture."
RATING_ANSWER_PREFIX = "The quality of the picture is"
RATING_ANSWER = RATING_ANSWER_PREFIX + " {level}."
RATING_LEVELS = ("bad", "poor", "fair", "good", "excellent")
"""Single-image rating words (worst to best), used only by the optional rating loss."""


def to_messages(prompt: str, answer: str | None = None) -> list[dict]:
    """Hugging Face chat messages (``{"role", "content"}`` dicts, as ``processor.apply_chat_template``
    takes them) of a user ``prompt``, each ``<image>`` an image entry where it stands, and of the
    assistant's ``answer`` (the full answer for training, its prefix for inference) unless None."""
    content: list[dict] = []
    for k, piece in enumerate(prompt.split(IMAGE_PLACEHOLDER)):
        if k > 0:
            content.append({"type": "image"})
        piece = piece.strip()
        if piece:
            content.append({"type": "text", "text": piece})
    messages = [{"role": "user", "content": content}]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages
