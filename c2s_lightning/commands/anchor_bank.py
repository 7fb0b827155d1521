"""``python -m c2s_lightning anchors build``: select anchors from a dataset and compute their matrix.

The dataset is a training-mix entry (``MixEntry``: ``--dataset.name koniq10k --dataset.root DIR``,
or a ``dataset:`` mapping in a ``--config`` written like an item of ``data.datasets``), so a config's
entry gives the anchors the evaluator chose from it; without ``--dataset``, the export's first
training dataset with its split. The bank is JSON with its images beside it (``bank.json`` +
``bank/``), one folder to move. With ``--export`` that model computes the matrix under its protocol
and the bank records its fingerprint.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from jsonargparse import Namespace
from jsonargparse.typing import PositiveInt

from c2s_lightning.commands.cache_options import add_cache_arguments, cache_setting, report_cache
from c2s_lightning.infra.arguments import add_actions, parse_tool, tool_parser
from c2s_lightning.infra.atomic_files import check_output_file, is_nonempty_folder
from c2s_lightning.data.mix import MixEntry

BUILD_HELP = "select anchors and compute the anchor-vs-anchor probability matrix"


def _parser():
    p = tool_parser("anchors", __doc__)
    b = tool_parser("anchors build", BUILD_HELP)
    b.add_argument("--dataset", type=MixEntry | None, default=None,
                   help="the anchors' dataset, a training-mix entry: --dataset.name, --dataset.root, --dataset.split "
                        "(paper, official, random, none), --dataset.split_index, --dataset.split_options, "
                        "--dataset.reader_options (all fields: --dataset.help MixEntry); default: the first "
                        "training dataset of the --export model, with its root and split")
    b.add_argument("--part", default="train", choices=["train", "val", "test"],
                   help="part of the split the anchors come from (split none: all images)")
    b.add_argument("--alpha", type=PositiveInt, default=5, help="number of equal-width MOS intervals")
    b.add_argument("--beta", type=PositiveInt, default=1, help="anchors per interval")
    b.add_argument("--rule", default="min_variance", help="min_variance, max_variance or random")
    b.add_argument("--seed", type=int, default=0, help="seed of the split and the random rule")
    b.add_argument("--export", "--checkpoint", type=Path,
                   help="exported model folder or model name (compare2score); without it the matrix is left empty; "
                        "--checkpoint: its old name")
    b.add_argument("--pad-to-square", action=argparse.BooleanOptionalAction, default=None,
                   help="override the export's image preprocessing (reported); default: as the model was trained")
    b.add_argument("--device", help="cuda, cuda:1, cpu ... (default: the first GPU if any)")
    b.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="weight dtype; bfloat16 halves the memory of a 7B model")
    b.add_argument("--batch-size", type=PositiveInt, default=16)
    add_cache_arguments(b)
    b.add_argument("--out", required=True, type=Path,
                   help="anchor bank JSON to write (its images go to a folder of the same stem); never replaced")
    add_actions(p, {"build": (BUILD_HELP, b)})
    return p


def dataset_entry(ns: Namespace) -> tuple[MixEntry, int]:
    """The anchors' dataset (given, or the export's first training one) and the seed of its split."""
    from c2s_lightning.models.protocol import ComparisonProtocol

    if ns.dataset is not None:
        return MixEntry(**ns.dataset.as_dict()), ns.seed
    if ns.export is None:
        raise SystemExit("error: give --dataset.name and --dataset.root (or --export, a model that "
                         "records its datasets)")
    datasets = ComparisonProtocol.load(ns.export).training_datasets
    if not datasets:
        raise SystemExit(f"error: {ns.export} records no training dataset; give --dataset.name and --dataset.root")
    first = datasets[0]
    entry = MixEntry(name=first["name"], root=str(first["root"]), split=first["split"],
                     split_index=first["split_index"], split_options=dict(first["split_options"]),
                     reader_options=dict(first["reader_options"]), label=first.get("label"))
    return entry, ns.seed if first.get("seed") is None else first["seed"]


def build_bank(entry: MixEntry, part: str = "train", alpha: int = 5, beta: int = 1, rule: str = "min_variance",
               seed: int = 0):
    """The anchor bank (no matrix yet) of one part of ``entry``'s split, read as the training mix reads it."""
    from c2s_lightning.data.mix import read_split
    from c2s_lightning.data.pairs import with_std_fallback
    from c2s_lightning.scoring.bank import AnchorBank

    split = read_split(entry, seed)
    if entry.split == "none":  # read_split puts every image in test
        pool, where = split.test, "all images"
    else:
        pool, where = getattr(split, part), f"{entry.split} split {entry.split_index}, {part}"
    pool = with_std_fallback(pool, entry.std_fallback)  # as the evaluator does: --dataset.std_fallback counts
    return AnchorBank.from_records(pool, dataset=entry.key, split=where, alpha=alpha, beta=beta, rule=rule, seed=seed)


