"""Read a backbone's answer: logits of the five level words after the comparison prompt.

This is what scoring needs from a model and nothing more: ``level_logits(first, second)`` for
pairs, ``rating_logits(images)`` for single images. All of it runs in eval mode under
``torch.inference_mode`` and restores the model's training flag afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

from c2s_lightning.data import prompts
from c2s_lightning.models.backbones import Backbone
from c2s_lightning.models.encoding import batch_to, model_inputs


class Comparator:
    """Level logits of a backbone for image pairs.

    Args:
        backbone: The model, processor, encoder and answer token ids.
        batch_size: Default number of pairs per forward pass (None: all at once).
    """

    def __init__(self, backbone: Backbone, batch_size: int | None = None):
        self.backbone = backbone
        self.batch_size = batch_size

    @property
    def model_id(self) -> str:
        """Identifies the weights behind these logits (anchor banks are tagged with it)."""
        return self.backbone.model_id

    def level_logits(self, first_images: Sequence, second_images: Sequence, batch_size: int | None = None) -> Tensor:
        """Next-token logits of ``LEVELS`` (in order) for "second compared with first".

        Args:
            first_images: PIL images shown first (the reference side, e.g. anchors).
            second_images: PIL images shown second, as many as ``first_images``.
            batch_size: Pairs per forward pass; defaults to the comparator's.

        Returns:
            Float32 tensor [B, 5] on the CPU.
        """
        if len(first_images) != len(second_images):
            raise ValueError(f"{len(first_images)} first images but {len(second_images)} second images")
        examples = [comparison_query(a, b) for a, b in zip(first_images, second_images)]
        return self._word_logits(examples, self.backbone.level_token_ids, batch_size)

    def rating_logits(self, images: Sequence, batch_size: int | None = None) -> Tensor:
        """Next-token logits of ``RATING_LEVELS`` (bad..excellent) for single images: [B, 5]."""
        if self.backbone.rating_token_ids is None:
            raise ValueError(f"{self.model_id}: rating words are not single tokens; no rating logits")
        examples = [{"images": [image], "prompt": prompts.RATING_PROMPT, "answer_prefix": prompts.RATING_ANSWER_PREFIX}
                    for image in images]
        return self._word_logits(examples, self.backbone.rating_token_ids, batch_size)

    def _word_logits(self, examples: list[dict], token_ids: list[int], batch_size: int | None) -> Tensor:
        size = batch_size or self.batch_size or max(len(examples), 1)
        with evaluating(self.backbone.model):
            chunks = [self._answer_logits(self.backbone.encoder.encode_query(examples[i : i + size]))[:, token_ids]
                      for i in range(0, len(examples), size)]
        return torch.cat(chunks) if chunks else torch.empty(0, len(token_ids))

    def _answer_logits(self, encoded: dict) -> Tensor:
        """Full-vocabulary next-token logits at each row's query position: [B, vocab] on the CPU.

        Only the query positions go through the LM head (``logits_to_keep``), so the cost does
        not grow with vocabulary x sequence length.
        """
        model = self.backbone.model
        param = next(model.parameters())
        positions = encoded["query_positions"]
        keep = torch.unique(positions)
        inputs = batch_to(model_inputs(encoded), param.device, param.dtype)
        logits = model(**inputs, logits_to_keep=keep.to(param.device), use_cache=False).logits
        column = torch.searchsorted(keep, positions).to(logits.device)
        rows = torch.arange(len(positions), device=logits.device)
        return logits[rows, column].float().cpu()


def comparison_query(first, second) -> dict:
    """The example every comparator asks about a pair: the training prompt, cut after the answer
    prefix, so the query's tokens are the training sequence's up to the level word."""
    return {"images": [first, second], "prompt": prompts.COMPARISON_PROMPT,
            "answer_prefix": prompts.COMPARISON_ANSWER_PREFIX}


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and ``torch.inference_mode`` inside (``no_grad`` for FSDP2 models: parameters it
    sets up there would become inference tensors); the model's training flag restored after."""
    was_training = model.training
    model.eval()
    sharded = any(c.__name__ == "FSDPModule" for c in type(model).__mro__)  # fully_shard, no import
    try:
        with torch.no_grad() if sharded else torch.inference_mode():
            yield
    finally:
        model.train(was_training)
