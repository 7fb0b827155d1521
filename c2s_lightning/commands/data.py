"""``python -m c2s_lightning data synth|inspect``: make the synthetic dataset, look at a dataset."""

from __future__ import annotations

import statistics
from pathlib import Path

from c2s_lightning.infra.arguments import add_actions, parse_tool, tool_parser
from c2s_lightning.data.datasets import DATASETS


SYNTH_HELP = "write a small synthetic IQA dataset in KADID-10k's native layout"
INSPECT_HELP = "print counts, score range, std coverage and level histogram"


def _parser():
    parser = tool_parser("data", __doc__)
    synth = tool_parser("data synth", SYNTH_HELP)
    synth.add_argument("--out", required=True, type=Path, help="output folder (images/ + dmos.csv)")
    synth.add_argument("--size", type=int, default=64, help="side of the square images in pixels")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--distortions", nargs="+", default=["noise"], help="noise, blur and/or jpeg")
    synth.add_argument("--crops", type=int, default=1, help="views per photo, each its own reference content")
    synth.add_argument("--force", action="store_true",
                       help="rewrite a folder holding something else; only files an earlier data synth wrote "
                            "there (synth_files.json) are removed or overwritten")
    inspect = tool_parser("data inspect", INSPECT_HELP)
    inspect.add_argument("name", help="reader name: " + ", ".join(DATASETS) + " (list: your own labelled list)")
    inspect.add_argument("root", type=Path, help="dataset folder as distributed (for list: the list file)")
    inspect.add_argument("--pairs", type=int, default=2000, help="pairs drawn for the level histogram")
    inspect.add_argument("--no-check-images", action="store_true", help="skip opening every image header")
    inspect.add_argument("--std-fallback", type=float, default=None,
                         help="std for images without one, on the MOS scale (default: the median std, else 0.14 x "
                              "the MOS range), as a data.datasets entry's std_fallback")
    add_actions(parser, {"synth": (SYNTH_HELP, synth), "inspect": (INSPECT_HELP, inspect)})
    return parser


def inspect_dataset(name: str, root: Path, pairs: int, check_images: bool, std_fallback: float | None = None) -> str:
    """The text that ``data inspect`` prints."""
    from c2s_lightning.data.datasets import read_dataset
    from c2s_lightning.data.pairs import format_histogram, level_histogram, sample_pairs

    records = read_dataset(name, root, check_images=check_images)
    scores = [r.mos for r in records]
    stds = [r.std for r in records if r.std is not None]
    refs = {r.ref for r in records if r.ref is not None}
    lines = [
        f"dataset   {name} at {root}",
        f"images    {len(records)}",
        f"mos       min {min(scores):.4g}  median {statistics.median(scores):.4g}  max {max(scores):.4g}",
        f"std       {len(stds)}/{len(records)} images"
        + (f", median {statistics.median(stds):.4g}" if stds else " (levels will use a fallback std)"),
        f"contents  {len(refs) if refs else 'none (no reference ids)'}",
    ]
    if len(records) >= 2:
        drawn = sample_pairs(records, pairs=pairs, seed=0, std_fallback=std_fallback)
        lines += [f"levels of {len(drawn)} random pairs:", format_histogram(level_histogram(drawn))]
    return "\n".join(lines)


def main(args: list[str]) -> None:
    ns = parse_tool(_parser(), args)
    if ns.action == "synth":
        from c2s_lightning.data.synth import main_synth

        out = main_synth(ns.out, size=ns.size, seed=ns.seed, distortions=tuple(ns.distortions), force=ns.force,
                         crops=ns.crops)
        images = sum(1 for _ in (out / "images").iterdir())
        print(f"data synth: {out} holds the synthetic dataset (KADID-10k layout): {images} image files, "
              f"labels in {out / 'dmos.csv'}")
    else:
        print(inspect_dataset(ns.name, ns.root, ns.pairs, not ns.no_check_images, ns.std_fallback))
