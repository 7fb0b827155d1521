"""Rebuild real_names.json.gz from the shared label lists (run by hand; tests only read the result).

    python tests/data/readers/build_real_names.py ../shared/data

Keeps what full-size fixtures need to reproduce each dataset's real structure: image names in
label-file order, LIVE's reference-entry positions, and LIVE's and CSIQ's scores as in LIQE's
lists (so tests can check the DMOS flips against them). Scores of other datasets are not kept.
"""

import csv
import gzip
import json
import sys
from pathlib import Path


def _liqe(data: Path, name: str) -> list[list[str]]:
    return [line.split("\t") for line in (data / "liqe" / f"{name}_all.txt").read_text().splitlines()]


def main(data: Path) -> None:
    live_json = json.loads((data / "qalign" / "live.json").read_text())
    live_refs = {r["dist_name"]: r["ref_name"].split("/")[-1]
                 for r in csv.DictReader(open(data / "meta_info" / "meta_info_LIVEIQADataset.csv"))}
    clive = [r["img_name"] for r in csv.DictReader(open(data / "meta_info" / "meta_info_LIVEChallengeDataset.csv"))]
    out = {
        # 1-based positions (in the 982-entry folder order) of the reference entries (DMOS 0)
        "live_orgs": [i + 1 for i, r in enumerate(live_json) if r["gt_score"] == 0.0],
        "live": [[p, live_refs[p], float(m), float(s)] for p, m, s in _liqe(data, "live")],
        "csiq": [[p, float(m), float(s)] for p, m, s in _liqe(data, "csiq")],
        "bid": [int(p.split("DatabaseImage")[1][:4]) for p, _, _ in _liqe(data, "bid")],
        "clive": clive,
        "koniq10k": [p.split("/")[-1] for p, _, _ in _liqe(data, "koniq10k")],
        "tid2013": [r["image"].split("/")[-1]
                    for r in json.loads((data / "compare2score/cross_dataset/tid_testing_set.json").read_text())],
        "agiqa3k": [r["image"].split("/")[-1]
                    for r in json.loads((data / "compare2score/cross_dataset/agi.json").read_text())],
    }
    target = Path(__file__).with_name("real_names.json.gz")
    target.write_bytes(gzip.compress(json.dumps(out, separators=(",", ":")).encode(), mtime=0))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
