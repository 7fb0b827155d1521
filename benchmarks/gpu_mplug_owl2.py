"""GPU check of the native mPLUG-Owl2 port at full size (random weights, bf16).

Builds the paper's architecture (CLIP ViT-L/14 at 448 px, 6-layer abstractor with 64 queries,
LLaMA-2-7B with modality-specific k/v) with random weights, then times, through the framework's
own path (``Comparator`` / ``ComparisonEncoder`` / ``configure_trainable``):

1. one comparison forward: level logits of ``--pairs`` (first, second) image pairs;
2. one LoRA training step (forward, backward, AdamW) on ``--pairs`` training examples.

Each is run once to warm up, then ``--repeats`` times; the median time and the peak GPU memory
of each phase are printed and written as JSON. The weights are random, so nothing is learned or
scored: this checks that the full-size model fits, runs in bf16 and how fast. The tokenizer is
the tiny one (its ids are valid rows of the 32k vocabulary).

    python benchmarks/gpu_mplug_owl2.py --out gpu_mplug_owl2.json
    python benchmarks/gpu_mplug_owl2.py --size tiny --device cpu      # the script itself, on a CPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from c2s_lightning.data.prompts import COMPARISON_ANSWER, COMPARISON_PROMPT
from c2s_lightning.models.adapters import configure_trainable, parameter_counts
from c2s_lightning.models.backbones import assemble_backbone
from c2s_lightning.models.comparator import Comparator
from c2s_lightning.models.encoding import batch_to, model_inputs
from c2s_lightning.models.mplug_owl2 import (
    MPLUGOwl2Config,
    MPLUGOwl2ForCausalLM,
    MPLUGOwl2Processor,
    tiny_mplug_owl2_config,
)
from c2s_lightning.models.tiny_tokenizer import tiny_tokenizer

GIB = 2**30


def build(size: str, device: str, dtype: torch.dtype):
    """A random-weight backbone: ``7b`` (the released sizes) or ``tiny``, created on ``device``."""
    tokenizer = tiny_tokenizer("mplug_owl2")
    ids = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
               eos_token_id=tokenizer.eos_token_id)
    if size == "7b":
        config = MPLUGOwl2Config(vocab_size=32000, max_position_embeddings=2048, **ids)
    else:
        config = tiny_mplug_owl2_config(vocab_size=len(tokenizer), **ids)
    config._attn_implementation = "sdpa"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build in the target dtype: no float32 copy of 8B weights
    try:
        with torch.device(device):
            model = MPLUGOwl2ForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(previous)
    processor = MPLUGOwl2Processor.for_config(tokenizer, config)
    return assemble_backbone(model, processor, model_id=f"random-mplug-owl2-{size}", rating=False)


def images(n: int, seed: int) -> list[Image.Image]:
    """Random 512x384 photos-to-be (padded to square and resized to 448 by the processor)."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (384, 512, 3), dtype=np.uint8)) for _ in range(n)]


def measure(fn, device: str, repeats: int) -> dict:
    """Warm-up call, then ``repeats`` timed calls; median seconds and peak memory of the timed ones."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    fn()
    sync()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / GIB if device.startswith("cuda") else None
    return {"median_s": statistics.median(times), "times_s": times, "peak_gib": peak, "result": result}


def lora_step_fn(backbone, pairs: int, device: str, checkpointing: bool):
    """A closure running one LoRA step; it returns the loss."""
    model = configure_trainable(backbone.model, "lora", lora_rank=8, lora_alpha=16)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    pics = images(2 * pairs, seed=1)
    examples = [
        {"images": pics[2 * k : 2 * k + 2], "prompt": COMPARISON_PROMPT,
         "answer": COMPARISON_ANSWER.format(level="better")}
        for k in range(pairs)
    ]
    dtype = next(model.parameters()).dtype
    batch = batch_to(model_inputs(backbone.encoder.encode_train(examples)), device, dtype)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        return loss.detach().item()

    return model, step


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("7b", "tiny"), default="7b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--pairs", type=int, default=8, help="image pairs per forward / training batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-checkpointing", action="store_true", help="LoRA step without gradient checkpointing")
    parser.add_argument("--out", type=Path, help="JSON file for the results")
    ns = parser.parse_args(argv)
    torch.manual_seed(0)
    start = time.perf_counter()
    backbone = build(ns.size, ns.device, getattr(torch, ns.dtype))
    report = {"size": ns.size, "device": ns.device, "dtype": ns.dtype, "pairs": ns.pairs,
              "build_s": time.perf_counter() - start, "parameters": parameter_counts(backbone.model)["total"]}
    if ns.device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name()
        report["weights_gib"] = torch.cuda.memory_allocated() / GIB
    firsts, seconds = images(ns.pairs, seed=2), images(ns.pairs, seed=3)
    forward = measure(lambda: Comparator(backbone).level_logits(firsts, seconds), ns.device, ns.repeats)
    logits = forward.pop("result")
    assert logits.shape == (ns.pairs, 5) and torch.isfinite(logits).all(), logits
    report["forward"] = {**forward, "per_pair_s": forward["median_s"] / ns.pairs}
    model, step = lora_step_fn(backbone, ns.pairs, ns.device, not ns.no_checkpointing)
    counts = parameter_counts(model)
    lora = measure(step, ns.device, ns.repeats)
    loss = lora.pop("result")
    assert np.isfinite(loss), loss
    report["lora_step"] = {**lora, "loss": loss, "trainable": counts["trainable"],
                           "checkpointing": not ns.no_checkpointing}
    print(json.dumps(report, indent=2))
    if ns.out:
        ns.out.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