@contextlib.contextmanager
def stage(text: str):
    """``text ...`` on stderr now, ``done in X s`` when the block ends: the long steps show as they run."""
    print(f"{text} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    yield
    print(f"  done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)


def check_new_bank(out: Path, export: Path | None) -> None:
    """Refuse, before any work, a ``--out`` that would write over something (a file, a non-empty
    images folder ``bank/`` of ``bank.json``) or lie inside the export."""
    from c2s_lightning.scoring.bank import AnchorBank

    if out.exists():
        raise FileExistsError(f"--out {out} exists; an anchor bank is never replaced: choose another --out")
    images = AnchorBank.images_folder(out)
    if is_nonempty_folder(images):
        raise FileExistsError(f"--out {out}: its images folder {images} exists and is not empty; a bank's "
                              "images go to a new folder: choose another --out")
    check_output_file(out, option="--out", input_folders=[export] if export is not None and export.is_dir() else [])


def main(args: list[str]) -> int:
    ns = parse_tool(_parser(), args)
    check_new_bank(ns.out, ns.export)  # before a model name is resolved (which may build its export)
    from c2s_lightning.scoring.named_models import resolve_export

    if ns.export is not None:  # a model name, or a folder that must hold a model
        ns.export = resolve_export(ns.export)
    entry, seed = dataset_entry(ns)
    check_output_file(ns.out, [Path(entry.root)], option="--out",  # before the dataset is read and the model run,
                      input_folders=[] if ns.export is None else [ns.export])  # the export as resolved
    with stage(f"reading {entry.key} from {entry.root}"):
        bank = build_bank(entry, ns.part, ns.alpha, ns.beta, ns.rule, seed)
    if ns.export is not None:
        from c2s_lightning.scoring.from_export import load_scorer

        with stage(f"loading the model from {ns.export}"):
            scorer = load_scorer(ns.export, bank, batch_size=ns.batch_size, device=ns.device, dtype=ns.dtype,
                                 pad_to_square=ns.pad_to_square, cache=cache_setting(ns))
        n = len(bank.anchors)
        with stage(f"comparing the {n} anchors with each other ({n * (n - 1)} ordered pairs)"):
            scorer.anchor_block()
        report_cache(scorer.comparator, "anchors build")
    bank.save(ns.out)
    for a in bank.anchors:
        print(f"  mos {a.mos:8.4g}  std {a.std if a.std is None else round(a.std, 4)!s:>8}  {a.name or a.path.name}")
    state = (f"matrix computed by {bank.model_fingerprint[:19]} with {bank.image_preprocessing}" if bank.matrix
             else "no matrix yet (give --export)")
    print(f"{len(bank.anchors)} anchors ({bank.rule}, alpha={bank.alpha}, beta={bank.beta}), {state} -> {ns.out} "
          f"(images in {bank.images_folder(ns.out)})")
    return 0
