"""Time ``score`` on native-size JPEGs: 0 vs N image-feed threads, the old loading, and data waits.

Writes photo-like JPEGs (a scikit-image photograph stretched to the size, plus fine grain) at a
dataset's native size and runs the ``score`` command's loop (``commands.score.score_paths``)
three ways with the same model and anchors: images decoded at full resolution in the main thread
(the loading before the image pipeline), decoded at the model's size with 0 workers, and with
``--workers`` threads loading ahead. For each it reports images per second and the share of the
time the model waits for data: the wall time outside the scorer's model calls. Rounds alternate
and the best of each is kept; the scores must be identical with 0 and N workers.

CPU (default): the tiny LLaVA, exported and loaded as ``score`` does, 5 anchors. ``--gpu``: the
LLaVA-1.5-7B-shaped model of ``scoring.py --gpu`` (random bf16 weights, CUDA) on SPAQ-size photos.
The last line is ``images_per_s_0=<x> images_per_s_<n>=<y> ratio=<y/x> wait_share_0=<a> wait_share_<n>=<b>``.

    .venv/bin/python benchmarks/score_loading.py --quick              # 200 KonIQ-size (1024x768) JPEGs
    .venv/bin/python benchmarks/score_loading.py --size 4000x3000     # SPAQ-size photos
    .venv/bin/python benchmarks/score_loading.py --gpu                # 7B-shaped, 64 x 4000x3000, 8 workers
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from c2s_lightning.commands import score as score_command
from c2s_lightning.data.images import ImagePreprocessing
from c2s_lightning.data.records import IQARecord
from c2s_lightning.scoring.bank import AnchorBank

sys.path.insert(0, str(Path(__file__).parent))
from images import photo  # noqa: E402  (the benchmarks' photo-like images)


def write_images(folder: Path, count: int, size: tuple[int, int], first_seed: int = 0, distinct: int = 8) -> list[Path]:
    """``count`` JPEGs, ``distinct`` of them drawn and the rest copies (decoding costs the same)."""
    paths = []
    for i in range(count):
        paths.append(folder / f"{first_seed + i:04d}.jpg")
        if i < distinct:
            photo(size, first_seed + i).save(paths[-1], quality=90)
        else:
            shutil.copyfile(paths[i % distinct], paths[-1])
    return paths


def write_json(path: Path, figures: dict) -> None:
    """Atomically: a temporary file, then ``os.replace``."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(figures, indent=1))
    os.replace(tmp, path)


