"""Messages -> tokens: label masking, answer and query positions, picklability."""

from __future__ import annotations

import pickle

import pytest
import torch

from c2s_lightning.data.levels import LEVELS
from c2s_lightning.data.prompts import (
    COMPARISON_ANSWER,
    COMPARISON_PROMPT,
    RATING_ANSWER,
    RATING_LEVELS,
    RATING_PROMPT,
)
from c2s_lightning.models.encoding import IGNORE_INDEX, ComparisonEncoder, answer_prefix
from c2s_lightning.models.tiny import TINY_FAMILIES, build_tiny


def _examples(make_images):
    """Two comparisons and a (shorter) single-image rating, so the batch needs padding."""
    a, b, c, d, e = make_images(5, size=(40, 30))
    return [
        {"images": [a, b], "prompt": COMPARISON_PROMPT, "answer": COMPARISON_ANSWER.format(level="better")},
        {"images": [c, d], "prompt": COMPARISON_PROMPT, "answer": COMPARISON_ANSWER.format(level="inferior")},
        {"images": [e], "prompt": RATING_PROMPT, "answer": RATING_ANSWER.format(level="good")},
    ]


@pytest.mark.parametrize("name", sorted(TINY_FAMILIES))
def test_only_the_answer_is_supervised(tiny_backbone_cache, make_images, name):
    backbone = tiny_backbone_cache(name)
    tokenizer = backbone.processor.tokenizer
    examples = _examples(make_images)
    batch = backbone.encoder.encode_train(examples)
    labels, ids, mask = batch["labels"], batch["input_ids"], batch["attention_mask"]
    assert (labels[mask == 0] == IGNORE_INDEX).all()  # padding
    assert (mask[:, 0] == 1).all() and (mask[2] == 0).any()  # right-padded, rating row shorter
    for b, ex in enumerate(examples):
        supervised = (labels[b] != IGNORE_INDEX).nonzero().squeeze(1)
        start, end = supervised[0].item(), supervised[-1].item() + 1
        assert torch.equal(supervised, torch.arange(start, end))  # one contiguous span
        assert torch.equal(labels[b, start:end], ids[b, start:end])
        assert end == mask[b].sum()  # runs to the last real token (the end of turn)
        words = tokenizer.decode(ids[b, start:end], skip_special_tokens=True)
        assert words.replace(" .", ".") == ex["answer"]
        assert ids[b, end - 1].item() == tokenizer.convert_tokens_to_ids(_end_of_turn(name))


def _end_of_turn(name: str) -> str:
    return {"tiny-qwen2-vl": "<|im_end|>", "tiny-idefics3": "<end_of_utterance>"}.get(name, "</s>")


@pytest.mark.parametrize("name", sorted(TINY_FAMILIES))
def test_answer_positions_hold_the_answer_word(tiny_backbone_cache, make_images, name):
    backbone = tiny_backbone_cache(name)
    batch = backbone.encoder.encode_train(_examples(make_images))
    words = backbone.processor.tokenizer.convert_ids_to_tokens(
        batch["input_ids"].gather(1, batch["answer_positions"][:, None]).squeeze(1)
    )
    assert words == ["better", "inferior", "good"]
    level_ids = torch.tensor(backbone.level_token_ids)
    assert batch["labels"][0, batch["answer_positions"][0]] == level_ids[LEVELS.index("better")]
    good = backbone.rating_token_ids[RATING_LEVELS.index("good")]
    assert batch["labels"][2, batch["answer_positions"][2]] == good
    # supervision starts exactly at the answer prefix ("The quality of the second image is")
    first = batch["answer_positions"][0].item() - 7
    assert (batch["labels"][0, :first] == IGNORE_INDEX).all() and batch["labels"][0, first] != IGNORE_INDEX


@pytest.mark.parametrize("name", ["tiny-llava", "tiny-qwen2-vl", "tiny-idefics3"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_query_positions_are_the_last_prompt_token(tiny_backbone_cache, make_images, name, side):
    backbone = tiny_backbone_cache(name)
    examples = _examples(make_images)
    train = backbone.encoder.encode_train(examples)
    query = backbone.encoder.encode_query(examples, padding_side=side)
    positions = query["query_positions"]
    tokens = backbone.processor.tokenizer.convert_ids_to_tokens(
        query["input_ids"].gather(1, positions[:, None]).squeeze(1)
    )
    assert tokens == ["is", "is", "is"]
    assert (query["attention_mask"].gather(1, positions[:, None]) == 1).all()
    if side == "right":
        # the query is the training text cut before the answer word, token for token
        assert torch.equal(positions, train["answer_positions"] - 1)
        assert "labels" not in query
    else:
        assert (positions == query["input_ids"].shape[1] - 1).all()


def test_encoder_pickles_for_dataloader_workers(tiny_llava, make_images):
    examples = _examples(make_images)
    clone = pickle.loads(pickle.dumps(tiny_llava.encoder))
    expected, got = tiny_llava.encoder.encode_train(examples), clone.encode_train(examples)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert clone(examples)["labels"].equal(expected["labels"])  # usable as a collate_fn


def test_template_that_changes_the_prompt_tokens_is_rejected(make_images):
    _, processor = build_tiny("tiny-llava")
    # The generation prompt opens another user turn, so the prompt alone is not a token prefix
    # of the finished exchange and the answer cannot be located.
    processor.chat_template = processor.chat_template.replace(
        "{% if add_generation_prompt %}ASSISTANT:", "{% if add_generation_prompt %}USER:"
    )
    with pytest.raises(ValueError, match="cannot be located"):
        ComparisonEncoder(processor).encode_train(_examples(make_images)[:1])


def test_answer_prefix_is_found_or_refused():
    assert answer_prefix({"prompt": COMPARISON_PROMPT}) == "The quality of the second image is"
    assert answer_prefix({"prompt": "x", "answer": RATING_ANSWER.format(level="bad")}) == (
        "The quality of the picture is"
    )
    assert answer_prefix({"prompt": "x", "answer_prefix": "It is"}) == "It is"
    with pytest.raises(ValueError, match="answer_prefix"):
        answer_prefix({"prompt": "<image> Describe it.", "answer": "A cat."})
    with pytest.raises(ValueError, match="padding"):
        ComparisonEncoder(None, query_padding_side="middle")
