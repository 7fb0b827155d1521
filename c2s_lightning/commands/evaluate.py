"""``python -m c2s_lightning evaluate``: soft-comparison evaluation of a checkpoint, no training.

Beta, the anchor rule and the matrix type are inference-time choices, so their sweeps reuse one
checkpoint. This runs LightningCLI's ``validate`` with the model loaded from the checkpoint;
every other option is a LightningCLI option (``--evaluator.beta 3``, ``--config ...``).
"""

from __future__ import annotations

import argparse


def main(args: list[str]):
    p = argparse.ArgumentParser(prog="python -m c2s_lightning evaluate", description=__doc__,
                                epilog="Other options go to `validate` (see `python -m c2s_lightning validate --help`).")
    p.add_argument("--checkpoint", required=True,
                   help="exported model folder (merged or adapter), or a Lightning .ckpt of the same config")
    p.add_argument("--test", action="store_true",
                   help="run the test loop instead of validate (metric keys follow --evaluator.eval_part either way)")
    ns, rest = p.parse_known_args(args)
    from c2s_lightning.lightning_cli import run_lightning_cli

    command = ["test" if ns.test else "validate", *rest]
    if str(ns.checkpoint).endswith(".ckpt"):
        command += ["--ckpt_path", ns.checkpoint]
    else:
        command += ["--model.model", ns.checkpoint, "--model.finetune", "frozen",
                    "--model.train_projector", "false"]
    return run_lightning_cli(command)
