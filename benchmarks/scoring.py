"""Time scoring against anchors: the release's path vs ours, same model and images, one run.

Release path: per test image and anchor one full two-image forward pass at batch size 1, both
images re-encoded every time (``Comparator.level_logits(..., batch_size=1)``). Ours:
``FastComparator.anchor_rows``: each image through the vision tower once, each anchor's prefix
(chat text, anchor image, the words up to the test image) run once and its key/value cache reused,
all (anchor, test) suffixes batched. Our time includes the one-off anchor work. Both give level
logits; the largest difference of the soft-comparison probabilities is printed. The last line is
``speedup=<float> max_abs_diff=<float>``; the exit code is 1 when the figures cannot be right
(``wrong_figures``), so the GPU suite records the step as failed, not ok.

    .venv/bin/python benchmarks/scoring.py --quick        # tiny LLaVA on the CPU, well under a minute
    .venv/bin/python benchmarks/scoring.py --gpu          # LLaVA-1.5-7B-shaped, random bf16 weights
    .venv/bin/python benchmarks/scoring.py --map [--images 10000 ...]   # the MAP step (map_step.py)

The GPU model is built from a config (CLIP ViT-L/14-336 + LLaMA-7B sizes, 576 tokens per image)
with random weights and the project's tiny tokenizer: nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from c2s_lightning.models.backbones import DTYPES, assemble_backbone, build_backbone
from c2s_lightning.models.comparator import Comparator
from c2s_lightning.models.fast_comparator import FastComparator
from c2s_lightning.scoring.soft import soft_probability


def llava_7b_shaped(device: str, dtype: torch.dtype, text_layers: int = 32, vision_layers: int = 24):
    """A LLaVA-1.5-7B-shaped backbone with random weights (fewer layers for a CPU smoke run)."""
    from transformers import (CLIPImageProcessorPil, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    from c2s_lightning.models.tiny_tokenizer import tiny_tokenizer

    tokenizer = tiny_tokenizer("llava")
    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=vision_layers,
                              num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768)
    text = LlamaConfig(vocab_size=32064, hidden_size=4096, intermediate_size=11008,
                       num_hidden_layers=text_layers, num_attention_heads=32, num_key_value_heads=32,
                       max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-2, vision_feature_select_strategy="default",
                         image_seq_length=576)
    torch.manual_seed(0)
    with torch.device(device):  # initialise on the GPU: seconds instead of minutes
        model = LlavaForConditionalGeneration._from_config(config, dtype=dtype).eval()
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 336},
                                              crop_size={"height": 336, "width": 336}),
        tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=tokenizer.chat_template)
    return assemble_backbone(model, processor, model_id=f"llava-1.5-7b-shaped@random[{text_layers}L]")


def random_images(count: int, size: tuple[int, int], seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    w, h = size
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for _ in range(count)]


class PeakMemory:
    """Peak memory above the start of a block: CUDA allocator stats, else sampled RSS (Linux)."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.peak = 0

    def _rss(self) -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss() - self._start)

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
        else:
            self._start, self._stop = self._rss(), threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._start
        else:
            self._stop.set()
            self._thread.join()


def timed(fn, device: str):
    """``(result, seconds, peak bytes)`` of ``fn()``."""
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        result = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return result, seconds, memory.peak


def naive_logits(backbone, anchors, tests) -> torch.Tensor:
    """The release's loop: one two-image forward per (test, anchor), batch 1."""
    comparator = Comparator(backbone)
    rows = [comparator.level_logits(anchors, [t] * len(anchors), batch_size=1) for t in tests]
    return torch.stack(rows)


