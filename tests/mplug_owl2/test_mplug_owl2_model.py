"""Behaviour of the port beyond the reference: layouts, loss, save/load, caching, checkpointing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from c2s_lightning.models.mplug_owl2 import (
    IMAGE_TOKEN_INDEX,
    MPLUGOwl2ForCausalLM,
    expand_image_placeholders,
    tiny_mplug_owl2_config,
)

IMG = IMAGE_TOKEN_INDEX


def batch(seed: int = 0):
    """Two right-padded compact rows: row 0 has two images, row 1 one image and 2 pads."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 190, (2, 12), generator=generator)
    ids[0, [1, 3]] = IMG
    ids[1, 2] = IMG
    ids[1, -2:] = 0
    mask = torch.ones_like(ids)
    mask[1, -2:] = 0
    pixels = torch.randn(3, 3, 32, 32, generator=generator)
    return ids, mask, pixels


def test_compact_and_expanded_layouts_agree(tiny_model):
    ids, mask, pixels = batch()
    with torch.no_grad():
        compact = tiny_model(input_ids=ids, pixel_values=pixels, attention_mask=mask)
        new_ids, new_mask, _ = expand_image_placeholders(ids, 9, IMG, mask)
        expanded = tiny_model(input_ids=new_ids, pixel_values=pixels, attention_mask=new_mask)
    # Row 0 grows by 16, row 1 by 8: row 1 is padded to the same length.
    assert compact.logits.shape == (2, 12 + 16, 200)
    assert torch.equal(compact.attention_mask, new_mask)
    assert new_mask[1].sum() == 10 + 8 and new_mask[1, 18:].eq(0).all()
    torch.testing.assert_close(compact.logits, expanded.logits, rtol=0, atol=1e-6)


def test_rows_of_different_lengths_equal_rows_alone(tiny_model):
    ids, mask, pixels = batch()
    with torch.no_grad():
        together = tiny_model(input_ids=ids, pixel_values=pixels, attention_mask=mask).logits
        row0 = tiny_model(input_ids=ids[:1], pixel_values=pixels[:2]).logits
        row1 = tiny_model(input_ids=ids[1:, :10], pixel_values=pixels[2:]).logits
    torch.testing.assert_close(together[0], row0[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(together[1, :18], row1[0], rtol=0, atol=1e-5)


def test_labels_give_shifted_cross_entropy_ignoring_visual_positions(tiny_model):
    ids, mask, pixels = batch()
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        out = tiny_model(input_ids=ids, pixel_values=pixels, attention_mask=mask, labels=labels)
    _, _, expanded = expand_image_placeholders(ids, 9, IMG, mask, labels)
    assert expanded[out.modality_indicators == 1].eq(-100).all()
    assert not expanded.eq(IMG).any()
    manual = F.cross_entropy(out.logits[:, :-1].reshape(-1, 200), expanded[:, 1:].reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, manual)


def test_inputs_embeds_path_matches_input_ids(tiny_model):
    ids, mask, pixels = batch()
    with torch.no_grad():
        ref = tiny_model(input_ids=ids, pixel_values=pixels, attention_mask=mask)
        new_ids, new_mask, _ = tiny_model.model.expand_inputs(ids, pixels, mask)
        embeds, modality = tiny_model.model.embed_inputs(new_ids, pixels)
        out = tiny_model(inputs_embeds=embeds, modality_indicators=modality, attention_mask=new_mask)
        text_only = tiny_model(inputs_embeds=embeds, attention_mask=new_mask)
    torch.testing.assert_close(out.logits, ref.logits, rtol=0, atol=1e-6)
    # Without indicators every position takes the text branch: the visual branch matters.
    assert (text_only.logits - ref.logits).abs().max() > 1e-3


def test_placeholder_count_mismatch_raises(tiny_model):
    ids, mask, pixels = batch()
    with pytest.raises(ValueError, match="3 image placeholders.*2 image"):
        tiny_model(input_ids=ids, pixel_values=pixels[:2], attention_mask=mask)


def test_save_and_reload_round_trip(tmp_path, tiny_model):
    ids, mask, pixels = batch()
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    reloaded = MPLUGOwl2ForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert reloaded.config.vision_config == tiny_model.config.vision_config
    with torch.no_grad():
        a = tiny_model(input_ids=ids, pixel_values=pixels, attention_mask=mask).logits
        b = reloaded(input_ids=ids, pixel_values=pixels, attention_mask=mask).logits
    assert torch.equal(a, b)
    assert torch.equal(reloaded.model.visual_abstractor.key_pos, tiny_model.model.visual_abstractor.key_pos)


def test_sdpa_agrees_with_eager(tiny_model):
    ids, mask, pixels = batch()
    sdpa = MPLUGOwl2ForCausalLM(tiny_model.config.__class__(**tiny_model.config.to_dict())).eval()
    sdpa.load_state_dict(tiny_model.state_dict())
    sdpa.set_attn_implementation("sdpa")
    assert sdpa.config._attn_implementation == "sdpa"
    with torch.no_grad():
        a = tiny_model(input_ids=ids, pixel_values=pixels, attention_mask=mask).logits
        b = sdpa(input_ids=ids, pixel_values=pixels, attention_mask=mask).logits
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_cached_greedy_generation_matches_recomputation(tiny_model):
    ids, _, pixels = batch()
    prompt = ids[:1, :8]
    with torch.no_grad():
        generated = tiny_model.generate(
            input_ids=prompt, pixel_values=pixels[:2], max_new_tokens=5, do_sample=False, use_cache=True,
            pad_token_id=0, eos_token_id=None,
        )
        sequence, _, _ = expand_image_placeholders(prompt, 9, IMG)
        for _ in range(5):
            logits = tiny_model(input_ids=sequence, pixel_values=pixels[:2], use_cache=False).logits
            sequence = torch.cat([sequence, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(generated[:, -5:], sequence[:, -5:])


def test_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    model = MPLUGOwl2ForCausalLM(tiny_mplug_owl2_config())
    ids, mask, pixels = batch()
    labels = ids.masked_fill(mask == 0, -100)
    grads = []
    for checkpointing in (False, True):
        model.zero_grad()
        if checkpointing:
            enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
            enable()
        model.train()
        model(input_ids=ids, pixel_values=pixels, attention_mask=mask, labels=labels).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert model.supports_gradient_checkpointing and model.model.layers[0].gradient_checkpointing
    assert model.model.vision_model.encoder.layers[0].gradient_checkpointing
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == len(list(model.parameters()))
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6, msg=name)
