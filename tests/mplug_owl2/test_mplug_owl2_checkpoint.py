"""The released-checkpoint loader: key mapping, file layouts, and its errors."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import DATA, released_config_dict
from safetensors.torch import save_file

from c2s_lightning.models.mplug_owl2 import (
    CheckpointError,
    MPLUGOwl2Config,
    MPLUGOwl2ForCausalLM,
    config_from_released,
    convert_released_state_dict,
    load_released_checkpoint,
    read_checkpoint_files,
)
from c2s_lightning.models.mplug_owl2.checkpoint import check_state_dict


def write_folder(folder, reference, weights) -> None:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(released_config_dict(reference["description"])))
    save_file(weights, str(folder / "model.safetensors"))


def test_config_from_released_reads_all_sizes(reference):
    config = config_from_released(released_config_dict(reference["description"]))
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (64, 2, 200)
    assert config.vision.patch_size == 8 and config.vision.image_size == 32
    assert config.abstractor.intermediate_size == 88 and config.num_visual_tokens == 9
    assert config.rope_parameters["rope_theta"] == 10000.0 and config.rms_norm_eps == 1e-6


def test_multiway_keys_are_renamed_and_extras_dropped(reference):
    weights = dict(reference["weights"])
    weights["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(8)
    config = config_from_released(released_config_dict(reference["description"]))
    converted = convert_released_state_dict(weights, config)
    assert torch.equal(
        converted["model.layers.1.self_attn.v_proj.visual.weight"],
        weights["model.layers.1.self_attn.v_proj.multiway.1.weight"],
    )
    assert torch.equal(
        converted["model.layers.0.input_layernorm.text.weight"],
        weights["model.layers.0.input_layernorm.multiway.0.weight"],
    )
    assert not [k for k in converted if "multiway" in k or "pos_embed" in k or "inv_freq" in k]
    check_state_dict(MPLUGOwl2ForCausalLM(config), converted)  # must not raise


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda w: w.pop("model.layers.1.self_attn.k_proj.multiway.1.weight"), r"missing keys \(1\).*k_proj\.visual"),
        (lambda w: w.__setitem__("model.extra.weight", torch.zeros(2)), r"unexpected keys \(1\).*model\.extra"),
        (lambda w: w.__setitem__("lm_head.weight", torch.zeros(201, 64)), r"shape mismatches.*lm_head"),
        (lambda w: w["model.visual_abstractor.encoder.layers.0.crossattention.attention.k_pos_embed"].add_(0.1),
         r"k_pos_embed differs"),
    ],
    ids=["missing", "unexpected", "shape", "position_table"],
)
def test_mismatching_checkpoint_raises_clear_error(tmp_path, reference, edit, message):
    weights = {k: v.clone() for k, v in reference["weights"].items()}
    edit(weights)
    write_folder(tmp_path / "ckpt", reference, weights)
    with pytest.raises(CheckpointError, match=message):
        load_released_checkpoint(tmp_path / "ckpt")


def test_folder_without_weights_raises(tmp_path):
    with pytest.raises(CheckpointError, match="No weights"):
        read_checkpoint_files(tmp_path)


def test_dtype_and_trainable_parameters(tmp_path, reference):
    write_folder(tmp_path / "ckpt", reference, reference["weights"])
    model = load_released_checkpoint(tmp_path / "ckpt", dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert all(p.requires_grad for p in model.parameters())
    assert not [name for name, b in model.named_buffers() if b.is_meta]
    assert not model.training


def full_size_released_keys() -> dict[str, tuple[int, ...]]:
    """Section B of keys.txt (the released full-size key pattern) expanded over layer indices."""
    keys = {}
    for line in (DATA / "keys.txt").read_text().split("## key<TAB>shape<TAB>count")[1].splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, shape, count = line.split("\t")
        dims = tuple(int(d) for d in re.findall(r"\d+", shape))
        for index in range(int(count)) if "{i}" in key else [None]:
            keys[key.replace("{i}", str(index))] = dims
    return keys


def test_full_size_model_matches_released_key_pattern():
    released = full_size_released_keys()
    assert len(released) > 500
    with torch.device("meta"):
        model = MPLUGOwl2ForCausalLM(MPLUGOwl2Config())
        fake = {k: torch.empty(shape) for k, shape in released.items() if "pos_embed" not in k}
    config = MPLUGOwl2Config()
    assert config.num_visual_tokens == 65
    check_state_dict(model, convert_released_state_dict(fake, config))
    tables = model.model.visual_abstractor.position_tables(config)
    assert tables[0].shape == released["model.visual_abstractor.encoder.layers.0.crossattention.attention.q_pos_embed"]
    assert tables[1].shape == released["model.visual_abstractor.encoder.layers.0.crossattention.attention.k_pos_embed"]
