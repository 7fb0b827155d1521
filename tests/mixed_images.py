"""Image lists of mixed sizes (the ``list`` dataset's native CSV) for the multi-process tests.

Every fourth image is 128x96, the rest 64x64, so that on 2 ranks the strided shards differ in
their size mix: rank 0 (even positions) holds only 64x64 images, rank 1 both sizes. Brightness
predicts the score, so the models have something to learn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZES = [(64, 64), (64, 64), (64, 64), (128, 96)]


def write_list(folder: Path, name: str, n: int, seed: int = 0) -> Path:
    """``n`` PNG images and ``<name>.csv`` (``path,score,std``) in ``folder``; returns the list file."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["path,score,std"]
    for i in range(n):
        level = int(rng.integers(20, 236))
        width, height = SIZES[i % len(SIZES)]
        pixels = np.clip(level + rng.normal(scale=12, size=(height, width, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}_{i:03d}.png")
        rows.append(f"{name}_{i:03d}.png,{1 + 4 * level / 255 + float(rng.normal(scale=0.2)):.4f},{0.3 + i % 5 / 20:.2f}")
    (folder / f"{name}.csv").write_text("\n".join(rows) + "\n")
    return folder / f"{name}.csv"
