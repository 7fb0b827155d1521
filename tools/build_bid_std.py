"""Build ``c2s_lightning/data/labels_data/bid_std.json``: BID's per-image stds, as package data.

BID's own workbook (DatabaseGrades.xlsx) has no std column; the per-image stds the paper's labels
used are in LIQE's ``bid_all.txt`` (tab separated: ``ImageDatabase/DatabaseImageNNNN.JPG``, score,
std). Its scores are on BID's 0-5 MOS scale (they span 0.16-4.92 over the 586 images; no
rescaling shows), so the stds are taken to be on the reader's MOS scale and are shipped as they are. Only numbers are
shipped, keyed by file name. Run this once when the source list changes::

    python tools/build_bid_std.py --shared /work/shared/data

Output::

    {"source": ..., "scale": ..., "std": {"DatabaseImage0001.JPG": 0.68..., ...}}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "c2s_lightning" / "data" / "labels_data" / "bid_std.json"
SOURCE = "zwx8981/LIQE a64655f, IQA_Database/BID/splits2/bid_all.txt, 3rd column"
N_IMAGES = 586


def read_stds(list_file: Path) -> dict[str, float]:
    """``{file name: std}`` from LIQE's list, refusing anything that would ship a wrong number."""
    stds, scores = {}, []
    for number, line in enumerate(list_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise SystemExit(f"{list_file}, line {number}: expected 'path<TAB>score<TAB>std', got {line!r}")
        name = Path(fields[0].replace("\\", "/")).name
        score, std = float(fields[1]), float(fields[2])
        if name in stds:
            raise SystemExit(f"{list_file}, line {number}: {name} listed twice")
        if not std > 0:
            raise SystemExit(f"{list_file}, line {number}: std {std} is not positive")
        stds[name] = std
        scores.append(score)
    if len(stds) != N_IMAGES or not 0 <= min(scores) <= max(scores) <= 5:
        raise SystemExit(f"{list_file}: expected {N_IMAGES} images scored on BID's 0-5 scale, got "
                         f"{len(stds)} in {min(scores):g}..{max(scores):g}")
    return dict(sorted(stds.items()))


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.replace(temp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    stds = read_stds(args.shared / "liqe" / "bid_all.txt")
    content = {
        "source": SOURCE,
        "scale": "BID's 0-5 MOS scale (LIQE's scores for these images span 0.16-4.92); used unscaled",
        "std": stds,
    }
    write_atomically(args.out, json.dumps(content, indent=0) + "\n")
    print(f"{args.out}: {len(stds)} stds, median {statistics.median(stds.values()):.4f}")


if __name__ == "__main__":
    main()