class ModelClock:
    """Wraps a scorer's ``score`` to add up the seconds spent in it (the model's share)."""

    def __init__(self, scorer):
        self.seconds, self._score = 0.0, scorer.score
        scorer.score = self

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._score(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def timed(scorer, clock: ModelClock, paths: list[Path], workers: int) -> tuple[float, float, list]:
    """Images per second, share of the wall time spent outside the model, the CSV rows."""
    clock.seconds = 0.0
    start = time.perf_counter()
    rows = score_command.score_paths(scorer, paths, workers)
    wall = time.perf_counter() - start
    return len(paths) / wall, 1 - clock.seconds / wall, rows


def scorers(args, tmp: Path, anchors: list[IQARecord]):
    """(new pipeline scorer, full-resolution scorer) over one model, each with its own bank (a bank's
    matrix belongs to one preprocessing)."""
    from c2s_lightning.scoring.scorer import Compare2Scorer

    def bank() -> AnchorBank:
        return AnchorBank.from_records(anchors, dataset="synth", split="train", alpha=5, beta=1)

    if args.gpu:
        from scoring import llava_7b_shaped

        from c2s_lightning.models.fast_comparator import FastComparator

        backbone = llava_7b_shaped("cuda", torch.bfloat16)
        new = Compare2Scorer(FastComparator(backbone), bank(), batch_size=args.batch_size,
                             pipeline=ImagePreprocessing.for_encoder(backbone.encoder, pad_to_square=True))
    else:
        from c2s_lightning.models.backbones import build_backbone
        from c2s_lightning.models.export import export_pretrained
        from c2s_lightning.scoring.from_export import load_scorer

        export = export_pretrained(build_backbone("tiny-llava"), out_dir=tmp / "export")
        new = load_scorer(export, bank(), batch_size=args.batch_size, device="cpu", pad_to_square=True)
    old = Compare2Scorer(new.comparator, bank(), batch_size=args.batch_size,
                         pipeline=ImagePreprocessing(pad_to_square=True))
    return new, old


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 images, 2 rounds")
    parser.add_argument("--gpu", action="store_true", help="LLaVA-1.5-7B-shaped model on CUDA, SPAQ-size photos")
    parser.add_argument("--images", type=int, default=None, help="default: 200 (CPU), 64 (--gpu)")
    parser.add_argument("--size", default=None, help="WxH of the JPEGs; default 1024x768 (KonIQ), 4000x3000 (--gpu)")
    parser.add_argument("--workers", type=int, default=None, help="image-feed threads; default 2 (CPU), 8 (--gpu)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="image pairs per forward pass (40; --gpu 20)")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    count = args.images or (64 if args.gpu else 200)
    rounds = args.rounds or (1 if args.gpu else 2 if args.quick else 3)
    args.batch_size = args.batch_size or (20 if args.gpu else 40)
    workers = args.workers if args.workers is not None else (8 if args.gpu else 2)
    size = tuple(int(v) for v in (args.size or ("4000x3000" if args.gpu else "1024x768")).lower().split("x"))
    if not args.gpu:
        torch.set_num_threads(1)  # the model on one core, so that loader threads have the other
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "images").mkdir()
        paths = write_images(tmp / "images", count, size)
        anchors = [IQARecord(path=p, mos=float(k), std=0.1, ref=None, dataset="synth", name=p.name)
                   for k, p in enumerate(write_images(tmp, 5, size, first_seed=count))]
        new, old = scorers(args, tmp, anchors)
        for scorer in (new, old):  # outside the timing: anchor matrix, anchors' images and features, kernels
            scorer.score(paths[:1])
        clocks = {id(new): ModelClock(new), id(old): ModelClock(old)}
        runs = {"full-resolution, 0 workers": (old, 0), "0 workers": (new, 0), f"{workers} workers": (new, workers)}
        print(f"{count} JPEGs of {size[0]}x{size[1]}, {new.comparator.model_id} (decode size "
              f"{new.pipeline.decode_size}), pad_to_square, {rounds} rounds")
        best: dict[str, tuple[float, float]] = {}
        for _ in range(rounds):  # alternate, so all see the same machine load
            rows = {}
            for label, (scorer, n) in runs.items():
                rate, wait, rows[label] = timed(scorer, clocks[id(scorer)], paths, n)
                if label not in best or rate > best[label][0]:
                    best[label] = (rate, wait)
            if rows["0 workers"] != rows[f"{workers} workers"]:
                raise SystemExit("scores differ between 0 and N workers")
        for label, (rate, wait) in best.items():
            print(f"{label:>28}: {rate:8.1f} images/s, waiting for data {100 * wait:5.1f}% of the time")
        model, decode_size = new.comparator.model_id, new.pipeline.decode_size
    (rate0, wait0), (rate_n, wait_n) = best["0 workers"], best[f"{workers} workers"]
    if args.out:
        write_json(args.out, {
            "model": model, "images": count, "size": list(size), "decode_size": decode_size, "workers": workers,
            "runs": {label: {"images_per_s": rate, "wait_share": wait} for label, (rate, wait) in best.items()},
            "ratio": rate_n / rate0})
    print(f"images_per_s_0={rate0:.1f} images_per_s_{workers}={rate_n:.1f} ratio={rate_n / rate0:.2f} "
          f"wait_share_0={wait0:.3f} wait_share_{workers}={wait_n:.3f}")


if __name__ == "__main__":
    main()
