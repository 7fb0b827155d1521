"""The model fingerprint: every file of an export that changes a comparison, and every part of the
cache key, changes the key; an edited export or a replaced anchor image never gets a cached score."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil

import pytest
import torch
from PIL import Image

from c2s_lightning.cache.digests import protocol_key
from c2s_lightning.cache.wiring import cache_protocol
from c2s_lightning.data.records import IQARecord
from c2s_lightning.models.backbones import build_backbone
from c2s_lightning.models.comparator import Comparator
from c2s_lightning.models.export import export_pretrained
from c2s_lightning.models.fingerprint import file_digests, model_fingerprint, weights_fingerprint
from c2s_lightning.models.protocol import ComparisonProtocol, image_preprocessing
from c2s_lightning.scoring.bank import AnchorBank, StaleAnchorBankError
from c2s_lightning.scoring.from_export import load_scorer
from c2s_lightning.scoring.scorer import Compare2Scorer


@pytest.fixture(scope="module")
def export(tmp_path_factory, tiny_backbone_cache):
    """A tiny LLaVA export with its own anchor bank (5 anchors of distinct brightness), padded."""
    folder = tmp_path_factory.mktemp("fingerprint")
    backbone = build_backbone("tiny-llava", seed=3)
    anchors = []
    for k in range(5):
        path = folder / "dataset" / f"a{k}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (36, 28), (40 * k + 20, 30 * k, 200 - 35 * k)).save(path)
        anchors.append(IQARecord(path=path, mos=float(k + 1), std=0.3, ref=None, dataset="synth", name=path.name))
    protocol = ComparisonProtocol.for_backbone(backbone, image_preprocessing(True))
    bank = AnchorBank(anchors, dataset="synth", split="train")
    Compare2Scorer(Comparator(backbone), bank, protocol=protocol).anchor_block()
    return export_pretrained(backbone, out_dir=folder / "export", protocol=protocol, anchor_bank=bank)


def swap_level_ids(folder):
    """tokenizer.json with the ids of worse/better and inferior/superior swapped."""
    data = json.loads((folder / "tokenizer.json").read_text())
    vocab = data["model"]["vocab"]
    for a, b in (("worse", "better"), ("inferior", "superior")):
        vocab[a], vocab[b] = vocab[b], vocab[a]
    (folder / "tokenizer.json").write_text(json.dumps(data))


def edit_json(name, change):
    def edit(folder):
        data = json.loads((folder / name).read_text())
        change(data)
        (folder / name).write_text(json.dumps(data, indent=2))
    return edit


def edit_text(name, old, new):
    def edit(folder):
        text = (folder / name).read_text()
        assert old in text
        (folder / name).write_text(text.replace(old, new))
    return edit


def replace_anchor_image(folder):
    """The bank's anchor 2 replaced under the same name by another image."""
    path = next((folder / "anchors").glob("02_*"))
    Image.new("RGB", (36, 28), (250, 250, 250)).save(path, format="PNG")


