"""``python -m c2s_lightning score``: score images or folders with an exported model.

The scores are raw MAP estimates of Thurstone's Case V model: higher is better, in standard
normal units (the prior is N(0, 1)) on the scale the anchors span, so they compare across images
scored against the same anchor bank and model, not across banks. ``--readoff minmax`` rescales
them to 0-100 between the worst and best anchor (the authors' release). The export's own anchor
bank and image preprocessing (``compare2score.json``) are used unless overridden.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import sys
import time
from pathlib import Path

from jsonargparse.typing import NonNegativeInt, PositiveInt

from c2s_lightning.infra.atomic_files import check_output_file, write_text
from c2s_lightning.commands.cache_options import add_cache_arguments, cache_setting, report_cache
from c2s_lightning.infra.arguments import parse_tool, tool_parser
from c2s_lightning.data.records import DatasetError

CHUNK_IMAGES = 64
CHUNK_BYTES = 128 << 20
"""Decoded pixels one chunk of images may hold (width x height x 3 bytes each): a chunk ends at
``CHUNK_IMAGES`` images or at this many bytes, whichever comes first, so memory follows the
pixels (about three padded 4000x3000 photos), not the image count."""


def image_suffixes() -> set[str]:
    """File name endings of every image format the installed Pillow can open and decode
    (``Image.registered_extensions()``: AVIF, JPEG 2000, QOI ... where built in); stub formats,
    which need a handler of their own, and MPEG, a video, are left out."""
    from PIL import Image, ImageFile

    def decodable(name: str) -> bool:
        opener = Image.OPEN.get(name, (None,))[0]
        return (isinstance(opener, type) and not issubclass(opener, ImageFile.StubImageFile)
                and name != "MPEG")

    return {suffix for suffix, name in Image.registered_extensions().items() if decodable(name)}


def _parser():
    p = tool_parser("score", __doc__)
    p.add_argument("images", nargs="+", type=Path, help="image files and/or folders (searched recursively)")
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="exported model folder, e.g. outputs/quickstart/latest/export")
    p.add_argument("--anchors", type=Path, help="anchor bank JSON (anchors build); default: the export's anchors.json")
    p.add_argument("--readoff", default="raw", choices=["raw", "minmax"],
                   help="raw: the MAP score (default); minmax: 0-100 between the worst and best anchor")
    p.add_argument("--out", type=Path, help="CSV to write (path, score, error); default: print to stdout")
    p.add_argument("--device", help="cuda, cuda:1, cpu ... (default: the first GPU if any)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="weight dtype; bfloat16 halves the memory of a 7B model")
    p.add_argument("--batch-size", type=PositiveInt, default=16, help="image pairs per forward pass")
    p.add_argument("--pad-to-square", action=argparse.BooleanOptionalAction, default=None,
                   help="override the export's image preprocessing (reported); default: as the model was trained")
    p.add_argument("--workers", type=NonNegativeInt, default=2,
                   help="threads decoding the next images while the model scores (0: none); same scores")
    p.add_argument("--recompute-anchors", action="store_true",
                   help="recompute the anchor matrix if the bank's was computed by other weights")
    add_cache_arguments(p)
    p.add_argument("--devices", type=PositiveInt, default=1,
                   help="processes per node, each scoring a share (GPUs, or CPU processes with --device cpu); "
                        "above 1 needs --out")
    p.add_argument("--num-nodes", type=PositiveInt, default=1, help="nodes (started by torchrun or SLURM)")
    return p


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; folders replaced by the images under them, sorted."""
    suffixes = image_suffixes()
    out = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes)
        else:
            out.append(path)
    return out


