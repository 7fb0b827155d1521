"""Time image loading up to the model's input tensor: full-resolution decoding vs the pipeline.

Old path: ``load_image`` (full decode, pad to square at full size) + the processor. New path:
``ImagePreprocessing(pad_to_square, decode_size=S).load`` (JPEG DCT scaling to the smallest
scale covering ``reducing_gap`` (2) times the model's input side S, padding at that size) + the
same processor. Synthetic
photo-like images (a scikit-image photograph stretched to the size, plus fine grain) at the
datasets' native sizes: KonIQ-10k 1024x768, BID 2816x2112 and SPAQ 4000x3000 as JPEG, KADID-10k
512x384 as PNG. Rounds of the two paths alternate and the best round of each is kept, so load
from other jobs on the machine hurts both alike. The last line is
``speedup=<new/old images per second on 4000x3000> mean_abs_diff=<largest per-size mean |old - new|>``
on the model-input tensors, brought back to the 0-1 pixel scale.

    .venv/bin/python benchmarks/images.py --quick                   # mPLUG-Owl2's 448 px processor
    .venv/bin/python benchmarks/images.py --processor clip336       # LLaVA-1.5's processor
    .venv/bin/python benchmarks/images.py --quick --reducing-gap 1  # decode as small as covers S
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from c2s_lightning.data.images import ImagePreprocessing, load_image
from c2s_lightning.models.processors import input_side

SIZES = {"KonIQ 1024x768": ((1024, 768), "jpg"), "BID 2816x2112": ((2816, 2112), "jpg"),
         "SPAQ 4000x3000": ((4000, 3000), "jpg"), "KADID 512x384": ((512, 384), "png")}


def processor(name: str):
    """An image processor as the real model configures it (nothing downloaded)."""
    if name == "mplug448":
        from c2s_lightning.models.mplug_owl2.image_processing import MPLUGOwl2ImageProcessor

        return MPLUGOwl2ImageProcessor(448)
    from transformers import CLIPImageProcessorPil, SiglipImageProcessorPil

    if name == "clip336":
        return CLIPImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    return SiglipImageProcessorPil(size={"height": 224, "width": 224})


def pixels(image_processor, image: Image.Image) -> torch.Tensor:
    if hasattr(image_processor, "preprocess_one"):
        return image_processor.preprocess_one(image)
    return image_processor(images=[image], return_tensors="pt")["pixel_values"][0]


def photo(size: tuple[int, int], seed: int) -> Image.Image:
    from skimage import data

    sources = (data.coffee, data.chelsea, data.astronaut, data.rocket)
    base = Image.fromarray(sources[seed % len(sources)]()).resize(size, Image.Resampling.BICUBIC)
    grain = np.random.default_rng(seed).normal(0, 6, (size[1], size[0], 1))
    return Image.fromarray(np.clip(np.asarray(base, dtype=np.float32) + grain, 0, 255).astype(np.uint8))


def best_rate(fn, paths: list[Path], rounds: int) -> list[float]:
    """Images per second of each round."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for path in paths:
            fn(path)
        rates.append(len(paths) / (time.perf_counter() - start))
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 images per size, 3 rounds")
    parser.add_argument("--processor", default="mplug448", choices=["mplug448", "clip336", "siglip224"])
    parser.add_argument("--no-pad", action="store_true", help="without pad-to-square")
    parser.add_argument("--reducing-gap", type=float, default=ImagePreprocessing.reducing_gap,
                        help="decode to cover this many times the input side (1: as small as covers it)")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    count = args.images or (3 if args.quick else 10)
    rounds = args.rounds or (3 if args.quick else 5)
    image_processor = processor(args.processor)
    pad = not args.no_pad
    new = ImagePreprocessing(pad_to_square=pad, decode_size=input_side(image_processor),
                             reducing_gap=args.reducing_gap)
    std = torch.tensor(getattr(image_processor, "image_std"), dtype=torch.float64)[:, None, None]
    print(f"processor {args.processor} (S={new.decode_size}), pad_to_square={pad}, "
          f"reducing_gap={new.reducing_gap}, {count} images x {rounds} rounds")
    print(f"{'size':>16} {'old img/s':>10} {'new img/s':>10} {'speedup':>8} {'mean|diff|':>11} {'max|diff|':>10}")
    speedups, diffs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, (size, suffix) in SIZES.items():
            paths = [Path(tmp) / f"{label.split()[0]}_{i}.{suffix}" for i in range(count)]
            for i, path in enumerate(paths):
                photo(size, i).save(path, **({"quality": 90} if suffix == "jpg" else {}))
            old_rates, new_rates = [], []
            best_rate(lambda p: pixels(image_processor, load_image(p, pad)), paths, 1)  # warm-up, not counted
            best_rate(lambda p: pixels(image_processor, new.load(p)), paths, 1)
            for _ in range(rounds):  # alternate, so both see the same machine load
                old_rates += best_rate(lambda p: pixels(image_processor, load_image(p, pad)), paths, 1)
                new_rates += best_rate(lambda p: pixels(image_processor, new.load(p)), paths, 1)
            diff = torch.stack([((pixels(image_processor, load_image(p, pad)).double()
                                  - pixels(image_processor, new.load(p)).double()) * std).abs() for p in paths])
            speedups[label], diffs[label] = max(new_rates) / max(old_rates), float(diff.mean())
            print(f"{label:>16} {max(old_rates):10.1f} {max(new_rates):10.1f} {speedups[label]:7.2f}x "
                  f"{diffs[label]:11.5f} {float(diff.max()):10.4f}", flush=True)
    print(f"speedup={speedups['SPAQ 4000x3000']:.2f} mean_abs_diff={max(diffs.values()):.5f}")


if __name__ == "__main__":
    main()
