"""models/hf_versions.py: cached image features reach the model on every supported transformers.

transformers 5.17's LLaVA forward swallows an unknown ``mm_encoder_outputs`` in its ``**kwargs``;
the fast path then gave every test image the same logits. Both ways of handing the features over
(``mm_encoder_outputs`` where the installed forward declares it, ``inputs_embeds`` otherwise) are
run here on whatever transformers is installed: the second by hiding the parameter from the
dispatch. The floor environment (``make test-floor``) runs this file on 5.17, where the installed
way is the second one.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from packaging.version import Version
from PIL import Image

from c2s_lightning.models import hf_versions
from c2s_lightning.models.comparator import Comparator
from c2s_lightning.models.fast_comparator import FastComparator

FAMILIES = ["tiny-llava", "tiny-llava-next", "tiny-qwen2-vl", "tiny-idefics3"]


def images(count: int, seed: int) -> list[Image.Image]:
    # One size: every pair has the same tokens, so the fast path puts them in one batch.
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(count)]


@pytest.fixture(params=["installed", "inputs_embeds"])
def feature_path(request, monkeypatch):
    """The installed transformers' way, or the ``inputs_embeds`` one forced by hiding the parameter."""
    if request.param == "inputs_embeds":
        real = hf_versions.forward_parameters
        monkeypatch.setattr(hf_versions, "forward_parameters", lambda model: real(model) - {"mm_encoder_outputs"})
    return request.param


def smallest_row_distance(rows: torch.Tensor) -> float:
    distances = torch.cdist(rows, rows)
    distances.fill_diagonal_(float("inf"))
    return distances.min().item()


@pytest.mark.parametrize("name", FAMILIES)
def test_distinct_images_get_distinct_logits_equal_to_the_plain_path(tiny_backbone_cache, feature_path, name):
    backbone = tiny_backbone_cache(name)
    anchor, tests = images(1, seed=0), images(4, seed=1)
    plain = Comparator(backbone).level_logits(anchor * len(tests), tests)
    # The plain path (pixels in, no caching) tells the four images apart by ~0.03 on these models;
    # the bug this guards against gave a distance of exactly 0.
    assert smallest_row_distance(plain) > 1e-3
    for reuse_prefix in (True, False):
        fast = FastComparator(backbone, reuse_prefix=reuse_prefix).anchor_rows(anchor, tests)[:, 0]
        assert smallest_row_distance(fast) > 1e-3
        torch.testing.assert_close(fast, plain, atol=1e-5, rtol=0)


def test_inputs_embeds_path_is_logged_once(tiny_llava, caplog, monkeypatch):
    real = hf_versions.forward_parameters
    monkeypatch.setattr(hf_versions, "forward_parameters", lambda model: real(model) - {"mm_encoder_outputs"})
    hf_versions._note_embedding_path.cache_clear()
    with caplog.at_level(logging.INFO, logger=hf_versions.__name__):
        for seed in (1, 2):
            FastComparator(tiny_llava).anchor_rows(images(1, seed=0), images(2, seed=seed))
    lines = [r.getMessage() for r in caplog.records if r.name == hf_versions.__name__]
    assert len(lines) == 1 and "inputs_embeds" in lines[0]


def test_feature_rows_must_match_the_image_tokens(tiny_llava):
    model = tiny_llava.model
    token = model.config.image_token_id
    ids = torch.tensor([[1, token, token, 2]])
    hidden = model.get_input_embeddings().weight.shape[1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hf_versions, "forward_parameters", lambda model: frozenset())
        merged = hf_versions.image_inputs(model, ids, [torch.ones(2, hidden)])["inputs_embeds"]
        with pytest.raises(RuntimeError, match="2 image tokens but 3 cached feature rows"):
            hf_versions.image_inputs(model, ids, [torch.ones(3, hidden)])
    # Hand-worked: image slots hold the features, the text slots their own embeddings.
    torch.testing.assert_close(merged[0, 1:3], torch.ones(2, hidden))
    embeddings = model.get_input_embeddings().weight
    torch.testing.assert_close(merged[0, [0, 3]], embeddings[[1, 2]].detach())


@pytest.mark.skipif("C2S_FLOOR_CONSTRAINTS" not in os.environ, reason="only in `make test-floor`")
def test_the_floor_run_imports_the_floor_releases():
    """The overlay venv must not fall through to the main venv's newer releases."""
    pins = [line.split("==") for line in Path(os.environ["C2S_FLOOR_CONSTRAINTS"]).read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    modules = {"huggingface_hub", "lightning", "tokenizers", "torch", "torchmetrics", "transformers"}
    for name, pinned in pins:
        assert Version(importlib.metadata.version(name)).public == pinned, name
        if name in modules:
            assert Version(importlib.import_module(name).__version__).public == pinned, name
