"""``python -m c2s_lightning evaluate``: soft-comparison evaluation of an export or a checkpoint, no training.

Beta, the anchor rule and the matrix type are inference-time choices, so their sweeps reuse one
checkpoint. This runs LightningCLI's ``validate`` (each in a run folder of its own) with the
evaluate defaults (``commands/evaluate_defaults.yaml``: nothing trains) stacked last; every option
but evaluate's own is LightningCLI's (``--evaluator.beta 3``, ``--config ...``). Images are
preprocessed as the export's ``compare2score.json`` says, unless ``--data.pad_to_square`` is given
(reported). Comparisons go through the comparison cache (``--no-cache`` or ``--evaluator.cache_dir``
overrides), so a sweep's runs compute each one once. ``--dtype`` sets ``--trainer.precision``
unless that is given.
"""

from __future__ import annotations

import itertools
import sys
from importlib import resources
from pathlib import Path

from jsonargparse import Namespace

from c2s_lightning.commands.cache_options import add_cache_arguments
from c2s_lightning.infra.arguments import ToolParser, long_options, parse_tool, tool_parser
from c2s_lightning.infra.user_errors import suggestion

PAD_OPTION = "--data.pad_to_square"
CACHE_OPTION = "--evaluator.cache_dir"
PRECISION_OPTION = "--trainer.precision"
PRECISIONS = {"float32": "32-true", "bfloat16": "bf16-true", "float16": "16-true"}  # --dtype's
# the config stacked last that makes a validate run an evaluation (nothing trains); package data: found when installed
PRESET = resources.files("c2s_lightning.commands") / "evaluate_defaults.yaml"


def protocol_options(checkpoint: str, rest: list[str]) -> list[str]:
    """``--data.pad_to_square`` as the export's protocol says, unless ``rest`` sets it (reported), and
    ``--data.pad_colour image_mean`` for an export padded with each image's own mean."""
    from c2s_lightning.models.protocol import ComparisonProtocol, has_protocol

    if not Path(checkpoint).is_dir() or not has_protocol(checkpoint):
        return []
    protocol = ComparisonProtocol.load(checkpoint)
    trained = protocol.pad_to_square
    own_mean = protocol.image_preprocessing.get("pad_colour", "image_mean") == "image_mean"  # an older export
    colour = ["--data.pad_colour", "image_mean"] if own_mean else []
    given = [a for a in rest if a.startswith(PAD_OPTION)]
    if given:
        print(f"evaluate: {' '.join(given)} given; {checkpoint} was trained with pad_to_square={trained}",
              file=sys.stderr)
        return colour
    print(f"evaluate: image preprocessing from {checkpoint}/compare2score.json: pad_to_square={trained}",
          file=sys.stderr)
    return [PAD_OPTION, str(trained).lower(), *colour]


def cache_options(ns: Namespace, rest: list[str]) -> list[str]:
    """``--evaluator.cache_dir DIR``: on by default here (off in ``fit``), unless ``rest`` sets it."""
    from c2s_lightning.cache.store import default_cache_dir

    folder = ns.cache_dir or default_cache_dir()
    if ns.no_cache or folder is None or any(a.startswith(CACHE_OPTION) for a in rest):
        return []
    return [CACHE_OPTION, str(folder)]


def dtype_options(parser: ToolParser, dtype: str, rest: list[str]) -> list[str]:
    """``--trainer.precision`` for ``--dtype`` (``auto`` resolved as ``score`` does), unless ``rest`` gives one."""
    from c2s_lightning.commands.score import resolve_dtype

    if any(a.split("=", 1)[0] == PRECISION_OPTION for a in rest):
        if dtype != "auto":
            parser.error(f"--dtype {dtype} and {PRECISION_OPTION} both given: give one")
        return []
    on_cpu = "--trainer.accelerator=cpu" in rest or ("--trainer.accelerator", "cpu") in zip(rest, rest[1:])
    return [PRECISION_OPTION, PRECISIONS[resolve_dtype(dtype, "cpu" if on_cpu else None, "evaluate")]]


