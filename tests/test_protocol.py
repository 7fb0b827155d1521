"""The comparison protocol in an export: weights fingerprint, compare2score.json, checks on load."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from c2s_lightning.data import prompts
from c2s_lightning.models.backbones import build_backbone
from c2s_lightning.models.export import export_pretrained, load_export
from c2s_lightning.models.fingerprint import weights_fingerprint
from c2s_lightning.models.protocol import ComparisonProtocol, ProtocolError, image_preprocessing


def by_hand(tensors: dict[str, torch.Tensor]) -> str:
    """The documented fingerprint, written out with hashlib and numpy."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key]
        digest.update(key.encode() + b"\0" + str(t.dtype)[6:].encode() + b"\0"
                      + ",".join(str(n) for n in t.shape).encode() + b"\0")
        digest.update(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()


@pytest.fixture(scope="module")
def backbone():
    return build_backbone("tiny-llava", seed=3)


@pytest.fixture(scope="module")
def export(backbone, tmp_path_factory):
    protocol = ComparisonProtocol.for_backbone(backbone, image_preprocessing(True),
                                               [{"name": "kadid10k", "root": "data/k", "split": "random"}])
    return export_pretrained(backbone, out_dir=tmp_path_factory.mktemp("e") / "export", protocol=protocol)


def test_export_writes_the_protocol_with_the_fingerprint_of_its_tensors(export):
    data = json.loads((export / "compare2score.json").read_text())
    assert data["weights_fingerprint"] == by_hand(load_file(export / "model.safetensors"))
    assert data["image_preprocessing"]["pad_to_square"] is True
    assert data["template"] == {"prompt": prompts.COMPARISON_PROMPT, "answer_prefix": prompts.COMPARISON_ANSWER_PREFIX,
                                "answer": prompts.COMPARISON_ANSWER, "chat_template_family": "llava"}
    assert data["levels"] == ["inferior", "worse", "similar", "better", "superior"]
    assert data["level_weights"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert data["backbone"]["build_args"]["model"] == "tiny-llava" and data["backbone"]["build_args"]["seed"] == 3
    assert data["training_datasets"] == [{"name": "kadid10k", "root": "data/k", "split": "random"}]
    assert not [p for p in export.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_fingerprint_ignores_file_layout_but_not_values(backbone, export, tmp_path):
    backbone.model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert len(list((tmp_path / "sharded").glob("*.safetensors"))) > 2
    fingerprint = weights_fingerprint(export)
    assert weights_fingerprint(tmp_path / "sharded") == fingerprint
    tensors = load_file(export / "model.safetensors")
    assert weights_fingerprint(tensors) == fingerprint
    key = sorted(tensors)[0]
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] += 1e-3
    assert weights_fingerprint(tensors) != fingerprint


def test_an_export_is_never_written_over(backbone, export):
    before = (export / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="not empty; it is never replaced"):
        export_pretrained(build_backbone("tiny-llava", seed=4), out_dir=export)
    assert (export / "model.safetensors").read_bytes() == before


def test_load_export_gives_the_protocol_and_tags_the_model(export):
    backbone, protocol = load_export(export)
    assert protocol.pad_to_square and protocol.weights_fingerprint == weights_fingerprint(export)
    assert backbone.model_id == protocol.model_fingerprint == ComparisonProtocol.load(export).model_fingerprint


def test_weights_changed_after_export_are_refused(export, tmp_path):
    copy = shutil.copytree(export, tmp_path / "copy")
    tensors = load_file(copy / "model.safetensors")
    key = sorted(tensors)[-1]
    tensors[key] = tensors[key] + 1
    save_file(tensors, copy / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ProtocolError, match="not the ones compare2score.json was written for"):
        load_export(copy)


def test_another_template_is_refused(export, tmp_path):
    protocol = ComparisonProtocol.load(export)
    changed = dataclasses.replace(protocol, template={**protocol.template, "prompt": "<image> <image> Which is better?"})
    with pytest.raises(ProtocolError, match="trained with prompt '<image> <image> Which is better\\?'"):
        changed.check_current("x")
    with pytest.raises(ProtocolError, match="levels"):
        dataclasses.replace(protocol, levels=["bad", "poor", "fair", "good", "excellent"]).check_current("x")


def test_from_dict_names_what_is_missing():
    with pytest.raises(ProtocolError, match="f.json: missing field.*image_preprocessing"):
        ComparisonProtocol.from_dict({"format_version": 1, "template": {}, "levels": [], "level_weights": [],
                                      "backbone": {}}, source="f.json")
    with pytest.raises(ProtocolError, match="format_version 7"):
        ComparisonProtocol.from_dict({"format_version": 7})


def test_a_folder_without_protocol_loads_with_the_default_and_a_warning(backbone, tmp_path, caplog):
    backbone.model.save_pretrained(tmp_path)
    backbone.processor.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING):
        loaded, protocol = load_export(tmp_path)
    assert "no compare2score.json" in caplog.text
    assert not protocol.pad_to_square and protocol.weights_fingerprint == weights_fingerprint(tmp_path)
    assert loaded.model_id == protocol.model_fingerprint and protocol.model_fingerprint.startswith("sha256:")


def test_an_override_is_reported(export, caplog):
    protocol = ComparisonProtocol.load(export)
    with caplog.at_level(logging.WARNING):
        assert protocol.with_preprocessing(True) is protocol and not caplog.text
        overridden = protocol.with_preprocessing(False)
    assert not overridden.pad_to_square and protocol.pad_to_square
    assert "overriding the model's image preprocessing: pad_to_square=False" in caplog.text
