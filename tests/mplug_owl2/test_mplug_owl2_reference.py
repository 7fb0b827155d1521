"""Numerical equivalence with the original mPLUG-Owl2 code, through the released-checkpoint loader."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import CASES, released_config_dict
from safetensors.torch import save_file

from c2s_lightning.models.mplug_owl2 import load_released_checkpoint

ATOL = 1e-5
PREFERENCE_IDS = [191, 192, 193, 194, 195]


def write_released_folder(folder, reference, layout: str) -> None:
    """Write the reference weights under the released names in one of the release's file layouts."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(released_config_dict(reference["description"])))
    weights = reference["weights"]
    if layout == "safetensors":
        save_file(weights, str(folder / "model.safetensors"))
        return
    keys = sorted(weights)
    shards = {"vision": [k for k in keys if "vision_model" in k], "rest": [k for k in keys if "vision_model" not in k]}
    suffix = "safetensors" if layout == "sharded_safetensors" else "bin"
    weight_map = {}
    for number, (_, shard_keys) in enumerate(shards.items(), start=1):
        name = f"model-{number:05d}-of-00002.{suffix}"
        tensors = {k: weights[k].clone() for k in shard_keys}
        save_file(tensors, str(folder / name)) if suffix == "safetensors" else torch.save(tensors, folder / name)
        weight_map.update(dict.fromkeys(shard_keys, name))
    index = "model.safetensors.index.json" if suffix == "safetensors" else "pytorch_model.bin.index.json"
    (folder / index).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


@pytest.fixture(scope="module", params=["safetensors", "sharded_safetensors", "sharded_bin"])
def released_folder(request, tmp_path_factory, reference):
    folder = tmp_path_factory.mktemp("released") / request.param
    write_released_folder(folder, reference, request.param)
    return folder


def run_case(model, reference, case):
    inputs = reference["inputs"]
    pixels = inputs[f"{case}.pixel_values"]
    with torch.no_grad():
        output = model(
            input_ids=inputs[f"{case}.input_ids"], pixel_values=pixels,
            attention_mask=inputs.get(f"{case}.attention_mask"), output_hidden_states=True,
        )
        vision = model.model.vision_model(pixels)
        features = model.model.get_image_features(pixels)
        embeds, modality = model.model.embed_inputs(
            model.model.expand_inputs(inputs[f"{case}.input_ids"], pixels)[0], pixels
        )
    return output, vision, features, embeds, modality


def max_diff(actual, expected) -> float:
    assert actual.shape == expected.shape
    return (actual.double() - expected.double()).abs().max().item()


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("case", CASES)
def test_logits_and_hidden_states_match_reference(released_folder, reference, case, attn):
    model = load_released_checkpoint(released_folder, attn_implementation=attn)
    assert model.config._attn_implementation == attn
    output, *_ = run_case(model, reference, case)
    expected = reference["outputs"]
    assert max_diff(output.logits, expected[f"{case}.logits"]) <= ATOL
    assert len(output.hidden_states) == model.config.num_hidden_layers + 1
    assert max_diff(torch.stack(output.hidden_states), expected[f"{case}.hidden_states"]) <= ATOL
    assert max_diff(output.hidden_states[-1], expected[f"{case}.last_hidden_state"]) <= ATOL
    pref = output.logits[:, -1, PREFERENCE_IDS]
    assert max_diff(pref, expected[f"{case}.pref_logits_last"]) <= ATOL


@pytest.mark.parametrize("case", CASES)
def test_intermediates_match_reference(released_folder, reference, case):
    model = load_released_checkpoint(released_folder, attn_implementation="eager")
    output, vision, features, embeds, modality = run_case(model, reference, case)
    expected = reference["outputs"]
    assert max_diff(vision, expected[f"{case}.vision_last_hidden_state"]) <= ATOL
    assert max_diff(features, expected[f"{case}.image_features"]) <= ATOL
    assert max_diff(embeds, expected[f"{case}.inputs_embeds"]) <= ATOL
    assert torch.equal(modality, expected[f"{case}.modality_indicators"])
    assert torch.equal(output.modality_indicators, expected[f"{case}.modality_indicators"])
    if case == "two_images_padded":
        assert torch.equal(output.attention_mask, expected[f"{case}.attention_mask_2d_after_splice"])


def test_padding_does_not_change_unpadded_positions(reference):
    expected = reference["outputs"]
    mask = reference["inputs"]["two_images_padded.attention_mask"]
    assert mask[1, -3:].eq(0).all() and mask[0].eq(1).all()
    padded, plain = expected["two_images_padded.logits"], expected["two_images.logits"]
    assert torch.equal(padded[0], plain[0]) and torch.equal(padded[1, :-3], plain[1, :-3])
