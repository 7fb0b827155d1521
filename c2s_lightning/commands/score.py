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
# decoded bytes a chunk may hold: memory follows the pixels (about three padded 4000x3000 photos), not the count
CHUNK_BYTES = 128 << 20


def _parser():
    p = tool_parser("score", __doc__)
    p.add_argument("images", nargs="+", type=Path, help="image files and/or folders (searched recursively)")
    p.add_argument("--export", "--checkpoint", required=True,
                   help="a model name (compare2score: the authors' release, fetched through the Hugging Face "
                        "cache once) or an exported model folder (fit writes <run>/export; the quickstart's "
                        "outputs/quickstart/latest/export is a toy); --checkpoint: its old name")
    p.add_argument("--anchors", type=Path, help="anchor bank JSON (anchors build); default: the export's anchors.json")
    p.add_argument("--readoff", default="raw", choices=["raw", "minmax"],
                   help="raw: the MAP score (default); minmax: 0-100 between the worst and best anchor")
    p.add_argument("--out", type=Path, help="CSV to write (path, score, error); default: print to stdout")
    p.add_argument("--device", help="cuda, cuda:1, cpu ... (default: the first GPU if any)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weight dtype; auto: bfloat16 (half float32's memory) on a CUDA device with bf16, else float32")
    p.add_argument("--batch-size", type=PositiveInt, default=16, help="image pairs per forward pass")
    p.add_argument("--pad-to-square", action=argparse.BooleanOptionalAction, default=None,
                   help="override the export's image preprocessing (reported); default: as the model was trained")
    p.add_argument("--workers", type=NonNegativeInt, default=2,
                   help="threads decoding the next images while the model scores (0: none); same scores")
    p.add_argument("--recompute-anchors", action="store_true",
                   help="recompute the anchor matrix, even if the bank holds one")
    add_cache_arguments(p)
    p.add_argument("--devices", type=PositiveInt, default=1,
                   help="processes per node, each scoring a share (GPUs, or CPU processes with --device cpu); "
                        "above 1 needs --out")
    p.add_argument("--num-nodes", type=PositiveInt, default=1, help="nodes (started by torchrun or SLURM)")
    return p


def resolve_dtype(choice: str, device: str | None, command: str | None) -> str:
    """``auto``: bfloat16 on a CUDA ``device`` (None: the first GPU if any) with bf16, else float32; a
    choice on CUDA said in one line after ``command`` (None: not said)."""
    if choice != "auto":
        return choice
    import torch

    cuda = (device is None or str(device).startswith("cuda")) and torch.cuda.is_available()
    dtype = "bfloat16" if cuda and torch.cuda.is_bf16_supported() else "float32"
    why = "a CUDA device with bf16" if dtype == "bfloat16" else "CUDA without bf16" if cuda else "no CUDA device"
    if command and cuda:  # on a machine without CUDA, float32 as ever goes unsaid
        print(f"{command}: --dtype auto -> {dtype} ({why}; --dtype float32|bfloat16|float16 to choose)",
              file=sys.stderr)
    return dtype


def score_paths(scorer, paths: list[Path], workers: int = 0, chunk: int = CHUNK_IMAGES,
                chunk_bytes: int | None = CHUNK_BYTES) -> list[tuple[str, float | None, str]]:
    """One (path, score, error) row per path: an error for an unreadable image (a FIFO, a device, a
    damaged file), else a score. ``workers`` threads decode ahead of the scorer; chunks end at
    ``chunk`` images or ``chunk_bytes`` decoded bytes (None: no bound). An unreadable image is scored
    as a stand-in, its score dropped, so that every rank makes the same calls (FastComparator's lockstep)."""
    from tqdm import tqdm

    from c2s_lightning.models.lockstep import stand_in
    from c2s_lightning.scoring.image_feed import prefetch

    def load(path: Path):
        try:
            return scorer.pipeline.load(path), ""
        except (DatasetError, FileNotFoundError) as err:
            return None, str(err)

    rows: list[tuple[str, float | None, str]] = []

    def score(part) -> None:
        other = stand_in([[image for _, image, error in part if not error]])
        scores = scorer.score([other if error else image for _, image, error in part], progress=bar.update)
        rows.extend((p, None, e) if e else (p, s, "") for (p, _, e), s in zip(part, scores.tolist()))

    with tqdm(total=len(paths), unit="img", desc="scoring", file=sys.stderr) as bar, \
            contextlib.closing(prefetch(load, paths, workers)) as loaded:
        part, held = [], 0
        for path, (image, error) in zip(paths, loaded):
            part.append((str(path), image, error))
            held += 0 if image is None else image.width * image.height * len(image.getbands())
            if len(part) == chunk or (chunk_bytes is not None and held >= chunk_bytes):
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
    ns = parse_tool(_parser(), args)  # before the heavy imports: --help and bad options answer at once
    from c2s_lightning.commands import score_shards as shards
    from c2s_lightning.scoring.from_export import export_bank, load_scorer
    from c2s_lightning.scoring.image_feed import expand_image_paths
    from c2s_lightning.scoring.named_models import resolve_export

    ns.export = resolve_export(ns.export)  # a wrong name fails before any folder is searched
    paths = expand_image_paths(ns.images)
    # an unusable --out, or one over an input, is refused now, not after every image was scored
    if ns.out:
        check_output_file(ns.out, paths, option="--out", input_folders=[ns.export] if ns.export.is_dir() else [])
    bank = export_bank(ns.export, ns.anchors)  # a bad bank fails now, before the model loads
    if ns.out and ns.anchors:
        check_output_file(ns.out, [ns.anchors, *(a.path for a in bank.anchors)], option="--out",
                          input_folders=[bank.images_folder(ns.anchors)])
    ranks = shards.start_ranks(ns.devices, ns.num_nodes, ns.device)  # ddp: the other ranks re-run this command
    dtype = resolve_dtype(ns.dtype, ranks.device, "score" if ranks.rank == 0 else None)
    start = time.perf_counter()
    scorer = load_scorer(ns.export, bank, batch_size=ns.batch_size, device=ranks.device, dtype=dtype,
                         recompute_anchors=ns.recompute_anchors, pad_to_square=ns.pad_to_square,
                         readoff=ns.readoff, cache=cache_setting(ns), workers=ns.workers, lockstep=ranks.world > 1)
    scorer.anchor_block()  # a stale bank fails here, before any image is read
    ranks.barrier()  # the rate printed below counts scoring, not the other ranks' start
    loaded = time.perf_counter()
    # several processes score in lockstep: every rank must make the same calls, so chunks end at a count
    chunk_bytes = CHUNK_BYTES if ranks.world == 1 else None
    rows = shards.score_sharded(ranks, paths, ns.out, shards.run_key(paths, scorer, dtype),
                                lambda chunk: score_paths(scorer, chunk, ns.workers, chunk_bytes=chunk_bytes),
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

