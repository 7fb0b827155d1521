"""``python -m c2s_lightning anchors build``: select anchors from a dataset and compute their matrix."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m c2s_lightning anchors", description=__doc__)
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="select anchors and compute the anchor-vs-anchor probability matrix")
    b.add_argument("--dataset", required=True, help="reader name, e.g. koniq10k (the paper's default)")
    b.add_argument("--root", required=True, type=Path, help="dataset folder as distributed")
    b.add_argument("--reader-options", default="{}", help='JSON options of read_dataset, e.g. \'{"check_images": false}\'')
    b.add_argument("--split", default="paper", help="split protocol: paper, official, random, none (all images)")
    b.add_argument("--split-index", type=int, default=1, help="which of the paper's 10 splits")
    b.add_argument("--split-options", default="{}", help="JSON options of split_records, e.g. test_refs")
    b.add_argument("--part", default="train", help="part of the split the anchors come from")
    b.add_argument("--alpha", type=int, default=5, help="number of equal-width MOS intervals")
    b.add_argument("--beta", type=int, default=1, help="anchors per interval")
    b.add_argument("--rule", default="min_variance", help="min_variance, max_variance or random")
    b.add_argument("--seed", type=int, default=0, help="seed of the split and the random rule")
    b.add_argument("--checkpoint", type=Path, help="exported model folder; without it the matrix is left empty")
    b.add_argument("--device", help="cuda, cuda:1, cpu ... (default: the first GPU if any)")
    b.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="weight dtype; bfloat16 halves the memory of a 7B model")
    b.add_argument("--batch-size", type=int, default=16)
    b.add_argument("--out", required=True, type=Path, help="anchor bank JSON to write")
    return p


def build_bank(ns: argparse.Namespace):
    from c2s_lightning.data.datasets import read_dataset
    from c2s_lightning.data.splits import split_records
    from c2s_lightning.scoring.bank import AnchorBank

    records = read_dataset(ns.dataset, ns.root, **json.loads(ns.reader_options))
    if ns.split == "none":
        pool, where = records, "all images"
    else:
        split = split_records(records, ns.split, index=ns.split_index, seed=ns.seed, **json.loads(ns.split_options))
        pool, where = getattr(split, ns.part), f"{ns.split} split {ns.split_index}, {ns.part}"
    return AnchorBank.from_records(pool, dataset=ns.dataset, split=where, alpha=ns.alpha, beta=ns.beta,
                                   rule=ns.rule, seed=ns.seed)


def main(args: list[str]) -> int:
    ns = _parser().parse_args(args)
    from c2s_lightning.atomic_files import check_output_file

    check_output_file(ns.out, [ns.root], option="--out")  # before the dataset is read and the model run
    bank = build_bank(ns)
    if ns.checkpoint is not None:
        from c2s_lightning.scoring.api import load_scorer

        load_scorer(ns.checkpoint, bank, batch_size=ns.batch_size, device=ns.device, dtype=ns.dtype).anchor_block()
    bank.save(ns.out)
    for a in bank.anchors:
        print(f"  mos {a.mos:8.4g}  std {a.std if a.std is None else round(a.std, 4)!s:>8}  {a.path}")
    state = f"matrix computed by {bank.model_id}" if bank.matrix else "no matrix yet (give --checkpoint)"
    print(f"{len(bank.anchors)} anchors ({bank.rule}, alpha={bank.alpha}, beta={bank.beta}), {state} -> {ns.out}")
    return 0
