"""Time the read-time image check: full decode (cold, then cached) against the header-only check.

Writes a list dataset of JPEGs the size of KonIQ-10k's 512x384 copy (noise, so they do not
compress to nothing) into a temporary folder and reads it four ways in one run: the header check
(the old default, the baseline), the full decode on one thread, the full decode on the thread
pool with an empty cache, and the full decode again with the cache filled (a rerun). Ratios are
against the header check of the same run.

    .venv/bin/python benchmarks/image_checks.py [--images 400] [--size 512 384]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from c2s_lightning.data import image_checks, read_dataset


def write_dataset(folder: Path, images: int, size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    lines = ["path,score"]
    for k in range(images):
        # A shifted copy per file: distinct bytes, realistic decode cost, quick to write.
        Image.fromarray(np.roll(base, k, axis=1)).save(folder / f"{k:05d}.jpg", quality=90)
        lines.append(f"{k:05d}.jpg,{k % 5 + 1}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder / "labels.csv"


def timed(label: str, run) -> float:
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    print(f"{label:<34} {seconds:8.3f} s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, nargs=2, default=(512, 384))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        labels = write_dataset(Path(tmp), args.images, tuple(args.size))
        os.environ["C2S_CACHE_DIR"] = str(Path(tmp) / "cache")
        print(f"{args.images} JPEGs of {args.size[0]}x{args.size[1]}, {os.cpu_count()} CPUs")
        header = timed("header check (baseline)", lambda: read_dataset("list", labels, check_images="header"))
        pool = image_checks._check_all
        image_checks._check_all = lambda paths, check: {p: r for p in paths if (r := check(p)) is not None}
        os.environ["C2S_CACHE_DIR"] = "off"
        serial = timed("full decode, one thread", lambda: read_dataset("list", labels))
        image_checks._check_all = pool
        threaded = timed("full decode, thread pool", lambda: read_dataset("list", labels))
        os.environ["C2S_CACHE_DIR"] = str(Path(tmp) / "cache")
        read_dataset("list", labels)  # fills the cache
        cached = timed("full decode, rerun (cached)", lambda: read_dataset("list", labels))
    print(f"full/header: one thread {serial / header:.1f}x, pool {threaded / header:.1f}x, "
          f"cached rerun {cached / header:.2f}x; pool speed-up {serial / threaded:.2f}x")


if __name__ == "__main__":
    main()
