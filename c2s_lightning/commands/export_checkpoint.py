"""``python -m c2s_lightning export``: a Lightning checkpoint as a Hugging Face folder with its protocol.

The checkpoints ``fit`` writes carry the run's comparison protocol (image preprocessing, training
datasets), which goes into the export's ``compare2score.json``. An anchor bank is not made here:
``anchors build --export OUT --out OUT/anchors.json`` adds one (``fit``'s own export has it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from c2s_lightning.infra.atomic_files import is_nonempty_folder
from c2s_lightning.infra.arguments import parse_tool, tool_parser


def checkpoint_protocol(ckpt: Path, backbone):
    """The protocol recorded in a Lightning checkpoint, or this version's default (reported)."""
    import torch

    from c2s_lightning.training.export_callback import PROTOCOL_KEY
    from c2s_lightning.models.protocol import ComparisonProtocol

    recorded = torch.load(ckpt, map_location="cpu", mmap=True, weights_only=True).get(PROTOCOL_KEY)
    if recorded is None:
        print(f"export: {ckpt} records no comparison protocol; writing the default one (no padding)",
              file=sys.stderr)
        return ComparisonProtocol.for_backbone(backbone)
    return ComparisonProtocol.from_dict(recorded, source=f"{ckpt} [{PROTOCOL_KEY}]")


def main(args: list[str]) -> int:
    p = tool_parser("export", __doc__)
    p.add_argument("--ckpt", required=True, type=Path,
                   help="Lightning checkpoint written by fit, e.g. outputs/quickstart/latest/checkpoints/last.ckpt")
    p.add_argument("--out", required=True, type=Path, help="folder to write (missing or empty; never replaced)")
    p.add_argument("--adapter-only", action="store_true", help="write the LoRA adapter alone (no merge)")
    ns = parse_tool(p, args)
    if is_nonempty_folder(ns.out):  # before loading the model, not only when writing
        raise SystemExit(f"error: {ns.out} exists and is not empty; an export is never replaced")
    from c2s_lightning.infra.checkpoint_files import check_checkpoint_file
    from c2s_lightning.models.export import export_pretrained
    from c2s_lightning.models.module import Compare2ScoreModule

    check_checkpoint_file(ns.ckpt, "--ckpt")  # an empty or text file: one line, not a bare EOFError
    # load_from_checkpoint runs configure_model, so the backbone is built and holds the weights
    module = Compare2ScoreModule.load_from_checkpoint(ns.ckpt, map_location="cpu", weights_only=True)
    protocol = checkpoint_protocol(ns.ckpt, module.backbone)
    export_pretrained(module.backbone, out_dir=ns.out, merge_lora=not ns.adapter_only, protocol=protocol)
    print(f"exported {ns.ckpt} -> {ns.out}")
    return 0
