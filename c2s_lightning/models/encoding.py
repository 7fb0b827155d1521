"""Turn plain-text comparison examples into model inputs with each family's own chat template.

The encoder holds the processor and nothing else (no model), so a DataLoader collate function
with worker processes can pickle it. Supervision is located in tokens, not characters: the
rendered prompt and the rendered prompt + answer prefix are tokenized without images, checked to
be prefixes of the full text's tokens, and the answer's token count taken from the end of the
image-expanded sequence (image placeholders only ever occur in the prompt, before the answer).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor

from c2s_lightning.data import prompts
from c2s_lightning.data.images import mean_colour
from c2s_lightning.models.processors import input_side

IGNORE_INDEX = -100
"""Label value that the cross-entropy loss skips."""

EXTRA_KEYS = ("answer_positions", "query_positions")
"""Keys the encoder adds for the caller; they are not model inputs (see ``model_inputs``)."""

ANSWER_PREFIXES = {
    prompts.COMPARISON_PROMPT: prompts.COMPARISON_ANSWER_PREFIX,
    prompts.RATING_PROMPT: prompts.RATING_ANSWER_PREFIX,
}
"""Prompt -> the answer text that precedes the answer word."""


class AnswerWordError(ValueError):
    """An answer word is not a single token at the answer position."""


def model_inputs(batch: dict) -> dict:
    """The batch without the encoder's extra keys, ready for ``model(**...)``."""
    return {k: v for k, v in batch.items() if k not in EXTRA_KEYS}


def batch_to(batch: dict, device: torch.device | str, dtype: torch.dtype | None = None) -> dict:
    """Move tensors to ``device``; cast floating ones (pixel values) to ``dtype`` when given."""
    moved = {}
    for key, value in batch.items():
        if isinstance(value, Tensor):
            value = value.to(device=device, dtype=dtype if value.is_floating_point() else None)
        moved[key] = value
    return moved


