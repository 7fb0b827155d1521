"""Command-line entry: LightningCLI for fit/validate/test/predict, jsonargparse tools for the rest.

``main(args)`` runs in-process, so tests call it without paying for a subprocess.
"""

from __future__ import annotations

import importlib
import os
import sys

TOOLS = {
    "data": "c2s_lightning.commands.data",
    "score": "c2s_lightning.commands.score",
    "anchors": "c2s_lightning.commands.anchor_bank",
    "evaluate": "c2s_lightning.commands.evaluate",
    "sweep": "c2s_lightning.commands.sweep",
    "report": "c2s_lightning.commands.report",
    "export": "c2s_lightning.commands.export_checkpoint",
    "cache": "c2s_lightning.commands.comparison_cache_cmd",
}
LIGHTNING = ("fit", "validate", "test", "predict")

USAGE = """usage: python -m c2s_lightning COMMAND ...

Training and evaluation (LightningCLI; `COMMAND --help` lists every option):
  fit        train:     python -m c2s_lightning fit --config experiments/quickstart.yaml
  validate   run the validation loop (and the evaluation callback) on a checkpoint
  test       run the test loop
  predict    run the predict loop

Tools (`COMMAND --help` for options):
  data       data synth --out DIR | data inspect NAME ROOT
  export     write a Lightning checkpoint as a Hugging Face folder (merged LoRA or adapter)
  anchors    anchors build: select anchors and compute their probability matrix with an export
  score      score images/folders with a model (compare2score: the authors' release) or an export -> CSV
  evaluate   soft-comparison evaluation of a checkpoint without training (validate + evaluator)
  sweep      run a W&B sweep file offline on this machine (grid/random, --dry-run, resumable);
             the paper's 10 splits: sweep sweeps/paper_splits.yaml
  report     paper-layout markdown tables and plots from finished runs (medians over splits)
  cache      cache stats | cache clear: the persistent comparison cache (level logits of pairs
             already compared) that evaluate, score, anchors build and sweeps share
Every tool takes --config FILE (YAML of its options) and --print_config.
Errors are one line; --debug (or C2S_DEBUG=1) shows the traceback.
"""


def main(args: list[str] | None = None):
    """Run a command (``args``: default ``sys.argv[1:]``). A user error, or a command that stops with a
    message (``SystemExit("...")``), ends in one line and SystemExit(2) unless debugging; Ctrl-C in 130."""
    args = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in args or os.environ.get("C2S_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    try:
        result = _dispatch(args) if debug else _reporting(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return result
    except BrokenPipeError:
        # the reader went away (``fit --help | head``): what it wanted it has; end as the
        # shell's tools do on SIGPIPE (status 128 + 13), with no traceback and no second error
        # from the interpreter flushing stdout again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(141) from None


def _reporting(args: list[str]):
    """``_dispatch``, with a user error as one line and exit status 2."""
    from c2s_lightning.infra.user_errors import is_user_error, one_line

    try:
        return _dispatch(args)
    except SystemExit as stop:
        if not isinstance(stop.code, str):  # a status (argparse's 2, a sweep's 1): already reported
            raise
        # a command that stops with a message stops on a mistake of its caller's: one line, status 2
        print(f"error: {stop.code.strip().removeprefix('error: ')}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as error:
        if not is_user_error(error):
            raise
        print(f"error: {one_line(error)} (--debug shows the traceback)", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def _dispatch(args: list[str]):
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return None
    if args[0] in TOOLS:
        return importlib.import_module(TOOLS[args[0]]).main(args[1:])
    if args[0] not in LIGHTNING:
        print(USAGE, file=sys.stderr)
        from c2s_lightning.infra.user_errors import suggestion

        raise SystemExit(f"unknown command {args[0]!r}{suggestion(args[0], [*LIGHTNING, *TOOLS])}")
    from c2s_lightning.infra.help_cache import is_bare_help, print_help

    if is_bare_help(args):  # Lightning takes seconds to import; its help text is kept once rendered
        return print_help(args, lambda: _lightning(args))
    return _lightning(args)


def _lightning(args: list[str]):
    from c2s_lightning.training.lightning_cli import run_lightning_cli

    return run_lightning_cli(args)
