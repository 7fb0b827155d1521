"""The native mPLUG-Owl2 port behind the backbone interface: build, encode, LoRA, fit, score, folders."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import save_file

from c2s_lightning.data.levels import LEVELS
from c2s_lightning.data.prompts import COMPARISON_ANSWER, COMPARISON_PROMPT, RATING_LEVELS
from c2s_lightning.data.records import IQARecord
from c2s_lightning.models.adapters import configure_trainable, model_parts
from c2s_lightning.models.backbones import build_backbone
from c2s_lightning.models.comparator import Comparator
from c2s_lightning.models.encoding import IGNORE_INDEX, model_inputs
from c2s_lightning.models.export import export_pretrained, load_backbone
from c2s_lightning.models.mplug_owl2 import IMAGE_TOKEN_INDEX, MPLUGOwl2ForCausalLM, folder_format
from c2s_lightning.scoring.bank import AnchorBank
from c2s_lightning.scoring.scorer import Compare2Scorer

VISUAL_TOKENS = 9  # tiny: 8 abstractor queries + the end-of-image token


@pytest.fixture(scope="module")
def mplug(tiny_backbone_cache):
    """The shared tiny mPLUG-Owl2 backbone (do not modify it)."""
    return tiny_backbone_cache("tiny-mplug-owl2")


def _examples(images, levels=("better", "worse")):
    return [
        {"images": images[2 * k : 2 * k + 2], "prompt": COMPARISON_PROMPT,
         "answer": COMPARISON_ANSWER.format(level=level)}
        for k, level in enumerate(levels)
    ]


def test_tiny_mplug_builds_with_single_token_answer_words(mplug):
    tokenizer = mplug.processor.tokenizer
    assert isinstance(mplug.model, MPLUGOwl2ForCausalLM)
    assert mplug.family == "mplug_owl2_native" and mplug.model_id == "tiny-mplug-owl2@seed0"
    assert tokenizer.convert_ids_to_tokens(mplug.level_token_ids) == list(LEVELS)
    assert tokenizer.convert_ids_to_tokens(mplug.rating_token_ids) == list(RATING_LEVELS)
    assert mplug.model.config.vocab_size == len(tokenizer)


def test_rendering_is_the_release_conversation(mplug):
    text = mplug.encoder.render(COMPARISON_PROMPT, "The quality of the second image is better.")
    assert text == (
        "USER: <|image|><|image|>Compared with the first image, how is the quality of the second "
        "image? ASSISTANT: The quality of the second image is better.</s>"
    )
    assert mplug.encoder.render(COMPARISON_PROMPT).endswith("second image? ASSISTANT:")


def test_level_logits_equal_full_vocabulary_logits_at_level_ids(mplug, make_images):
    firsts, seconds = make_images(3, size=(40, 28)), make_images(3, seed=1)
    logits = Comparator(mplug).level_logits(firsts, seconds)
    assert logits.shape == (3, 5) and logits.dtype == torch.float32
    batch = mplug.encoder.encode_query(
        [{"images": [a, b], "prompt": COMPARISON_PROMPT} for a, b in zip(firsts, seconds)]
    )
    assert ((batch["input_ids"] == IMAGE_TOKEN_INDEX).sum(dim=1) == 2 * VISUAL_TOKENS).all()
    with torch.no_grad():
        full = mplug.model(**model_inputs(batch)).logits
    rows = torch.arange(3)
    expected = full[rows, batch["query_positions"]][:, mplug.level_token_ids]
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    one_by_one = Comparator(mplug, batch_size=1).level_logits(firsts, seconds)
    torch.testing.assert_close(one_by_one, logits, rtol=1e-4, atol=1e-5)  # padding changes nothing
    assert not torch.allclose(logits[0], logits[1])  # the images matter


def test_encode_train_supervises_only_the_answer(mplug, make_images):
    batch = mplug.encoder.encode_train(_examples(make_images(4)))
    tokenizer = mplug.processor.tokenizer
    assert batch["pixel_values"].shape == (4, 3, 32, 32)
    for row, level in enumerate(("better", "worse")):
        labels = batch["labels"][row]
        supervised = labels != IGNORE_INDEX
        # the answer is one contiguous run at the end of the real tokens, images never supervised
        span = supervised.nonzero().squeeze(1)
        assert torch.equal(span, torch.arange(span[0], span[-1] + 1))
        assert span[-1] == batch["attention_mask"][row].sum() - 1
        assert not supervised[batch["input_ids"][row] == IMAGE_TOKEN_INDEX].any()
        answer = tokenizer.decode(labels[supervised].tolist())
        assert answer.replace(" ", "") == f"Thequalityofthesecondimageis{level}.</s>"
        position = batch["answer_positions"][row]
        assert batch["input_ids"][row, position] == mplug.level_token_ids[LEVELS.index(level)]


def _trainable(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_lora_wraps_exactly_the_decoder_projections_and_trains_them(make_images):
    backbone = build_backbone("tiny-mplug-owl2")
    batch = backbone.encoder.encode_train(_examples(make_images(4)))
    model = configure_trainable(backbone.model, "lora", lora_rank=4)
    trainable = _trainable(model)
    lora = {n for n in trainable if ".lora_A." in n or ".lora_B." in n}
    assert trainable - lora and all(".visual_abstractor.modules_to_save." in n for n in trainable - lora)
    wrapped = {re.sub(r"\.lora_[AB]\.default\.weight$", "", n.removeprefix("base_model.model.")) for n in lora}
    branches = ("q_proj", "k_proj.text", "k_proj.visual", "v_proj.text", "v_proj.visual", "o_proj")
    assert wrapped == {f"model.layers.{i}.self_attn.{b}" for i in range(2) for b in branches}
    assert len(lora) == 2 * len(wrapped)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    for _ in range(2):  # B starts at zero, so A moves from the second step on
        optimizer.zero_grad()
        model(**model_inputs(batch)).loss.backward()
        optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == trainable


def test_full_mode_trains_both_modality_branches_but_not_the_vision_tower():
    model = build_backbone("tiny-mplug-owl2").model
    parts = model_parts(model)
    assert parts.vision == ("model.vision_model",) and parts.projector == ("model.visual_abstractor",)
    trainable = _trainable(configure_trainable(model, "full"))
    assert "model.layers.0.self_attn.k_proj.visual.weight" in trainable
    assert "model.layers.1.input_layernorm.visual.weight" in trainable
    assert any(n.startswith("model.visual_abstractor.") for n in trainable)
    assert not any(n.startswith("model.vision_model.") for n in trainable)


def _released_folder(backbone, folder):
    """Write a backbone's weights, config and tokenizer the way the release lays them out."""
    folder.mkdir()
    config = backbone.model.config
    branch = re.compile(r"^(model\.layers\.\d+\.[\w.]+?)\.(text|visual)\.")
    weights = {
        branch.sub(lambda m: f"{m.group(1)}.multiway.{0 if m.group(2) == 'text' else 1}.", k): v.contiguous()
        for k, v in backbone.model.state_dict().items()
    }
    save_file(weights, str(folder / "model.safetensors"))
    text = {k: v for k, v in config.to_dict().items() if k not in ("vision_config", "abstractor_config")}
    visual = {"visual_model": config.vision_config, "visual_abstractor": config.abstractor_config}
    (folder / "config.json").write_text(json.dumps({**text, "model_type": "mplug_owl2", "visual_config": visual}))
    backbone.processor.tokenizer.save_pretrained(folder)


