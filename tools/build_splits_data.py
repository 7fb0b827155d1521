"""Build ``c2s_lightning/data/splits_data/*.json`` from the paper's split lists.

The package ships the membership of the 10 test lists of the Compare2Score / LIQE protocol so it
never reads the shared data folder at run time. Run this once when the source lists change::

    python tools/build_splits_data.py --shared /work/shared/data

Inputs (both under ``--shared``):

- ``liqe/<dataset>_all.txt``: every image of a dataset, by its path relative to the dataset root as
  distributed (the ``IQARecord.name`` convention), tab separated with score and std.
- ``compare2score/splits_test/<k>/<dataset>_test.json``: split k's test list, rows ``{"image": ...}``
  whose paths start with a folder of the authors' own (``live/``, ``livec/``, ``koniq/``, ...) and
  sometimes drop the dataset's image folder (``kadid10k/I01_01_01.png``).

It also writes the test fixture ``tests/data/live_refs.json`` (LIVE's reference of each image,
from ``meta_info/meta_info_LIVEIQADataset.csv``).

Output per dataset, ``<dataset>.json``::

    {"dataset": ..., "split_file": "<k>/<dataset>_test.json", "match_depth": d,
     "keys": [sorted native names], "test": [[sorted indices into keys] for k in 1..10]}

``match_depth`` is the number of trailing path components that identifies an image uniquely
(LIVE needs 2: ``jp2k/img39.bmp``; the others 1); the package matches records on that suffix.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

DATASETS = ("bid", "clive", "csiq", "kadid10k", "koniq10k", "live")
N_SPLITS = 10
REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "c2s_lightning" / "data" / "splits_data"
LIVE_REFS = REPO / "tests" / "data" / "live_refs.json"


def suffix(name: str, depth: int) -> str:
    """Lower-cased last ``depth`` components of a slash path."""
    return "/".join(name.replace("\\", "/").lower().split("/")[-depth:])


def unique_depth(names: list[str]) -> int:
    """Smallest number of trailing components under which all names are distinct."""
    for depth in range(1, max(n.count("/") for n in names) + 2):
        if len({suffix(n, depth) for n in names}) == len(names):
            return depth
    raise SystemExit("duplicate names in an _all list")


def build_one(shared: Path, dataset: str) -> dict:
    """Membership of one dataset's 10 test lists as indices into its sorted native names."""
    lines = (shared / "liqe" / f"{dataset}_all.txt").read_text().splitlines()
    keys = sorted(line.split("\t")[0] for line in lines if line.strip())
    depth = unique_depth(keys)
    index = {suffix(k, depth): i for i, k in enumerate(keys)}
    tests = []
    for k in range(1, N_SPLITS + 1):
        path = shared / "compare2score" / "splits_test" / str(k) / f"{dataset}_test.json"
        rows = json.loads(path.read_text())
        # the lists' first folder is the authors' dataset folder, never part of the native name
        found = [index.get(suffix(r["image"].split("/", 1)[1], depth)) for r in rows]
        if None in found or len(set(found)) != len(found):
            raise SystemExit(f"{path}: {found.count(None)} unmatched or duplicate images")
        tests.append(sorted(found))
    return {
        "dataset": dataset,
        "split_file": f"<k>/{dataset}_test.json",
        "match_depth": depth,
        "keys": keys,
        "test": tests,
    }


def live_refs(shared: Path) -> dict[str, list[str]]:
    """LIVE's ``{reference: [distorted names]}``, for the tests' content-disjointness check.

    LIVE's file names do not tell the content (it is in refnames_all.mat); pyiqa's meta file has it.
    """
    refs: dict[str, list[str]] = {}
    with (shared / "meta_info" / "meta_info_LIVEIQADataset.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            refs.setdefault(Path(row["ref_name"]).stem, []).append(row["dist_name"])
    return {ref: sorted(names) for ref, names in sorted(refs.items())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for dataset in DATASETS:
        data = build_one(args.shared, dataset)
        target = args.out / f"{dataset}.json"
        target.write_text(json.dumps(data, separators=(",", ":")) + "\n")
        sizes = [len(t) for t in data["test"]]
        print(f"{target}: {len(data['keys'])} images, depth {data['match_depth']}, test sizes {sizes}")
    LIVE_REFS.parent.mkdir(parents=True, exist_ok=True)
    LIVE_REFS.write_text(json.dumps(live_refs(args.shared), separators=(",", ":")) + "\n")
    print(f"{LIVE_REFS}: test fixture")


if __name__ == "__main__":
    main()
