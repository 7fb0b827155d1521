"""The files a README reader brings along, made in a fresh clone before tests/readme_walk.py runs the README.

The README's commands name the user's own files; on a fresh clone they do not exist, so the walker
makes stand-ins first, in the places and formats the README describes:

- ``my_photos/``: six photos (scikit-image samples, JPEG), and ``photo.png`` beside the README;
- ``data/my_list/labels.csv``: a labelled list (``path,score`` header, paths relative to the file's
  folder, higher is better): four photos at five Gaussian-noise levels, score 5 for the clean image
  down to 1 for the noisiest;
- ``data/koniq10k``: KonIQ-10k in its native layout with the real labels (all 10,073 names, vote
  counts, MOS_zscore and official sets from the KonIQ meta file in the shared label data), the
  images small stand-ins whose noise grows as the real MOS falls (the real images cannot be
  downloaded here). Without the shared label data, tests/native_fixtures.py's full-size KonIQ labels.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

import native_fixtures as nf
from c2s_lightning.data.synth import distort, load_content

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins")
KONIQ_META = "meta_info/meta_info_KonIQ10kDataset.csv"
KONIQ_SETS = {"0": "training", "1": "validation", "2": "test"}
NOISE = (0.0, 8.0, 18.0, 32.0, 55.0)  # the synthetic dataset's noise strengths, mildest first


def make_user_files(root: Path, shared_data: Path | None) -> list[str]:
    """Write the user's files under the clone ``root``; returns one line describing each."""
    rng = np.random.default_rng(0)
    photos = root / "my_photos"
    photos.mkdir()
    for name in PHOTOS:
        Image.fromarray(load_content(name, 96)).save(photos / f"{name}.jpg", quality=90)
    Image.fromarray(load_content("clock", 96)).save(root / "photo.png")
    rows = _write_list(root / "data" / "my_list", rng)
    koniq, source = _write_koniq(root / "data" / "koniq10k", shared_data, rng)
    return [f"my_photos/ ({len(PHOTOS)} JPEG photos) and photo.png",
            f"data/my_list/labels.csv ({rows} rows: 4 photos x 5 noise levels, score 5 = clean)",
            f"data/koniq10k ({koniq} images, 32x24 stand-ins; labels: {source})"]


def _write_list(folder: Path, rng: np.random.Generator) -> int:
    (folder / "imgs").mkdir(parents=True)
    lines = ["path,score"]
    for name in PHOTOS[:4]:
        clean = load_content(name, 64)
        for level, sigma in enumerate(NOISE):
            path = f"imgs/{name}_{level}.png"
            Image.fromarray(distort(clean, "noise", sigma, rng)).save(folder / path)
            lines.append(f"{path},{5 - level}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def _write_koniq(root: Path, shared_data: Path | None, rng: np.random.Generator) -> tuple[int, str]:
    meta = shared_data / KONIQ_META if shared_data else None
    if meta is not None and meta.is_file():
        rows = _koniq_rows(meta)
        nf.write_koniq_labels(root, rows)
        source = f"the real ones, from {meta}"
    else:
        nf.write_koniq(root, full=True, images=False)
        with (root / "koniq10k_scores_and_distributions.csv").open() as f:
            rows = [(r["image_name"], [int(r[f"c{k}"]) for k in range(1, 6)], 0.0, "")
                    for r in csv.DictReader(f)]
        source = "tests/native_fixtures.py's (no shared label data found)"
    bases = [np.asarray(Image.fromarray(load_content(name, 32)).resize((32, 24))) for name in PHOTOS]
    (root / "1024x768").mkdir()
    for i, (name, counts, _, _) in enumerate(rows):
        mos = float(np.dot(counts, np.arange(1, 6)) / sum(counts))
        image = distort(bases[i % len(bases)], "noise", 14.0 * (5.0 - mos), rng)
        Image.fromarray(image).save(root / "1024x768" / name, quality=90)
    return len(rows), source


def _koniq_rows(meta: Path) -> list[tuple[str, list[int], float, str]]:
    """(name, vote counts, MOS_zscore, set) per image: the meta file holds vote fractions and the total."""
    rows = []
    with meta.open(newline="") as f:
        for row in csv.DictReader(f):
            total = int(row["c_total"])
            counts = [round(float(row[f"c{k}"]) * total) for k in range(1, 6)]
            rows.append((row["img_name"], counts, float(row["mos"]), KONIQ_SETS[row["split"]]))
    return rows