def fast_logits(backbone, anchors, tests, batch_size: int, reuse_prefix: bool = True) -> torch.Tensor:
    """Ours as the scorer drives it: chunks of test images against the cached anchors."""
    comparator = FastComparator(backbone, batch_size=batch_size, reuse_prefix=reuse_prefix)
    step = max(1, batch_size // len(anchors))
    chunks = [comparator.anchor_rows(anchors, tests[i : i + step]) for i in range(0, len(tests), step)]
    return torch.cat(chunks)


def wrong_figures(naive: torch.Tensor, ours: torch.Tensor, diff: float, dtype: torch.dtype) -> str | None:
    """Why these logits cannot be right, or None: the two paths disagree beyond rounding, or
    distinct test images got identical logits (what transformers 5.17 ignoring cached image
    features did: issue 22)."""
    tolerance = 1e-4 if dtype == torch.float32 else 0.05  # bf16 runs measured 0.0078 (2^-7)
    if not diff <= tolerance:
        return f"max_abs_diff {diff:.3g} exceeds {tolerance:g} for {dtype}"
    for name, rows in (("release", naive), ("ours", ours)):
        if len(rows) > 1 and bool((rows == rows[:1]).all()):
            return f"every test image got the same logits on the {name} path"
    return None


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small CPU run (tiny LLaVA, 24 images)")
    parser.add_argument("--gpu", action="store_true", help="LLaVA-1.5-7B-shaped model, random weights")
    parser.add_argument("--map", action="store_true", help="time the MAP step alone (map_step.py)")
    parser.add_argument("--device", default=None, help="default: cuda with --gpu, else cpu")
    parser.add_argument("--dtype", default=None, choices=sorted(DTYPES), help="default: bf16 with --gpu")
    parser.add_argument("--images", type=int, default=None, help="test images for our path")
    parser.add_argument("--naive-images", type=int, default=None, help="of those, run the release's path on")
    parser.add_argument("--anchors", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per forward pass (ours)")
    parser.add_argument("--image-size", type=int, default=None, help="tiny model input size")
    parser.add_argument("--text-layers", type=int, default=32, help="--gpu model: LLaMA layers")
    parser.add_argument("--vision-layers", type=int, default=24, help="--gpu model: CLIP layers")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return parser.parse_known_args(argv)


def build(args):
    """Backbone, anchors and test images for the chosen mode."""
    if args.gpu:
        device, dtype = args.device or "cuda", args.dtype or "bfloat16"
        backbone = llava_7b_shaped(device, DTYPES[dtype], args.text_layers, args.vision_layers)
        defaults, size = (64, 16, 20), (512, 384)  # 20 pairs: ~25 GB of key/value cache at 7B
    else:
        device, dtype = args.device or "cpu", args.dtype or "float32"
        image_size = args.image_size or (32 if args.quick else 64)
        backbone = build_backbone("tiny-llava", dtype=dtype, image_size=image_size)
        backbone.model.to(device)
        defaults, size = ((24, 24, 20) if args.quick else (64, 64, 40)), (image_size, image_size)
    images, naive, batch = defaults
    args.images = args.images or images
    args.naive_images = args.naive_images or min(naive, args.images)
    args.batch_size = args.batch_size or batch
    return backbone, device, random_images(args.anchors, size, 1), random_images(args.images, size, 2)


def main(argv: list[str] | None = None) -> None:
    args, rest = parse(sys.argv[1:] if argv is None else argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.map:  # the MAP step has its own benchmark; this mode runs it
        sys.path.insert(0, str(Path(__file__).parent))
        from map_step import main as map_main

        return map_main(rest)
    if rest:
        raise SystemExit(f"unknown arguments {rest}")
    backbone, device, anchors, tests = build(args)
    naive_tests = tests[: args.naive_images]
    naive_logits(backbone, anchors[:1], tests[:1])  # warm-up, not timed
    fast_logits(backbone, anchors[:1], tests[:1], args.batch_size)
    naive, naive_s, naive_mem = timed(lambda: naive_logits(backbone, anchors, naive_tests), device)
    ours, ours_s, ours_mem = timed(lambda: fast_logits(backbone, anchors, tests, args.batch_size), device)
    diff = (soft_probability(naive) - soft_probability(ours[: len(naive_tests)])).abs().max().item()
    naive_per, ours_per = naive_s / len(naive_tests), ours_s / len(tests)
    print(f"{backbone.model_id}, {device}, {backbone.model.dtype}, {torch.get_num_threads()} threads; "
          f"{args.anchors} anchors, {len(tests)} test images (release path on {len(naive_tests)})")
    print(f"  release (1 pair per forward): {1000 * naive_per:9.2f} ms/image, "
          f"peak +{naive_mem / 2**20:8.1f} MiB")
    print(f"  ours (batch {args.batch_size} pairs):      {1000 * ours_per:9.2f} ms/image, "
          f"peak +{ours_mem / 2**20:8.1f} MiB (incl. one-off anchor work)")
    print(f"speedup={naive_per / ours_per:.2f} max_abs_diff={diff:.3g}")
    if problem := wrong_figures(naive, ours, diff, backbone.model.dtype):
        raise SystemExit(f"wrong figures: {problem}")


if __name__ == "__main__":
    main()
