"""``python -m c2s_lightning score``: score images or folders with a checkpoint and an anchor bank."""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys
from pathlib import Path

from c2s_lightning.data.records import DatasetError

IMAGE_SUFFIXES = {".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".gif"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m c2s_lightning score", description=__doc__)
    p.add_argument("images", nargs="+", type=Path, help="image files and/or folders (searched recursively)")
    p.add_argument("--checkpoint", required=True, type=Path, help="exported model folder (export_pretrained)")
    p.add_argument("--anchors", required=True, type=Path, help="anchor bank JSON (anchors build)")
    p.add_argument("--out", type=Path, help="CSV to write (path, score, error); default: print to stdout")
    p.add_argument("--device", help="cuda, cuda:1, cpu ... (default: the first GPU if any)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="weight dtype; bfloat16 halves the memory of a 7B model")
    p.add_argument("--batch-size", type=int, default=16, help="image pairs per forward pass")
    p.add_argument("--pad-to-square", action="store_true", help="pad images to a square with the mean colour")
    p.add_argument("--workers", type=int, default=2,
                   help="threads decoding the next images while the model scores (0: none); same scores")
    p.add_argument("--recompute-anchors", action="store_true",
                   help="recompute the anchor matrix if the bank's was computed with another model")
    return p


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; folders replaced by the images under them, sorted."""
    out = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(path)
    return out


def score_paths(scorer, paths: list[Path], workers: int = 0, chunk: int = 64) -> list[tuple[str, float | None, str]]:
    """One (path, score, error) row per path; an unreadable image gets an error, the rest a score.

    Images are loaded through ``scorer.pipeline`` by ``workers`` threads, one chunk ahead of the
    chunk being scored.
    """
    from tqdm import tqdm

    from c2s_lightning.scoring.loading import prefetch

    def load(path: Path):
        try:
            return scorer.pipeline.load(path), ""
        except (DatasetError, FileNotFoundError) as err:
            return None, str(err)

    rows: list[tuple[str, float | None, str]] = []
    with tqdm(total=len(paths), unit="img", desc="scoring", file=sys.stderr) as bar, \
            contextlib.closing(prefetch(load, paths, workers, ahead=chunk)) as loaded:
        for start in range(0, len(paths), chunk):
            part = [(str(path), *next(loaded)) for path in paths[start:start + chunk]]
            bar.update(sum(1 for _, _, error in part if error))
            scores = iter(scorer.score([image for _, image, error in part if not error], progress=bar.update).tolist())
            rows += [(p, None, e) if e else (p, next(scores), "") for p, _, e in part]
    return rows


def main(args: list[str]) -> int:
    from c2s_lightning.scoring.api import load_scorer

    ns = _parser().parse_args(args)
    paths = expand(ns.images)
    if not paths:
        raise SystemExit("no images found in " + ", ".join(map(str, ns.images)))
    scorer = load_scorer(ns.checkpoint, ns.anchors, batch_size=ns.batch_size, device=ns.device, dtype=ns.dtype,
                         recompute_anchors=ns.recompute_anchors, pad_to_square=ns.pad_to_square,
                         workers=ns.workers)
    rows = score_paths(scorer, paths, ns.workers)
    out = open(ns.out, "w", newline="") if ns.out else sys.stdout
    try:
        writer = csv.writer(out)
        writer.writerow(["path", "score", "error"])
        writer.writerows((p, "" if s is None else f"{s:.6f}", e) for p, s, e in rows)
    finally:
        if ns.out:
            out.close()
    failed = [r for r in rows if r[2]]
    for path, _, err in failed:
        print(f"error: {err}", file=sys.stderr)
    print(f"scored {len(rows) - len(failed)} of {len(rows)} images" + (f" -> {ns.out}" if ns.out else ""),
          file=sys.stderr)
    return 1 if failed else 0
