"""Backbone builders, the answer-word check and the comparator's level logits."""

from __future__ import annotations

import pytest
import torch

from c2s_lightning.data.levels import LEVELS
from c2s_lightning.data.prompts import COMPARISON_PROMPT, RATING_LEVELS
from c2s_lightning.models.backbones import assemble_backbone, build_backbone
from c2s_lightning.models.comparator import Comparator
from c2s_lightning.models.encoding import AnswerWordError, model_inputs
from c2s_lightning.models.tiny import TINY_FAMILIES, build_tiny
from c2s_lightning.models.tiny_tokenizer import tiny_tokenizer


@pytest.mark.parametrize("name", sorted(TINY_FAMILIES))
def test_each_tiny_family_gives_level_logits(tiny_backbone_cache, make_images, name):
    backbone = tiny_backbone_cache(name)
    tokenizer = backbone.processor.tokenizer
    assert tokenizer.convert_ids_to_tokens(backbone.level_token_ids) == list(LEVELS)
    assert tokenizer.convert_ids_to_tokens(backbone.rating_token_ids) == list(RATING_LEVELS)
    assert backbone.model_id == f"{name}@seed0"
    logits = Comparator(backbone).level_logits(make_images(2), make_images(2, seed=1))
    assert logits.shape == (2, 5) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert not torch.allclose(logits[0], logits[1])  # the images matter


def test_tiny_llava_defaults_are_the_measured_recipe(tiny_llava):
    config = tiny_llava.model.config
    vision, text = config.vision_config, config.text_config
    assert (vision.hidden_size, vision.num_hidden_layers, vision.num_attention_heads) == (32, 2, 4)
    assert (vision.image_size, vision.patch_size) == (32, 8)
    assert (text.hidden_size, text.intermediate_size, text.num_hidden_layers) == (64, 128, 2)
    assert (text.num_attention_heads, text.num_key_value_heads) == (4, 2)
    n_params = sum(p.numel() for p in tiny_llava.model.parameters())
    assert 100_000 < n_params < 150_000


