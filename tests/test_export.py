"""Export to a Hugging Face folder and load back: identical level logits."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForImageTextToText, AutoProcessor

from c2s_lightning.data.prompts import COMPARISON_PROMPT
from c2s_lightning.models.adapters import configure_trainable
from c2s_lightning.models.backbones import build_backbone
from c2s_lightning.models.comparator import Comparator
from c2s_lightning.models.export import export_pretrained, load_backbone
from c2s_lightning.models.fingerprint import weights_fingerprint


@pytest.fixture
def pairs(make_images):
    return make_images(2, size=(40, 30)), make_images(2, seed=1)


def _lora_backbone(name: str = "tiny-llava"):
    """A LoRA-wrapped tiny backbone whose adapters and projector are moved off their init."""
    backbone = build_backbone(name)
    backbone.model = configure_trainable(backbone.model, "lora", lora_rank=4)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in backbone.model.parameters():
            if param.requires_grad:
                param.add_(0.2 * torch.randn(param.shape, generator=generator))
    return backbone


@pytest.mark.parametrize("name", ["tiny-llava", "tiny-qwen2-vl"])
def test_export_then_load_gives_identical_level_logits(tmp_path, pairs, name):
    backbone = build_backbone(name, seed=1)
    expected = Comparator(backbone).level_logits(*pairs)
    export_pretrained(backbone, out_dir=tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    loaded = load_backbone(tmp_path)
    assert loaded.model_id == weights_fingerprint(tmp_path) and loaded.level_token_ids == backbone.level_token_ids
    torch.testing.assert_close(Comparator(loaded).level_logits(*pairs), expected, atol=0, rtol=0)


def test_exported_tiny_llava_loads_with_plain_auto_classes(tmp_path, tiny_llava):
    export_pretrained(tiny_llava.model, tiny_llava.processor, tmp_path)
    model = AutoModelForImageTextToText.from_pretrained(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    assert type(model) is type(tiny_llava.model)
    assert processor.chat_template == tiny_llava.processor.chat_template
    assert processor.tokenizer.get_vocab() == tiny_llava.processor.tokenizer.get_vocab()


def test_merged_lora_export_matches_the_adapter_model(tmp_path, pairs):
    backbone = _lora_backbone()
    expected = Comparator(backbone).level_logits(*pairs)
    base_logits = Comparator(build_backbone("tiny-llava")).level_logits(*pairs)
    assert not torch.allclose(expected, base_logits, atol=1e-3)  # the adapters do matter
    export_pretrained(backbone, out_dir=tmp_path, merge_lora=True)
    assert not (tmp_path / "adapter_config.json").exists()
    loaded = load_backbone(tmp_path)
    assert not isinstance(loaded.model, PeftModel)
    torch.testing.assert_close(Comparator(loaded).level_logits(*pairs), expected, atol=1e-5, rtol=1e-5)
    # merging computed new weights; the live model still has its adapters, unchanged
    assert isinstance(backbone.model, PeftModel)
    torch.testing.assert_close(Comparator(backbone).level_logits(*pairs), expected, atol=0, rtol=0)


def test_unmerged_export_writes_the_adapter_alone(tmp_path, pairs):
    backbone = _lora_backbone()
    expected = Comparator(backbone).level_logits(*pairs)
    export_pretrained(backbone, out_dir=tmp_path, merge_lora=False)
    assert (tmp_path / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "model.safetensors").exists()
    loaded = load_backbone(tmp_path)
    assert isinstance(loaded.model, PeftModel)
    torch.testing.assert_close(Comparator(loaded).level_logits(*pairs), expected, atol=0, rtol=0)


def test_unmerged_export_needs_a_backbone(tmp_path, tiny_llava):
    model = configure_trainable(build_backbone("tiny-llava").model, "lora")
    with pytest.raises(ValueError, match="Backbone"):
        export_pretrained(model, tiny_llava.processor, tmp_path, merge_lora=False)
    with pytest.raises(ValueError, match="processor"):
        export_pretrained(model, None, tmp_path)


def test_loading_a_folder_honours_image_size_where_it_can(tmp_path, make_images):
    qwen_dir, llava_dir = tmp_path / "qwen", tmp_path / "llava"
    export_pretrained(build_backbone("tiny-qwen2-vl"), out_dir=qwen_dir)
    export_pretrained(build_backbone("tiny-llava"), out_dir=llava_dir)
    # Qwen2-VL takes any resolution: 64 px with patch 8 and merge 2 gives 16 tokens per image
    loaded = load_backbone(qwen_dir, image_size=64)
    query = loaded.encoder.encode_query(
        [{"images": make_images(2, size=(64, 64)), "prompt": COMPARISON_PROMPT}]
    )
    assert (query["input_ids"] == loaded.model.config.image_token_id).sum() == 2 * 16
    with pytest.raises(ValueError, match="image_size"):
        load_backbone(llava_dir, image_size=64)
