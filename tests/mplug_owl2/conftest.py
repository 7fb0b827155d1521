"""Fixtures for the mPLUG-Owl2 port: the stored reference, released-format folders, a tiny tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from c2s_lightning.models.mplug_owl2 import MPLUGOwl2ForCausalLM, tiny_mplug_owl2_config

DATA = Path(__file__).parent / "data"
CASES = ("two_images", "one_image", "two_images_padded")
WORDS = [
    "<unk>", "<s>", "</s>", "<pad>", "USER:", "ASSISTANT:", "Compared", "with", "the", "first",
    "image,", "how", "is", "quality", "of", "second", "image?", "The", "inferior", "worse",
    "similar", "better", "superior",
]


@pytest.fixture(scope="session")
def reference() -> dict:
    """The reference description (config.json), inputs, outputs and released-name weights."""
    return {
        "description": json.loads((DATA / "config.json").read_text()),
        "inputs": load_file(str(DATA / "inputs.safetensors")),
        "outputs": load_file(str(DATA / "outputs.safetensors")),
        "weights": load_file(str(DATA / "weights.safetensors")),
    }


def released_config_dict(description: dict) -> dict:
    """A config.json in the release's layout (LLaMA fields + visual_config) for the tiny model."""
    sizes = description["config"]
    text = dict(sizes["text (MPLUGOwl2Config / LlamaConfig fields)"])
    visual = {
        "visual_model": sizes["vision (visual_config['visual_model'] -> MplugOwlVisionConfig)"],
        "visual_abstractor": sizes[
            "abstractor (visual_config['visual_abstractor'] -> MplugOwlVisualAbstractorConfig)"
        ],
    }
    return {**text, "model_type": "mplug_owl2", "architectures": ["MPLUGOwl2LlamaForCausalLM"],
            "visual_config": visual}


@pytest.fixture(scope="session")
def tiny_model() -> MPLUGOwl2ForCausalLM:
    """A randomly initialised tiny model (eager attention), shared read-only by tests."""
    torch.manual_seed(0)
    config = tiny_mplug_owl2_config()
    config._attn_implementation = "eager"
    return MPLUGOwl2ForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A word-level tokenizer that adds BOS, built in-process."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