def test_tiny_sizes_override_and_show_in_model_id(make_images):
    backbone = build_backbone("tiny-llava", image_size=48, hidden_size=32, seed=3)
    assert backbone.model_id == "tiny-llava@seed3[hidden_size=32,image_size=48]"
    assert backbone.model.config.text_config.hidden_size == 32
    image_token = backbone.model.config.image_token_index
    batch = backbone.encoder.encode_query([{"images": make_images(2), "prompt": COMPARISON_PROMPT}])
    assert (batch["input_ids"] == image_token).sum() == 2 * (48 // 8) ** 2


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a, _ = build_tiny("tiny-llava", seed=5)
    assert torch.equal(torch.rand(1), expected)
    b, _ = build_tiny("tiny-llava", seed=5)
    c, _ = build_tiny("tiny-llava", seed=6)
    wa, wb, wc = (m.get_input_embeddings().weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_bad_arguments_are_rejected_before_any_loading():
    with pytest.raises(ValueError, match="dtype"):
        build_backbone("tiny-llava", dtype="float8")
    with pytest.raises(TypeError, match="hidden_size"):
        build_backbone("some-org/some-model", hidden_size=8)
    with pytest.raises(TypeError, match="unknown tiny size"):
        build_backbone("tiny-llava", hiden_size=8)
    with pytest.raises(ValueError, match="unknown backbone 'tiny-nope'"):
        build_tiny("tiny-nope")
    with pytest.raises(ValueError, match="(?s)did you mean 'tiny-llava'.*tiny-mplug-owl2"):  # lists the registry
        build_backbone("tiny-lava")


def _llava_with_tokenizer(drop_words):
    model, processor = build_tiny("tiny-llava")
    processor.tokenizer = tiny_tokenizer("llava", drop_words=drop_words)
    return model, processor


def test_split_level_word_fails_loudly_naming_the_pieces():
    model, processor = _llava_with_tokenizer(["superior"])
    with pytest.raises(AnswerWordError) as error:
        assemble_backbone(model, processor, model_id="x")
    message = str(error.value)
    assert "'superior'" in message and "'##u'" in message and "add_level_tokens" in message
    assert "'inferior'" not in message  # only the offending word is named


def test_add_level_tokens_makes_the_word_one_token(make_images):
    model, processor = _llava_with_tokenizer(["superior"])
    vocab_before = model.get_input_embeddings().weight.shape[0]
    backbone = assemble_backbone(model, processor, model_id="x", add_level_tokens=True)
    assert backbone.level_token_ids[-1] == vocab_before  # the new token, appended
    assert model.get_input_embeddings().weight.shape[0] == vocab_before + 1
    assert processor.tokenizer.convert_ids_to_tokens(backbone.level_token_ids) == list(LEVELS)
    assert Comparator(backbone).level_logits(make_images(1), make_images(1, seed=1)).shape == (1, 5)


def test_rating_words_optional_unless_required():
    model, processor = _llava_with_tokenizer(["excellent"])
    assert assemble_backbone(model, processor, model_id="x").rating_token_ids is None
    assert assemble_backbone(model, processor, model_id="x", rating=False).rating_token_ids is None
    with pytest.raises(AnswerWordError, match="excellent"):
        assemble_backbone(model, processor, model_id="x", rating=True)


def test_level_logits_are_the_full_vocab_logits_at_the_level_ids(tiny_llava, make_images):
    first, second = make_images(3, size=(40, 28)), make_images(3, seed=1)
    logits = Comparator(tiny_llava).level_logits(first, second)
    examples = [{"images": [a, b], "prompt": COMPARISON_PROMPT} for a, b in zip(first, second)]
    batch = tiny_llava.encoder.encode_query(examples)
    with torch.no_grad():
        full = tiny_llava.model(**model_inputs(batch)).logits
    expected = full[torch.arange(3), batch["query_positions"]][:, tiny_llava.level_token_ids]
    torch.testing.assert_close(logits, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["tiny-llava", "tiny-qwen2-vl"])
def test_level_logits_do_not_depend_on_batch_size(tiny_backbone_cache, make_images, name):
    comparator = Comparator(tiny_backbone_cache(name))
    first, second = make_images(3, size=(32, 48)), make_images(3, seed=1)
    together = comparator.level_logits(first, second, batch_size=3)
    alone = comparator.level_logits(first, second, batch_size=1)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_comparator_restores_training_mode_and_reads_eval_logits(make_images):
    backbone = build_backbone("tiny-llava")
    comparator = Comparator(backbone)
    first, second = make_images(2), make_images(2, seed=1)
    eval_logits = comparator.level_logits(first, second)
    backbone.model.train()
    torch.testing.assert_close(comparator.level_logits(first, second), eval_logits)
    assert backbone.model.training


def test_rating_logits_and_order_of_pairs_matters(tiny_llava, make_images):
    comparator = Comparator(tiny_llava)
    images = make_images(2)
    assert comparator.rating_logits(images).shape == (2, 5)
    forward = comparator.level_logits(images[:1], images[1:])
    backward = comparator.level_logits(images[1:], images[:1])
    assert not torch.allclose(forward, backward)
    with pytest.raises(ValueError, match="first images"):
        comparator.level_logits(images, images[:1])


def test_bfloat16_backbone_casts_pixels_and_returns_float32(tiny_llava, make_images):
    half = build_backbone("tiny-llava", dtype="bfloat16")
    assert half.model.get_input_embeddings().weight.dtype == torch.bfloat16
    first, second = make_images(2), make_images(2, seed=1)
    logits = Comparator(half).level_logits(first, second)
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, Comparator(tiny_llava).level_logits(first, second), atol=0.05, rtol=0)
