"""`validate` of the quickstart model on N processes; rank 0 writes its SRCC/PLCC to a JSON file.

The GPU suite's ddp_eval step runs this with 1 and with 2 processes (DDP) on the same test images and
compares the two files: each rank scores a share of the images, so equal metrics show that the shares
are gathered back whole. No logger (no W&B): the metrics are read from the trainer.

    python benchmarks/gpu_ddp_eval.py --devices 2 --images 99 --out ddp2.json [--accelerator cpu]
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from c2s_lightning.cli import main

ROOT = Path(__file__).resolve().parents[1]


def metrics(callback_metrics: dict) -> dict[str, float | str]:
    """The ``.../srcc`` and ``.../plcc`` entries as floats (a non-finite one as its name, kept visible)."""
    out: dict[str, float | str] = {}
    for key, value in sorted(callback_metrics.items()):
        if key.endswith(("/srcc", "/plcc")):
            value = float(value)
            out[key] = value if math.isfinite(value) else str(value)
    return out


def run(devices: int, images: int, out: Path, accelerator: str, work: Path) -> dict:
    args = ["validate", "--config", str(ROOT / "experiments" / "quickstart.yaml"),
            "--trainer.accelerator", accelerator, "--trainer.devices", str(devices),
            "--trainer.strategy", "ddp" if devices > 1 else "auto", "--trainer.logger", "false",
            "--trainer.default_root_dir", str(work), "--trainer.enable_progress_bar", "false",
            "--export.enabled", "false", "--evaluator.max_images", str(images)]
    cli = main(args)
    figures = {"devices": devices, "accelerator": accelerator, "images": images,
               "metrics": metrics(cli.trainer.callback_metrics)}
    if cli.trainer.is_global_zero:
        tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(figures, indent=1))
        os.replace(tmp, out)
    return figures


def main_cli(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--images", type=int, default=99, help="test images (an odd count: uneven shares)")
    parser.add_argument("--accelerator", default="gpu")
    parser.add_argument("--out", type=Path, required=True, help="JSON file for rank 0's metrics")
    parser.add_argument("--work", type=Path, default=None, help="run folders (default: beside --out)")
    ns = parser.parse_args(argv)
    return run(ns.devices, ns.images, ns.out, ns.accelerator, ns.work or ns.out.with_suffix(""))


if __name__ == "__main__":
    main_cli()
