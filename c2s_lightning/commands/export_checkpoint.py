"""``python -m c2s_lightning export``: a Lightning checkpoint as a Hugging Face folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def main(args: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m c2s_lightning export", description=__doc__)
    p.add_argument("--ckpt", required=True, type=Path, help="Lightning checkpoint written by fit")
    p.add_argument("--out", required=True, type=Path, help="folder to write")
    p.add_argument("--adapter-only", action="store_true", help="write the LoRA adapter alone (no merge)")
    ns = p.parse_args(args)
    from c2s_lightning.checkpoint_files import check_checkpoint_file
    from c2s_lightning.models.export import export_pretrained
    from c2s_lightning.models.module import Compare2ScoreModule

    check_checkpoint_file(ns.ckpt, "--ckpt")  # an empty or text file: one line, not a bare EOFError
    # load_from_checkpoint runs configure_model, so the backbone is built and holds the weights
    module = Compare2ScoreModule.load_from_checkpoint(ns.ckpt, map_location="cpu", weights_only=True)
    export_pretrained(module.backbone, out_dir=ns.out, merge_lora=not ns.adapter_only)
    print(f"exported {ns.ckpt} -> {ns.out}")
    return 0
