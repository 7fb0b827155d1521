"""Trainable-parameter set-up: full, LoRA and frozen modes; a step moves exactly what trains."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel

from c2s_lightning.data.prompts import COMPARISON_ANSWER, COMPARISON_PROMPT
from c2s_lightning.models.adapters import configure_trainable, model_parts, parameter_counts
from c2s_lightning.models.backbones import build_backbone
from c2s_lightning.models.encoding import model_inputs


def _trainable(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def _train_steps(model, batch, steps: int = 2) -> set[str]:
    """Run SGD steps; return the names of parameters whose values changed."""
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    for _ in range(steps):  # LoRA's B starts at 0, so A only moves from the second step on
        optimizer.zero_grad()
        model(**model_inputs(batch)).loss.backward()
        optimizer.step()
    return {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}


@pytest.fixture
def batch_for(make_images):
    def make(backbone):
        images = make_images(4)
        examples = [
            {"images": pair, "prompt": COMPARISON_PROMPT, "answer": COMPARISON_ANSWER.format(level=level)}
            for pair, level in ((images[:2], "better"), (images[2:], "worse"))
        ]
        return backbone.encoder.encode_train(examples)

    return make


@pytest.mark.parametrize("train_projector", [True, False])
def test_lora_trains_exactly_the_adapters_and_projector(batch_for, train_projector):
    backbone = build_backbone("tiny-llava")
    model = configure_trainable(backbone.model, "lora", lora_rank=4, train_projector=train_projector)
    assert isinstance(model, PeftModel)
    trainable = _trainable(model)
    lora = {n for n in trainable if ".lora_A." in n or ".lora_B." in n}
    projector = {n for n in trainable if "multi_modal_projector.modules_to_save" in n}
    assert trainable == lora | projector
    assert bool(projector) == train_projector
    # q, k, v, o of both language-model layers, A and B each; nothing in the vision tower
    assert len(lora) == 2 * 4 * 2 and all(".language_model." in n for n in lora)
    n_trainable = sum(p.numel() for n, p in model.named_parameters() if n in trainable)
    assert parameter_counts(model)["trainable"] == n_trainable
    changed = _train_steps(model, batch_for(backbone))
    assert changed == trainable


def test_full_mode_trains_language_model_and_projector_not_vision(batch_for):
    backbone = build_backbone("tiny-llava")
    model = configure_trainable(backbone.model, "full")
    trainable = _trainable(model)
    assert not any(n.startswith("model.vision_tower.") for n in trainable)
    assert any(n.startswith("model.multi_modal_projector.") for n in trainable)
    assert "lm_head.weight" in trainable
    changed = _train_steps(model, batch_for(backbone), steps=1)
    assert changed <= trainable and not any(n.startswith("model.vision_tower.") for n in changed)
    # every weight matrix that takes part in the loss moves (embedding rows of unused tokens aside)
    assert {n for n in trainable if "layers" in n and n.endswith("proj.weight")} <= changed


def test_frozen_mode_with_vision_and_without_projector():
    backbone = build_backbone("tiny-llava")
    model = configure_trainable(backbone.model, "frozen", train_vision=True, train_projector=False)
    trainable = _trainable(model)
    assert trainable and all(n.startswith("model.vision_tower.") for n in trainable)
    nothing = configure_trainable(build_backbone("tiny-llava").model, "frozen", train_projector=False)
    assert parameter_counts(nothing)["trainable"] == 0


def test_qwen2_vl_projector_inside_vision_is_handled():
    backbone = build_backbone("tiny-qwen2-vl")
    parts = model_parts(backbone.model)
    assert parts.vision == ("model.visual",) and parts.projector == ("model.visual.merger",)
    trainable = _trainable(configure_trainable(backbone.model, "frozen"))
    assert trainable and all(n.startswith("model.visual.merger.") for n in trainable)


def test_lora_on_idefics3_targets_its_text_model(batch_for):
    backbone = build_backbone("tiny-idefics3")
    model = configure_trainable(backbone.model, "lora", train_projector=False)
    trainable = _trainable(model)
    assert len(trainable) == 16 and all(".text_model." in n and ".lora_" in n for n in trainable)
    assert _train_steps(model, batch_for(backbone)) == trainable


def test_unknown_mode_is_rejected(tiny_llava):
    with pytest.raises(ValueError, match="mode"):
        configure_trainable(tiny_llava.model, "partial")
