"""``python -m c2s_lightning anchors build``: select anchors from a dataset and compute their matrix.

The bank is written as JSON with its anchor images copied beside it (``bank.json`` + ``bank/``),
so it moves to another machine as one folder. With ``--checkpoint`` the matrix is computed by
that export under its protocol (image preprocessing from ``compare2score.json``) and the bank
records the weights fingerprint; without ``--dataset`` the anchors come from the first dataset
the export was trained on, with its split, as the evaluator chose them during training.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from c2s_lightning.commands.cache_options import add_cache_arguments, cache_setting, report_cache
from c2s_lightning.commands.parsing import add_actions, parse_tool, tool_parser
from c2s_lightning.data.datasets import DATASETS


def _parser():
    p = tool_parser("anchors", __doc__)
    b = tool_parser("anchors build", "select anchors and compute the anchor-vs-anchor probability matrix")
    b.add_argument("--dataset", help="reader name, e.g. koniq10k (the paper's default); default: the first "
                                     "training dataset of the --checkpoint export, with its root and split; "
                                     "one of: " + ", ".join(DATASETS))
    b.add_argument("--root", type=Path, help="dataset folder as distributed")
    # typed mappings (MixEntry's reader_options / split_options): nested YAML in a --config file
    b.add_argument("--reader-options", type=dict, default={}, help="options of read_dataset, e.g. {check_images: false}")
    b.add_argument("--split", default="paper", help="split protocol: paper, official, random, none (all images)")
    b.add_argument("--split-index", type=int, default=1, help="which of the paper's 10 splits")
    b.add_argument("--split-options", type=dict, default={}, help="options of split_records, e.g. {test_refs: [I04]}")
    b.add_argument("--part", default="train", help="part of the split the anchors come from")
    b.add_argument("--alpha", type=int, default=5, help="number of equal-width MOS intervals")
    b.add_argument("--beta", type=int, default=1, help="anchors per interval")
    b.add_argument("--rule", default="min_variance", help="min_variance, max_variance or random")
    b.add_argument("--seed", type=int, default=0, help="seed of the split and the random rule")
    b.add_argument("--checkpoint", type=Path, help="exported model folder; without it the matrix is left empty")
    b.add_argument("--pad-to-square", action=argparse.BooleanOptionalAction, default=None,
                   help="override the export's image preprocessing (reported); default: as the model was trained")
    b.add_argument("--device", help="cuda, cuda:1, cpu ... (default: the first GPU if any)")
    b.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="weight dtype; bfloat16 halves the memory of a 7B model")
    b.add_argument("--batch-size", type=int, default=16)
    add_cache_arguments(b)
    b.add_argument("--out", required=True, type=Path,
                   help="anchor bank JSON to write (its images go to a folder of the same stem); never replaced")
    add_actions(p, {"build": ("select anchors and compute the anchor-vs-anchor probability matrix", b)})
    return p


def trained_dataset(ns: argparse.Namespace) -> None:
    """Fill ``--dataset``/``--root``/split options from the export's first training dataset."""
    from c2s_lightning.models.protocol import ComparisonProtocol

    if ns.checkpoint is None:
        raise SystemExit("error: give --dataset and --root (or --checkpoint of an export that records its datasets)")
    datasets = ComparisonProtocol.load(ns.checkpoint).training_datasets
    if not datasets:
        raise SystemExit(f"error: {ns.checkpoint} records no training dataset; give --dataset and --root")
    first = datasets[0]
    ns.dataset, ns.root, ns.split, ns.split_index = first["name"], Path(first["root"]), first["split"], first["split_index"]
    ns.reader_options, ns.split_options = dict(first["reader_options"]), dict(first["split_options"])
    ns.seed = first.get("seed", ns.seed)


def build_bank(ns: argparse.Namespace):
    from c2s_lightning.data.datasets import read_dataset
    from c2s_lightning.data.splits import split_records
    from c2s_lightning.scoring.bank import AnchorBank

    if ns.dataset is None:
        trained_dataset(ns)
    elif ns.root is None:
        raise SystemExit("error: --dataset needs --root")
    records = read_dataset(ns.dataset, ns.root, **ns.reader_options)
    if ns.split == "none":
        pool, where = records, "all images"
    else:
        split = split_records(records, ns.split, index=ns.split_index, seed=ns.seed, **ns.split_options)
        pool, where = getattr(split, ns.part), f"{ns.split} split {ns.split_index}, {ns.part}"
    return AnchorBank.from_records(pool, dataset=ns.dataset, split=where, alpha=ns.alpha, beta=ns.beta,
                                   rule=ns.rule, seed=ns.seed)


def main(args: list[str]) -> int:
    ns = parse_tool(_parser(), args)
    if ns.out.exists():
        raise SystemExit(f"error: {ns.out} exists; an anchor bank is never replaced: choose another --out")
    from c2s_lightning.atomic_files import check_output_file

    check_output_file(ns.out, [ns.root] if ns.root else [], option="--out")  # before the dataset is read and the model run
    bank = build_bank(ns)
    if ns.checkpoint is not None:
        from c2s_lightning.scoring.api import load_scorer

        scorer = load_scorer(ns.checkpoint, bank, batch_size=ns.batch_size, device=ns.device, dtype=ns.dtype,
                             pad_to_square=ns.pad_to_square, cache=cache_setting(ns))
        scorer.anchor_block()
        report_cache(scorer.comparator, "anchors build")
    bank.save(ns.out)
    for a in bank.anchors:
        print(f"  mos {a.mos:8.4g}  std {a.std if a.std is None else round(a.std, 4)!s:>8}  {a.name or a.path.name}")
    state = (f"matrix computed by {bank.weights_fingerprint[:19]} with {bank.image_preprocessing}" if bank.matrix
             else "no matrix yet (give --checkpoint)")
    print(f"{len(bank.anchors)} anchors ({bank.rule}, alpha={bank.alpha}, beta={bank.beta}), {state} -> {ns.out} "
          f"(images in {bank.images_folder(ns.out)})")
    return 0