def score_paths(scorer, paths: list[Path], workers: int = 0, chunk: int = CHUNK_IMAGES,
                chunk_bytes: int = CHUNK_BYTES) -> list[tuple[str, float | None, str]]:
    """One (path, score, error) row per path; an unreadable image (a FIFO, a device, a damaged
    file) gets an error, the rest a score.

    Images are loaded through ``scorer.pipeline`` by ``workers`` threads ahead of the scorer and
    scored in chunks of at most ``chunk`` images and ``chunk_bytes`` decoded bytes.
    """
    from tqdm import tqdm

    from c2s_lightning.scoring.image_feed import prefetch

    def load(path: Path):
        try:
            return scorer.pipeline.load(path), ""
        except (DatasetError, FileNotFoundError) as err:
            return None, str(err)

    rows: list[tuple[str, float | None, str]] = []

    def score(part) -> None:
        bar.update(sum(1 for _, _, error in part if error))
        scores = iter(scorer.score([image for _, image, error in part if not error], progress=bar.update).tolist())
        rows.extend((p, None, e) if e else (p, next(scores), "") for p, _, e in part)

    with tqdm(total=len(paths), unit="img", desc="scoring", file=sys.stderr) as bar, \
            contextlib.closing(prefetch(load, paths, workers)) as loaded:
        part, held = [], 0
        for path, (image, error) in zip(paths, loaded):
            part.append((str(path), image, error))
            held += 0 if image is None else image.width * image.height * len(image.getbands())
            if len(part) == chunk or held >= chunk_bytes:
                score(part)
                part, held = [], 0
        if part:
            score(part)
    return rows


def write_rows(rows: list[tuple[str, float | None, str]], out: Path | None) -> None:
    """The CSV (path, score, error) to ``out`` atomically, or to stdout."""
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["path", "score", "error"])
    writer.writerows((p, "" if s is None else f"{s:.6f}", e) for p, s, e in rows)
    if out:
        write_text(out, table.getvalue())
    else:
        sys.stdout.write(table.getvalue())


def main(args: list[str]) -> int:
    from c2s_lightning.scoring.from_export import export_bank, load_scorer

    ns = parse_tool(_parser(), args)
    paths = expand(ns.images)
    if not paths:
        raise ValueError("no images found in " + ", ".join(map(str, ns.images)))
    from c2s_lightning.commands import score_shards as shards

    # an unusable --out, or one over an input, is refused now, not after every image was scored
    export = [ns.checkpoint] if ns.checkpoint.is_dir() else []
    if ns.out:
        check_output_file(ns.out, paths, option="--out", input_folders=export)
    bank = export_bank(ns.checkpoint, ns.anchors)  # a bad bank fails now, before the model loads
    if ns.out and ns.anchors:
        check_output_file(ns.out, [ns.anchors, *(a.path for a in bank.anchors)], option="--out",
                          input_folders=[bank.images_folder(ns.anchors)])
    ranks = shards.start_ranks(ns.devices, ns.num_nodes, ns.device)  # ddp: the other ranks re-run this command
    start = time.perf_counter()
    scorer = load_scorer(ns.checkpoint, bank, batch_size=ns.batch_size, device=ranks.device, dtype=ns.dtype,
                         recompute_anchors=ns.recompute_anchors, pad_to_square=ns.pad_to_square,
                         readoff=ns.readoff, cache=cache_setting(ns), workers=ns.workers)
    scorer.anchor_block()  # a stale bank fails here, before any image is read
    ranks.barrier()  # the rate printed below counts scoring, not the other ranks' start
    loaded = time.perf_counter()
    rows = shards.score_sharded(ranks, paths, ns.out, shards.run_key(paths, scorer, ns.dtype),
                                lambda chunk: score_paths(scorer, chunk, ns.workers),
                                lambda rows: write_rows(rows, ns.out))
    if rows is None:  # not rank 0: rank 0 wrote the file and reports
        return 0
    seconds = time.perf_counter() - loaded
    failed = [r for r in rows if r[2]]
    for path, _, err in failed:
        print(f"error: {err}", file=sys.stderr)
    print(f"scored {len(rows) - len(failed)} of {len(rows)} images in {seconds:.1f} s "
          f"({len(rows) / max(seconds, 1e-9):.2f} images/s; model and anchors loaded in {loaded - start:.1f} s)"
          + (f" -> {ns.out}" if ns.out else ""), file=sys.stderr)
    report_cache(scorer.comparator, "score")
    return 1 if failed else 0