def test_released_and_exported_folders_load_to_the_same_logits(mplug, tmp_path, make_images):
    firsts, seconds = make_images(2), make_images(2, seed=1)
    expected = Comparator(mplug).level_logits(firsts, seconds)
    _released_folder(mplug, tmp_path / "released")
    assert folder_format(tmp_path / "released") == "released"
    released = build_backbone(str(tmp_path / "released"))
    assert released.level_token_ids == mplug.level_token_ids
    torch.testing.assert_close(Comparator(released).level_logits(firsts, seconds), expected)
    exported = export_pretrained(released, out_dir=tmp_path / "export")
    assert folder_format(exported) == "native"
    reloaded = load_backbone(exported)
    torch.testing.assert_close(Comparator(reloaded).level_logits(firsts, seconds), expected)
    with pytest.raises(ValueError, match="image_size"):
        build_backbone(str(exported), image_size=64)


def test_unmerged_lora_export_rebuilds_base_and_adapter(tmp_path, make_images):
    backbone = build_backbone("tiny-mplug-owl2")
    backbone.model = configure_trainable(backbone.model, "lora", lora_rank=4)
    with torch.no_grad():
        for name, param in backbone.model.named_parameters():
            if ".lora_B." in name:
                param.normal_(std=0.5)
    firsts, seconds = make_images(2), make_images(2, seed=1)
    expected = Comparator(backbone).level_logits(firsts, seconds)
    merged = load_backbone(export_pretrained(backbone, out_dir=tmp_path / "merged"))
    adapter = load_backbone(export_pretrained(backbone, out_dir=tmp_path / "adapter", merge_lora=False))
    for loaded in (merged, adapter):
        torch.testing.assert_close(Comparator(loaded).level_logits(firsts, seconds), expected)
    assert not torch.allclose(Comparator(build_backbone("tiny-mplug-owl2")).level_logits(firsts, seconds), expected)


