"""``python -m c2s_lightning evaluate``: soft-comparison evaluation of a checkpoint, no training.

Beta, the anchor rule and the matrix type are inference-time choices, so their sweeps reuse one
checkpoint. This runs LightningCLI's ``validate`` with the model loaded from the checkpoint;
every other option is a LightningCLI option (``--evaluator.beta 3``, ``--config ...``). Images are
preprocessed as the export's ``compare2score.json`` says, whatever the configs say; an explicit
``--data.pad_to_square`` on the command line overrides it (reported). Each evaluation writes into
a run folder of its own under ``trainer.default_root_dir``. Comparisons go through the comparison
cache (``--cache-dir``, default the user cache folder; ``--no-cache`` or an explicit
``--evaluator.cache_dir`` overrides), so runs of a sweep that differ in how comparisons are chosen
or combined compute each one once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from c2s_lightning.commands.cache_options import add_cache_arguments

PAD_OPTION = "--data.pad_to_square"
CACHE_OPTION = "--evaluator.cache_dir"


def protocol_options(checkpoint: str, rest: list[str]) -> list[str]:
    """``--data.pad_to_square`` as the export's protocol says, unless ``rest`` sets it (reported)."""
    from c2s_lightning.models.protocol import ComparisonProtocol, has_protocol

    if not Path(checkpoint).is_dir() or not has_protocol(checkpoint):
        return []
    trained = ComparisonProtocol.load(checkpoint).pad_to_square
    given = [a for a in rest if a.startswith(PAD_OPTION)]
    if given:
        print(f"evaluate: {' '.join(given)} given; {checkpoint} was trained with pad_to_square={trained}",
              file=sys.stderr)
        return []
    print(f"evaluate: image preprocessing from {checkpoint}/compare2score.json: pad_to_square={trained}",
          file=sys.stderr)
    return [PAD_OPTION, str(trained).lower()]


def cache_options(ns: argparse.Namespace, rest: list[str]) -> list[str]:
    """``--evaluator.cache_dir DIR``: on by default here (off in ``fit``), unless ``rest`` sets it."""
    from c2s_lightning.scoring.cache_setup import user_cache_dir

    folder = ns.cache_dir or user_cache_dir()
    if ns.no_cache or folder is None or any(a.startswith(CACHE_OPTION) for a in rest):
        return []
    return [CACHE_OPTION, str(folder)]


def main(args: list[str]):
    p = argparse.ArgumentParser(prog="python -m c2s_lightning evaluate", description=__doc__,
                                epilog="Other options go to `validate` (see `python -m c2s_lightning validate --help`).")
    p.add_argument("--checkpoint", required=True,
                   help="exported model folder (merged or adapter), or a Lightning .ckpt of the same config")
    p.add_argument("--test", action="store_true",
                   help="run the test loop instead of validate (metric keys follow --evaluator.eval_part either way)")
    add_cache_arguments(p)
    ns, rest = p.parse_known_args(args)
    from c2s_lightning.lightning_cli import run_lightning_cli

    command = ["test" if ns.test else "validate", *rest, *cache_options(ns, rest)]
    if str(ns.checkpoint).endswith(".ckpt"):
        command += ["--ckpt_path", ns.checkpoint]
    else:
        command += ["--model.model", ns.checkpoint, "--model.finetune", "frozen",
                    "--model.train_projector", "false", *protocol_options(ns.checkpoint, rest)]
    return run_lightning_cli(command)
