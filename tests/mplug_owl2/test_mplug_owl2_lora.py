"""A peft LoRA wrap of the language model's q_proj/v_proj trains, and only the adapters move."""

from __future__ import annotations

import re

import torch
from peft import LoraConfig, get_peft_model

from c2s_lightning.models.mplug_owl2 import (
    IMAGE_TOKEN_INDEX,
    MPLUGOwl2ForCausalLM,
    lora_target_modules,
    tiny_mplug_owl2_config,
)


def test_lora_on_q_and_v_proj_trains_only_adapters():
    torch.manual_seed(0)
    model = MPLUGOwl2ForCausalLM(tiny_mplug_owl2_config())
    pattern = lora_target_modules(("q_proj", "v_proj"))
    targeted = {n for n, m in model.named_modules() if re.match(pattern, n)}
    assert targeted == {
        f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "v_proj.text", "v_proj.visual")
    }
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=pattern, init_lora_weights=False))
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert len(trainable) == 2 * 6  # A and B for 6 wrapped Linears
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}

    ids = torch.randint(3, 190, (2, 10))
    ids[:, 2] = IMAGE_TOKEN_INDEX
    labels = ids.clone()
    labels[:, :5] = -100
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    peft_model.train()
    loss = peft_model(input_ids=ids, pixel_values=torch.randn(2, 3, 32, 32), labels=labels).loss
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()

    for name, param in peft_model.named_parameters():
        changed = not torch.equal(param.detach(), before[name])
        assert changed == (name in trainable), name