def _ddp_options(devices: int | None, num_nodes: int | None) -> list[str]:
    """The trainer options of ``--devices``/``--num-nodes``: several processes run as ``ddp``."""
    options = [] if devices is None else ["--trainer.devices", str(devices)]
    options += [] if num_nodes is None else ["--trainer.num_nodes", str(num_nodes)]
    return options + (["--trainer.strategy", "ddp"] if (devices or 1) * (num_nodes or 1) > 1 else [])


def _parser() -> ToolParser:
    p = tool_parser("evaluate", __doc__, config=False)  # --config is LightningCLI's (the experiment's)
    p.epilog = "Other options go to `validate` (see `python -m c2s_lightning validate --help`)."
    p.add_argument("--checkpoint", required=True,
                   help="exported model folder (merged or adapter), or a Lightning .ckpt of the same config")
    p.add_argument("--test", action="store_true",
                   help="run the test loop instead of validate (metric keys follow --evaluator.eval_part either way)")
    p.add_argument("--dtype", default="auto", choices=["auto", *PRECISIONS],
                   help=f"weights' dtype, as {PRECISION_OPTION}; auto: bfloat16 on a CUDA GPU with bf16, else float32")
    add_cache_arguments(p)
    p.add_argument("--devices", type=int, help="processes per node: --trainer.devices N --trainer.strategy ddp")
    p.add_argument("--num-nodes", type=int, help="nodes: --trainer.num_nodes N (with ddp)")
    return p


def split_own(parser: ToolParser, args: list[str]) -> tuple[list[str], list[str]]:
    """``args`` as evaluate's own options (with their values) and the rest, for LightningCLI; own
    options match by exact name, so ``--checkpoint.save_last`` or ``--trainer.devices`` stay in the rest."""
    takes_value = {o: a.nargs != 0 for a in parser._actions for o in a.option_strings}  # noqa: SLF001
    own: list[str] = []
    rest: list[str] = []
    tokens = iter(args)
    for token in tokens:
        name = token.split("=", 1)[0]
        (own if name in takes_value else rest).append(token)
        if takes_value.get(name) and "=" not in token:
            own.extend(itertools.islice(tokens, 1))  # its value
    return own, rest


def _check_checkpoint_given(parser: ToolParser, own: list[str], rest: list[str]) -> None:
    """A missing ``--checkpoint`` whose mistyped form went to the rest is named with a suggestion."""
    given = {a.split("=", 1)[0] for a in own}
    if "--checkpoint" in given or given & {"-h", "--help"}:
        return
    for token in rest:
        hint = suggestion(token.split("=", 1)[0], ["--checkpoint"]) if token.startswith("--") else ""
        if hint:
            parser.error(f"the following arguments are required: --checkpoint ({token} given{hint})")


def main(args: list[str]):
    parser = _parser()
    own, rest = split_own(parser, args)
    _check_checkpoint_given(parser, own, rest)
    ns = parse_tool(parser, own)
    from c2s_lightning.training.lightning_cli import run_lightning_cli

    command = ["test" if ns.test else "validate", *rest, *cache_options(ns, rest),
               *dtype_options(parser, ns.dtype, rest), *_ddp_options(ns.devices, ns.num_nodes)]
    evaluate_options = tuple(long_options(parser))  # a mistyped one reaches LightningCLI: suggested there
    if str(ns.checkpoint).endswith(".ckpt"):
        return run_lightning_cli([*command, "--ckpt_path", ns.checkpoint], evaluate_options)
    with resources.as_file(PRESET) as preset:
        command += ["--config", str(preset), "--model.model", ns.checkpoint, *protocol_options(ns.checkpoint, rest)]
        return run_lightning_cli(command, evaluate_options)
