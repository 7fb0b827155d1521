"""Images/s of ``score`` with 1 and with 2 processes (``--devices``), same model and images, one run.

Builds a tiny random-weight LLaVA export and a synthetic image set, then runs
``python -m c2s_lightning score --devices N`` for N = 1 and 2 (CPU processes, Fabric ``ddp``) and
checks that both CSVs hold the same scores. Images/s counts the scoring phase as rank 0 reports it
(from the loaded model to the merged CSV, so the wait for the slower rank is included); the wall
time adds the start of the processes and the model load. The last line is
``ratio=<float> wall_ratio=<float> max_abs_diff=<float>`` (2 processes over 1).

    .venv/bin/python benchmarks/score_devices.py --quick          # tiny LLaVA, CPU, about two minutes
    .venv/bin/python benchmarks/score_devices.py --device cuda    # GPUs: one per process
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(folder: Path, images: int) -> tuple[Path, Path, list[Path]]:
    """A tiny export, an anchor bank (its matrix computed by each run) and ``images`` image files."""
    from c2s_lightning.data import read_dataset
    from c2s_lightning.data.synth import write_synthetic_kadid
    from c2s_lightning.models.backbones import build_backbone
    from c2s_lightning.models.export import export_pretrained
    from c2s_lightning.scoring.bank import AnchorBank

    root = write_synthetic_kadid(folder / "kadid", size=32)
    records = read_dataset("kadid10k", root)
    export = export_pretrained(build_backbone("tiny-llava"), out_dir=folder / "export")
    bank = AnchorBank.from_records(records, "kadid10k", "all", alpha=5, beta=1)
    bank_path = bank.save(folder / "bank" / "bank.json")
    paths = sorted(r.path for r in records)
    return export, bank_path, (paths * (images // len(paths) + 1))[:images]


def run(devices: int, device: str, export: Path, bank: Path, paths: list[Path], out: Path) -> tuple[float, float]:
    """(images/s of the scoring phase, wall seconds) of one ``score`` run."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "c2s_lightning", "score", *map(str, paths), "--checkpoint", str(export),
               "--anchors", str(bank), "--out", str(out), "--device", device, "--devices", str(devices)]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4000:])
    return float(re.search(r"\(([\d.]+) images/s", done.stderr).group(1)), wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny model on the CPU (the default)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--images", type=int, default=1536)
    ns = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export, bank, paths = build(Path(tmp), ns.images)
        results = {n: run(n, ns.device, export, bank, paths, Path(tmp) / f"scores{n}.csv") for n in (1, 2)}
        scores = {n: [float(r["score"]) for r in csv.DictReader((Path(tmp) / f"scores{n}.csv").open())] for n in (1, 2)}
    diff = max(abs(a - b) for a, b in zip(scores[1], scores[2]))
    for n, (rate, wall) in results.items():
        print(f"{n} process{'es' if n > 1 else ''}: {rate:.2f} images/s scoring, {wall:.1f} s wall "
              f"({len(paths)} images)")
    print(f"ratio={results[2][0] / results[1][0]:.2f} wall_ratio={results[1][1] / results[2][1]:.2f} "
          f"max_abs_diff={diff:.2e}")


if __name__ == "__main__":
    main()