def test_scorer_gives_batch_invariant_scores(mplug, tmp_path, make_images):
    paths = []
    for k, image in enumerate(make_images(3, size=(48, 32), seed=5)):
        paths.append(tmp_path / f"anchor{k}.png")
        image.save(paths[-1])
    anchors = [IQARecord(path=p, mos=float(k + 1), std=0.3, ref=None, dataset="synth") for k, p in enumerate(paths)]
    tests = make_images(4, seed=7)
    scores = {}
    for batch_size in (1, 12):
        bank = AnchorBank(anchors, dataset="synth", split="test")
        scorer = Compare2Scorer(Comparator(mplug), bank, batch_size=batch_size)
        scores[batch_size] = scorer.score(tests)
        assert bank.model_fingerprint == mplug.model_id
        block = torch.tensor(bank.matrix)
        assert block.shape == (3, 3) and (block.diagonal() == 0.5).all()
        assert ((block > 0) & (block < 1)).all()
    assert scores[1].shape == (4,) and torch.isfinite(scores[1]).all()
    torch.testing.assert_close(scores[1], scores[12], rtol=0, atol=1e-5)
    assert scores[1].unique().numel() == 4  # the test images get different scores


STACKS = {
    # the acceptance run: quickstart data, the tiny override
    "tiny": ["--config", "experiments/backbones/tiny_mplug_owl2.yaml"],
    # the 7B recipe (bf16, checkpointing, vision trained, accumulation) with the tiny weights on a CPU
    "7b-recipe": ["--config", "experiments/backbones/mplug_owl2_7b.yaml", "--model.model", "tiny-mplug-owl2",
                  "--trainer.accelerator", "cpu", "--trainer.devices", "1"],
}


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_fit_fast_dev_run_with_the_override_configs(tmp_path, stack):
    from c2s_lightning.cli import main

    out = tmp_path / "run"
    override = tmp_path / "paths.yaml"
    override.write_text(json.dumps({
        "trainer": {"default_root_dir": str(out), "enable_progress_bar": False,
                    "logger": {"class_path": "c2s_lightning.training.loggers.WandbLogger",
                               "init_args": {"save_dir": str(out), "offline": True}}},
        "data": {"datasets": [{"name": "kadid10k", "root": str(tmp_path / "synth"), "synthesize": True,
                               "pairs": 64, "split": "random"}],
                 "batch_size": 4, "val_pairs": 8, "num_workers": 0},
        "checkpoint": {"dirpath": str(out / "checkpoints")},
        "evaluator": {"before_training": False, "max_images": 6},
    }))
    cli = main(["fit", "--config", "experiments/quickstart.yaml", *STACKS[stack], "--config", str(override),
                "--trainer.fast_dev_run", "true"])
    assert cli.trainer.state.finished and cli.trainer.global_step == 1
    net = cli.model.net
    assert isinstance(net, MPLUGOwl2ForCausalLM)
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    # transformers 5.2x's name; 5.17 (the floor) has only is_gradient_checkpointing
    checkpointing = getattr(net, "is_activation_checkpointing", None)
    if checkpointing is None:
        checkpointing = net.is_gradient_checkpointing
    assert checkpointing == (stack == "7b-recipe")
    assert net.dtype == (torch.bfloat16 if stack == "7b-recipe" else torch.float32)
    fresh = build_backbone("tiny-mplug-owl2").model
    assert not torch.equal(net.lm_head.weight.float(), fresh.lm_head.weight)  # the step moved the weights
    cls_token = net.model.vision_model.embeddings.cls_token.float()
    vision_moved = not torch.equal(cls_token, fresh.model.vision_model.embeddings.cls_token.to(net.dtype).float())
    assert vision_moved == (stack == "7b-recipe")  # train_vision: true only in the 7B recipe


def test_gpu_check_script_runs_at_tiny_size_on_cpu(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_mplug_owl2.py"
    spec = importlib.util.spec_from_file_location("gpu_mplug_owl2", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "report.json"
    report = script.main(["--size", "tiny", "--device", "cpu", "--dtype", "float32", "--pairs", "2",
                          "--repeats", "1", "--out", str(out)])
    assert json.loads(out.read_text())["parameters"] == report["parameters"] > 0
    assert report["forward"]["median_s"] > 0 and report["lora_step"]["trainable"] < report["parameters"]