EDITS = {
    "tokenizer.json": swap_level_ids,
    "config.json": edit_json("config.json", lambda c: c["text_config"].update(rms_norm_eps=0.5)),
    "processor_config.json": edit_json("processor_config.json",
                                       lambda c: c["image_processor"].update(image_mean=[0.1, 0.3, 0.9])),
    "chat_template.jinja": edit_text("chat_template.jinja", "{{ m['role'] | upper }}:", "{{ m['role'] | upper }} says:"),
    "anchor image": replace_anchor_image,
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_export_never_gets_a_cached_score(export, tmp_path, make_images, edit, caplog):
    folder = shutil.copytree(export, tmp_path / "export")
    images = make_images(3, size=(40, 30), seed=7)
    cache = tmp_path / "cache"
    before = load_scorer(folder, cache=cache).score(images)  # fills the cache under the exported model
    EDITS[edit](folder)
    with caplog.at_level(logging.WARNING), pytest.raises(StaleAnchorBankError) as stale:
        load_scorer(folder, cache=cache).score(images)  # the export's own anchor matrix is no longer its model's
    assert "--recompute-anchors" in str(stale.value) and "\n" not in str(stale.value)
    if edit != "anchor image":
        assert f"{edit} changed after the export" in caplog.text
    cached = load_scorer(folder, cache=cache, recompute_anchors=True)
    scores = cached.score(images)
    plain = load_scorer(folder, cache=False, recompute_anchors=True).score(images)
    torch.testing.assert_close(scores, plain, atol=1e-6, rtol=0)
    assert not torch.allclose(plain, before, atol=1e-3)  # the edit matters: a stale entry would show
    if edit != "anchor image":
        assert cached.comparator.counts()["reused"] == 0
    if edit == "tokenizer.json":  # each level read as its mirror: every probability p becomes 1 - p
        torch.testing.assert_close(plain, -before, atol=1e-5, rtol=0)


def test_the_recorded_fingerprint_is_the_documented_hash(export):
    """Recomputed here with hashlib from the folder's bytes and the documented JSON layout."""
    recorded = json.loads((export / "compare2score.json").read_text())
    files = {p.name: "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(export.iterdir())
             if p.is_file() and p.name not in ("model.safetensors", "compare2score.json", "anchors.json")}
    assert set(files) == {"config.json", "generation_config.json", "processor_config.json", "tokenizer.json",
                          "tokenizer_config.json", "chat_template.jinja"}
    assert recorded["file_digests"] == files
    fields = {name: recorded[name] for name in ("template", "levels", "level_weights", "image_preprocessing")}
    text = json.dumps({"weights": recorded["weights_fingerprint"], "files": files,
                       "protocol": {**fields, "backbone_family": "llava"}}, sort_keys=True, separators=(",", ":"))
    assert recorded["model_fingerprint"] == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert AnchorBank.load(export / "anchors.json").model_fingerprint == recorded["model_fingerprint"]


def test_file_digests_skip_what_is_not_the_model(export, tmp_path):
    folder = shutil.copytree(export, tmp_path / "export")
    before = file_digests(folder)
    for name in ("README.md", ".gitattributes", "model.safetensors.index.json", "training_args.bin"):
        (folder / name).write_text("not the model")
    (folder / "anchors" / "extra.png").write_bytes(b"x")
    assert file_digests(folder) == before
    (folder / "preprocessor_config.json").write_text("{}")  # a file this code does not know: counted
    assert set(file_digests(folder)) == set(before) | {"preprocessor_config.json"}


PROTOCOL = {"template": {"prompt": "p", "answer_prefix": "a", "answer": "a {level}.", "chat_template_family": "llava"},
            "levels": ["l0", "l1"], "level_weights": [0.0, 1.0],
            "image_preprocessing": {"pad_to_square": True, "pad_colour": [122, 116, 104], "image_size": None},
            "backbone": {"family": "llava", "build_args": {}}, "training_datasets": []}
CHANGES = {  # one change of each part of the key
    "template": lambda p: p["template"].update(prompt="p "),
    "levels": lambda p: p.update(levels=["l0", "l2"]),
    "level_weights": lambda p: p.update(level_weights=[0.0, 0.9]),
    "padding": lambda p: p["image_preprocessing"].update(pad_to_square=False),
    "pad colour": lambda p: p["image_preprocessing"].update(pad_colour="image_mean"),
    "backbone family": lambda p: p["backbone"].update(family="qwen2_vl"),
}


@pytest.mark.parametrize("part", list(CHANGES))
def test_every_protocol_field_changes_the_cache_key_and_the_fingerprint(part):
    changed = json.loads(json.dumps(PROTOCOL))
    CHANGES[part](changed)
    assert protocol_key(cache_protocol(changed, dtype="float32")) != protocol_key(cache_protocol(PROTOCOL, dtype="float32"))
    assert model_fingerprint("w", {}, changed) != model_fingerprint("w", {}, PROTOCOL)


def test_weights_and_each_file_change_the_fingerprint_and_training_data_does_not():
    files = {"config.json": "sha256:1", "tokenizer.json": "sha256:2"}
    base = model_fingerprint("sha256:w", files, PROTOCOL)
    assert model_fingerprint("sha256:v", files, PROTOCOL) != base
    for name in files:
        assert model_fingerprint("sha256:w", {**files, name: "sha256:3"}, PROTOCOL) != base
    assert model_fingerprint("sha256:w", {**files, "chat_template.jinja": "sha256:4"}, PROTOCOL) != base
    assert model_fingerprint("sha256:w", files, {**PROTOCOL, "training_datasets": [{"name": "x"}]}) == base


def test_load_scorer_keys_the_cache_on_dtype_padding_and_model(export, tmp_path):
    """What ``score`` keys its cache on: the dtype and a padding override change the protocol part,
    the model the fingerprint part."""
    def key(**options):
        comparator = load_scorer(export, cache=tmp_path / "c", recompute_anchors=True, **options).comparator
        return comparator.fingerprint, comparator.protocol_key

    fingerprint, base = key()
    assert fingerprint == ComparisonProtocol.load(export).model_fingerprint != weights_fingerprint(export)
    assert key(dtype="bfloat16") == (fingerprint, key(dtype="bfloat16")[1]) and key(dtype="bfloat16")[1] != base
    assert key(pad_to_square=False)[1] != base


def test_an_export_from_before_the_pad_colour_keeps_its_own_mean_padding(export, tmp_path, tiny_llava):
    from c2s_lightning.commands.evaluate import protocol_options
    from c2s_lightning.data.datamodule import ComparisonDataModule
    from c2s_lightning.data.mix import MixEntry

    older = shutil.copytree(export, tmp_path / "older")
    data = json.loads((older / "compare2score.json").read_text())
    assert data["image_preprocessing"]["pad_colour"] == [122, 116, 104]  # as the fixture's protocol says
    data["image_preprocessing"]["pad_colour"] = "image_mean"  # what exports before the colour wrote
    (older / "compare2score.json").write_text(json.dumps(data))
    assert load_scorer(older, cache=False, recompute_anchors=True).pipeline.pad_colour is None  # score
    assert load_scorer(export, cache=False).pipeline.pad_colour == (122, 116, 104)  # the protocol's, not the processor's
    # evaluate: the data module is told, and the evaluator, training and the protocol follow it
    assert protocol_options(str(older), []) == ["--data.pad_to_square", "true", "--data.pad_colour", "image_mean"]
    assert protocol_options(str(export), []) == ["--data.pad_to_square", "true"]
    for colour, expected in (("image_mean", None), (None, (127, 127, 127))):  # SigLIP's mean 0.5 x 255, truncated
        dm = ComparisonDataModule([MixEntry(name="list", root=str(tmp_path / "x.csv"))], pad_to_square=True,
                                  pad_colour=colour)
        dm.connect(tiny_llava.encoder)
        assert dm.image_pipeline.pad_colour == expected
