"""``python -m c2s_lightning score``: score images or folders with an exported model.

The scores are raw MAP estimates of Thurstone's Case V model: higher is better, in standard
normal units (the prior is N(0, 1)) on the scale the anchors span, so they compare across images
scored against the same anchor bank and model, not across banks. ``--readoff minmax`` rescales
them to 0-100 between the worst and best anchor (the authors' release). The export's own anchor
bank and image preprocessing (``compare2score.json``) are used unless overridden.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

from c2s_lightning.atomic_files import write_text
from c2s_lightning.commands.cache_options import add_cache_arguments, cache_setting, report_cache
from c2s_lightning.data.images import load_image
from c2s_lightning.data.records import DatasetError

IMAGE_SUFFIXES = {".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".gif"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m c2s_lightning score", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
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
    p.add_argument("--batch-size", type=int, default=16, help="image pairs per forward pass")
    p.add_argument("--pad-to-square", action=argparse.BooleanOptionalAction, default=None,
                   help="override the export's image preprocessing (reported); default: as the model was trained")
    p.add_argument("--recompute-anchors", action="store_true",
                   help="recompute the anchor matrix if the bank's was computed by other weights")
    add_cache_arguments(p)
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


def score_paths(scorer, paths: list[Path], pad_to_square: bool, chunk: int = 64) -> list[tuple[str, float | None, str]]:
    """One (path, score, error) row per path; an unreadable image gets an error, the rest a score."""
    from tqdm import tqdm

    rows: list[tuple[str, float | None, str]] = []
    with tqdm(total=len(paths), unit="img", desc="scoring", file=sys.stderr) as bar:
        for start in range(0, len(paths), chunk):
            loaded, order = [], []
            for path in paths[start:start + chunk]:
                try:
                    loaded.append(load_image(path, pad_to_square))
                    order.append((str(path), None))
                except (DatasetError, FileNotFoundError) as err:
                    order.append((str(path), str(err)))
                    bar.update(1)
            scores = iter(scorer.score(loaded, progress=bar.update).tolist())
            rows += [(p, None, e) if e else (p, next(scores), "") for p, e in order]
    return rows


def main(args: list[str]) -> int:
    from c2s_lightning.models.protocol import ProtocolError
    from c2s_lightning.scoring.api import load_scorer
    from c2s_lightning.scoring.bank import StaleAnchorBankError

    ns = _parser().parse_args(args)
    paths = expand(ns.images)
    if not paths:
        raise SystemExit("no images found in " + ", ".join(map(str, ns.images)))
    if ns.out:  # an unusable --out is found now, not after every image was scored
        from c2s_lightning.atomic_files import check_output_file

        check_output_file(ns.out, [p for p in (*paths, ns.anchors, ns.checkpoint) if p], option="--out")
    start = time.perf_counter()
    try:
        scorer = load_scorer(ns.checkpoint, ns.anchors, batch_size=ns.batch_size, device=ns.device, dtype=ns.dtype,
                             recompute_anchors=ns.recompute_anchors, pad_to_square=ns.pad_to_square,
                             readoff=ns.readoff, cache=cache_setting(ns))
        scorer.anchor_block()  # a stale bank fails here, before any image is read
    except (StaleAnchorBankError, ProtocolError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None
    loaded = time.perf_counter()
    rows = score_paths(scorer, paths, scorer.pad_to_square)
    seconds = time.perf_counter() - loaded
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["path", "score", "error"])
    writer.writerows((p, "" if s is None else f"{s:.6f}", e) for p, s, e in rows)
    if ns.out:
        write_text(ns.out, table.getvalue())
    else:
        sys.stdout.write(table.getvalue())
    failed = [r for r in rows if r[2]]
    for path, _, err in failed:
        print(f"error: {err}", file=sys.stderr)
    print(f"scored {len(rows) - len(failed)} of {len(rows)} images in {seconds:.1f} s "
          f"({len(rows) / max(seconds, 1e-9):.2f} images/s; model and anchors loaded in {loaded - start:.1f} s)"
          + (f" -> {ns.out}" if ns.out else ""), file=sys.stderr)
    report_cache(scorer.comparator, "score")
    return 1 if failed else 0
