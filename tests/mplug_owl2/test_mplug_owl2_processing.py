"""Prompt tokenisation with <|image|>, the image preprocessing, and the processor end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from c2s_lightning.data.images import pad_square as expand_to_square
from c2s_lightning.models.mplug_owl2 import (
    IMAGE_TOKEN_INDEX as IMG,
    MPLUGOwl2ImageProcessor,
    MPLUGOwl2Processor,
    tokenizer_image_token,
)

PROMPT = "USER: <|image|> <|image|> Compared with the first image, how is the quality of the second image? ASSISTANT:"


def ids_of(tokenizer, text):
    return tokenizer(text, add_special_tokens=False).input_ids


def test_tokenizer_image_token_places_placeholders_with_one_bos(tiny_tokenizer):
    ids = tokenizer_image_token(PROMPT, tiny_tokenizer)
    tail = "Compared with the first image, how is the quality of the second image? ASSISTANT:"
    assert ids == [1, ids_of(tiny_tokenizer, "USER:")[0], IMG, IMG, *ids_of(tiny_tokenizer, tail)]
    assert ids.count(1) == 1


def test_tokenizer_image_token_release_quirk_when_prompt_starts_with_image(tiny_tokenizer):
    # The release keeps no leading BOS and the BOS of every later chunk in this case.
    assert tokenizer_image_token("<|image|> The <|image|>", tiny_tokenizer) == [IMG, 1, 17, IMG]
    assert tokenizer_image_token("The", tiny_tokenizer) == [1, 17]


def test_expand_to_square_centres_image_on_mean_colour():
    image = Image.new("RGB", (6, 2), (255, 0, 0))
    square = expand_to_square(image, (122, 116, 104))
    pixels = np.asarray(square)
    assert square.size == (6, 6)
    assert (pixels[2:4] == [255, 0, 0]).all()
    assert (pixels[:2] == [122, 116, 104]).all() and (pixels[4:] == [122, 116, 104]).all()
    tall = np.asarray(expand_to_square(Image.new("RGB", (1, 4), (0, 255, 0)), (0, 0, 0)))
    assert (tall[:, 1] == [0, 255, 0]).all() and (tall[:, [0, 2, 3]] == 0).all()


def test_image_processing_equals_clip_image_processor():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (37, 61, 3), dtype=np.uint8))
    ours = MPLUGOwl2ImageProcessor(image_size=48)
    assert ours.fill_colour == (122, 116, 104)
    clip = CLIPImageProcessorPil(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48})
    expected = clip(expand_to_square(image, ours.fill_colour), return_tensors="pt")["pixel_values"]
    assert torch.equal(ours(image), expected)


def test_processor_batches_expanded_placeholders(tiny_tokenizer, tiny_model):
    processor = MPLUGOwl2Processor.for_config(tiny_tokenizer, tiny_model.config)
    images = [Image.new("RGB", (40, 30), c) for c in ("red", "blue", "green")]
    out = processor([PROMPT, "USER: <|image|> The"], images)
    assert out["pixel_values"].shape == (3, 3, 32, 32)
    ids, mask = out["input_ids"], out["attention_mask"]
    assert ids.shape[0] == 2 and (ids[0] == IMG).sum() == 18 and (ids[1] == IMG).sum() == 9
    assert mask[1].sum() == 3 + 9 and mask[1, 12:].eq(0).all() and ids[1, 12:].eq(tiny_tokenizer.pad_token_id).all()
    with torch.no_grad():
        logits = tiny_model(**out).logits
    assert logits.shape == (*ids.shape, 200) and torch.isfinite(logits).all()
    left = processor([PROMPT, "USER: <|image|> The"], images, padding_side="left")
    assert left["attention_mask"][1, : ids.shape[1] - 12].eq(0).all()


def test_processor_rejects_wrong_image_count(tiny_tokenizer):
    processor = MPLUGOwl2Processor(tiny_tokenizer, num_visual_tokens=9)
    with pytest.raises(ValueError, match="2 <\\|image\\|> placeholders but 1 images"):
        processor(PROMPT, [Image.new("RGB", (8, 8))])


def test_processor_from_folder_reads_saved_tokenizer(tmp_path, tiny_tokenizer, tiny_model):
    tiny_tokenizer.save_pretrained(tmp_path)
    processor = MPLUGOwl2Processor.from_folder(str(tmp_path), tiny_model.config)
    assert processor.num_visual_tokens == 9 and processor.image_processor.image_size == 32
    assert tokenizer_image_token(PROMPT, processor.tokenizer) == tokenizer_image_token(PROMPT, tiny_tokenizer)