class ComparisonEncoder:
    """Encodes ``{"images", "prompt", "answer"}`` examples for training and querying.

    Args:
        processor: The backbone's Hugging Face processor (tokenizer, image processor, chat template).
        query_padding_side: Padding side of ``encode_query`` batches, ``"right"`` (positions of the
            real tokens do not depend on the batch) or ``"left"``.
    """

    def __init__(self, processor, query_padding_side: str = "right"):
        if query_padding_side not in ("left", "right"):
            raise ValueError(f"query_padding_side must be 'left' or 'right', got {query_padding_side!r}")
        self.processor = processor
        self.query_padding_side = query_padding_side

    @property
    def image_size(self) -> int | None:
        """Side in pixels of the square the processor scales images to (None: unknown), so the
        image pipeline can decode no larger than needed (``ImagePreprocessing.for_encoder``)."""
        return input_side(getattr(self.processor, "image_processor", None))

    @property
    def pad_colour(self) -> tuple[int, int, int] | None:
        """The padding colour of the paper's preprocessing for this model: its image processor's
        ``image_mean`` x 255 (``mean_colour``); None when the processor names no mean."""
        image_mean = getattr(getattr(self.processor, "image_processor", None), "image_mean", None)
        return mean_colour(image_mean) if image_mean is not None and len(image_mean) == 3 else None

    # -- rendering ---------------------------------------------------------------------------
    def render(self, prompt: str, answer: str | None = None, *, partial: bool = False) -> str:
        """Chat text of a prompt; with ``answer``, the whole exchange (``partial``: cut after it)."""
        messages = prompts.to_messages(prompt, answer)
        if answer is None:
            return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.processor.apply_chat_template(messages, tokenize=False, continue_final_message=partial)

    def token_ids(self, text: str) -> list[int]:
        """Token ids of rendered text without image expansion, BOS added once as the processor does.

        A processor that tokenises text its own way (mPLUG-Owl2 splits at image placeholders)
        says so with a ``text_token_ids(text, add_special_tokens)`` method, used instead.
        """
        own = getattr(self.processor, "text_token_ids", None)
        if own is not None:
            return own(text, add_special_tokens=self._add_special_tokens(text))
        return self.processor.tokenizer(text, add_special_tokens=self._add_special_tokens(text))["input_ids"]

    def _add_special_tokens(self, text: str) -> bool:
        bos = self.processor.tokenizer.bos_token
        return not (bos and text.startswith(bos))

    # -- checks ------------------------------------------------------------------------------
    def answer_word_ids(self, prompt: str, answer_template: str, words: Sequence[str]) -> list[int]:
        """Token id of each answer word at the answer position, checked to be a single token.

        Args:
            prompt: The user prompt (e.g. ``COMPARISON_PROMPT``).
            answer_template: The answer with a ``{level}`` slot (e.g. ``COMPARISON_ANSWER``).
            words: The words to check, in the order the ids are returned.

        Raises:
            AnswerWordError: Naming every word that is not one token, with the pieces it splits into.
        """
        prefix = answer_template.split("{level}")[0].rstrip()
        base = self.token_ids(self.render(prompt, prefix, partial=True))
        unk = self.processor.tokenizer.unk_token_id
        ids, bad = [], {}
        for word in words:
            with_word = self.token_ids(self.render(prompt, f"{prefix} {word}", partial=True))
            full = self.token_ids(self.render(prompt, answer_template.format(level=word)))
            extra = with_word[len(base):]
            ok = with_word[: len(base)] == base and len(extra) == 1 and extra[0] != unk
            if ok and full[: len(with_word)] == with_word:
                ids.append(extra[0])
            else:
                tail = with_word[len(os.path.commonprefix([base, with_word])):]  # commonprefix takes any lists
                bad[word] = self.processor.tokenizer.convert_ids_to_tokens(tail)
        if bad:
            splits = "; ".join(f"{w!r} -> {pieces}" for w, pieces in bad.items())
            raise AnswerWordError(
                f"answer words must each be one token after {prefix!r}; these are not: {splits}. "
                "Pass add_level_tokens=True to add them to the vocabulary."
            )
        if len(set(ids)) != len(ids):
            raise AnswerWordError(f"answer words {list(words)} share token ids {ids}")
        return ids

    # -- encoding ----------------------------------------------------------------------------
    def encode_train(self, examples: Sequence[dict]) -> dict[str, Tensor]:
        """Right-padded training batch with labels on the answer only.

        Args:
            examples: Dicts with ``images`` (list of PIL images, in prompt order), ``prompt`` and
                ``answer`` (plain text, the answer word filled in).

        Returns:
            The processor's tensors (``input_ids``, ``attention_mask``, ``pixel_values`` and the
            family's extras), ``labels`` (-100 before the answer and on padding) and
            ``answer_positions`` (Long[B], index of the answer word in ``input_ids``).
        """
        texts, answers, word_offset = [], [], []
        for ex in examples:
            prefix = answer_prefix(ex)
            full = self.render(ex["prompt"], ex["answer"])
            full_ids = self.token_ids(full)
            prompt_ids = self._checked_prefix(self.render(ex["prompt"]), full_ids, full)
            query_ids = self._checked_prefix(self.render(ex["prompt"], prefix, partial=True), full_ids, full)
            if len(query_ids) >= len(full_ids):
                raise ValueError(f"answer {ex['answer']!r} has no word after its prefix {prefix!r}")
            texts.append(full)
            answers.append(full_ids[len(prompt_ids):])
            word_offset.append(len(query_ids) - len(prompt_ids))
        batch = self._process(texts, examples, "right")
        lengths = batch["attention_mask"].sum(dim=1)
        labels = torch.full_like(batch["input_ids"], IGNORE_INDEX)
        starts = lengths - torch.tensor([len(a) for a in answers])
        for b, (start, end) in enumerate(zip(starts.tolist(), lengths.tolist())):
            if batch["input_ids"][b, start:end].tolist() != answers[b]:
                raise ValueError(f"answer tokens of example {b} changed when its images were expanded")
            labels[b, start:end] = batch["input_ids"][b, start:end]
        batch["labels"] = labels
        batch["answer_positions"] = starts + torch.tensor(word_offset)
        return batch

    def encode_query(self, examples: Sequence[dict], padding_side: str | None = None) -> dict[str, Tensor]:
        """Batch whose assistant turn is only the answer prefix; the next token is the answer word.

        Args:
            examples: Dicts with ``images`` and ``prompt``; the prefix comes from ``answer_prefix``
                (an explicit key, else the prefix of ``answer``, else the prompt's known prefix).
            padding_side: Overrides ``query_padding_side``.

        Returns:
            The processor's tensors and ``query_positions`` (Long[B], index of the last prompt
            token, whose next-token logits score the answer words).
        """
        side = padding_side or self.query_padding_side
        texts = [self.render(ex["prompt"], answer_prefix(ex), partial=True) for ex in examples]
        batch = self._process(texts, examples, side)
        if side == "right":
            positions = batch["attention_mask"].sum(dim=1) - 1
        else:
            positions = torch.full((len(texts),), batch["input_ids"].shape[1] - 1)
        last = [self.token_ids(t)[-1] for t in texts]
        if batch["input_ids"].gather(1, positions[:, None]).squeeze(1).tolist() != last:
            raise ValueError("query_positions do not land on the last prompt token; check the padding side")
        batch["query_positions"] = positions
        return batch

    def __call__(self, examples: Sequence[dict]) -> dict[str, Tensor]:
        """``encode_train``: lets the encoder be a DataLoader ``collate_fn`` directly."""
        return self.encode_train(examples)

    def _process(self, texts: list[str], examples: Sequence[dict], side: str) -> dict[str, Tensor]:
        images = [list(ex["images"]) for ex in examples]
        return dict(self.processor(
            text=texts, images=images, padding=True, padding_side=side, return_tensors="pt",
            add_special_tokens=self._add_special_tokens(texts[0]),
        ))

    def _checked_prefix(self, text: str, full_ids: list[int], full_text: str) -> list[int]:
        ids = self.token_ids(text)
        if full_ids[: len(ids)] != ids:
            raise ValueError(
                "the chat template tokenizes the prompt differently alone and followed by the answer, "
                f"so the answer cannot be located in tokens.\nprompt: {text!r}\nfull: {full_text!r}"
            )
        return ids


def answer_prefix(example: dict) -> str:
    """The answer text before the answer word for an example (see ``encode_query``)."""
    if "answer_prefix" in example:
        return example["answer_prefix"]
    known = ANSWER_PREFIXES.get(example["prompt"])
    answer = example.get("answer")
    if answer is None and known is not None:
        return known
    for prefix in [known, *ANSWER_PREFIXES.values()]:  # the prompt's own first
        if prefix and answer is not None and answer.startswith(prefix):
            return prefix
    raise ValueError(
        f"cannot tell the answer prefix of prompt {example['prompt']!r} / answer {answer!r}; "
        "give the example an 'answer_prefix'"
    )
