"""Trainable-parameter set-up: full, LoRA and frozen modes; a step moves exactly what trains."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel

from c2s_lightning.data.prompts import COMPARISON_ANSWER, COMPARISON_PROMPT
from c2s_lightning.models.adapters import configure_trainable, model_parts, parameter_counts, unused_parameters
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


TINY = ("tiny-llava", "tiny-llava-next", "tiny-qwen2-vl", "tiny-idefics3", "tiny-mplug-owl2")


@pytest.mark.parametrize("mode", ["full", "lora"])
@pytest.mark.parametrize("family", TINY)
def test_every_trainable_parameter_receives_a_gradient(batch_for, family, mode):
    # DDP waits for a gradient of every trainable parameter: one that the forward never reaches
    # makes it stop at the first step, so none may be left trainable
    backbone = build_backbone(family)
    model = configure_trainable(backbone.model, mode, train_vision=True, train_projector=True)
    model.train()
    model(**model_inputs(batch_for(backbone))).loss.backward()
    trainable = _trainable(model)
    assert any("vision" in n or "visual" in n for n in trainable)  # the tower trains, all but its unused parts
    assert {n for n, p in model.named_parameters() if p.requires_grad and p.grad is None} == set()


def test_unused_vision_parts_follow_the_feature_layer(batch_for):
    backbone = build_backbone("tiny-llava")  # SigLIP, 2 encoder layers, reads hidden_states[-1]
    tower = "model.vision_tower."
    norm = {tower + "post_layernorm.weight", tower + "post_layernorm.bias"}
    assert unused_parameters(backbone.model) == norm  # hidden_states[-1] is taken before the final norm
    backbone.model.config.vision_feature_layer = -2  # LLaVA-1.5's choice: the last layer is skipped too
    last_layer = {n for n, _ in backbone.model.named_parameters() if n.startswith(tower + "encoder.layers.1.")}
    assert last_layer and unused_parameters(backbone.model) == norm | last_layer
    model = configure_trainable(backbone.model, "frozen", train_vision=True, train_projector=False)
    model.train()
    model(**model_inputs(batch_for(backbone))).loss.backward()
    without_grad = {n for n, p in model.named_parameters() if p.grad is None}
    assert without_grad >= norm | last_layer and not (without_grad & _trainable(model))
    assert any(n.startswith(tower + "encoder.layers.0.") for n in _trainable(model))


def test_unknown_mode_is_rejected(tiny_llava):
    with pytest.raises(ValueError, match="mode"):
        configure_trainable(tiny_llava.model, "partial")
