"""``python -m c2s_lightning sweep FILE``: run a W&B sweep file offline, one run after another.

The files in ``sweeps/`` also work with ``wandb sweep FILE`` + ``wandb agent ID`` when a W&B server
is reachable; this runner needs none. It expands grid and random searches (``bayes`` needs the
server), substitutes W&B's command macros and runs each command as a subprocess:

- environment: ``WANDB_MODE=offline`` unless ``WANDB_MODE`` is already set (export
  ``WANDB_MODE=online`` to log to a server), ``WANDB_RUN_GROUP`` = the sweep's name, and
  ``WANDB_DIR`` = the run's folder unless set, so any program's offline run lands beside its log;
- the run's folder ``OUT/<sweep>-<index>-<hash>/`` holds ``output.log`` (stdout and stderr; named
  ``output.log.partial`` while the run runs) and ``params.json`` (what ``${args_json_file}`` names);
- when the command is this project's CLI (``-m c2s_lightning fit|validate|test|predict|evaluate``),
  ``--trainer.logger.init_args.save_dir FOLDER``, ``--trainer.logger.init_args.name NAME``,
  ``--trainer.default_root_dir FOLDER``, ``--checkpoint.dirpath FOLDER/checkpoints`` and
  ``--export.dirpath FOLDER/export`` are appended (each unless the command sets it already), so
  runs neither share logs nor overwrite each other's checkpoints or exported models.

The paper's 10-split protocol is one such sweep (``sweeps/paper_splits.yaml``, a grid over
``data.split_index``); ``report`` then prints the median per dataset over the splits.

Commands run in the current folder, as under ``wandb agent``: launch the shipped files from the
repository root (their commands name ``experiments/...`` relatively).

``OUT/sweep_state.json`` records each run (``sweep_state``): a rerun skips a finished run only when
its whole command is unchanged (arguments and the contents of the config files it names: editing a
config or the command reruns the runs), and retries failed and interrupted ones; an earlier
attempt's folder is moved to ``OUT/.superseded/`` first. Each child runs in a process group of its
own that ends with the runner (``sweep_processes``); a run still running from an earlier runner is
never started twice. Progress goes to stderr before each run (``sweep: run k of n, elapsed, ETA``,
counting the runs this invocation runs). The exit status is 1 when any run failed; a missing or bad
sweep file (e.g. a parameter with ``values: []``) ends it with one line and status 2.

The best run is named only when the sweep's ``metric`` is a validation one (``val/...``); for a
test metric (the shipped evaluation sweeps report ``test/mean/srcc``, as the paper does) a line
says why none is picked. ``report OUT`` marks the failed runs and leaves them out of its tables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from c2s_lightning.infra.arguments import parse_tool, tool_parser
from c2s_lightning.sweep.plan import load_sweep
from c2s_lightning.sweep.runner import PlannedRun, best_summary, plan_sweep, run_sweep, shell_line
from c2s_lightning.sweep.state import STATE_FILE


def _parser():
    parser = tool_parser("sweep", __doc__)
    parser.add_argument("file", type=Path, help="W&B sweep YAML (e.g. sweeps/beta.yaml)")
    parser.add_argument("--dry-run", action="store_true", help="print each planned command, run nothing")
    parser.add_argument("--count", type=int, help="number of runs (random: required unless run_cap is set; "
                                                  "grid: the first N combinations)")
    parser.add_argument("--out", type=Path, help="sweep folder for run folders and the state file "
                                                 "(default outputs/sweeps/<file stem>)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random search's draws")
    parser.add_argument("--prefetch", action="store_true",
                        help="evaluation-only sweeps: run the largest evaluator.beta first, so that one batched pass "
                             "computes the nested anchor sets' comparisons and later runs read them from the cache")
    parser.add_argument("--cache-dir", type=Path, help="cache root the runs share (sets C2S_CACHE_DIR; comparisons "
                        "in DIR/comparisons; default $XDG_CACHE_HOME/c2s_lightning or ~/.cache/c2s_lightning)")
    return parser


def with_cache_options(runs: list[PlannedRun], ns: Any) -> list[PlannedRun]:
    """The runs in ``--prefetch`` order; ``--cache-dir`` exported for every child run."""
    if ns.cache_dir is not None:
        os.environ["C2S_CACHE_DIR"] = str(ns.cache_dir.resolve())  # the root of evaluate's default caches
    if not ns.prefetch:
        return runs
    from c2s_lightning.sweep.prefetch import check_evaluation_only, prefetch_order

    check_evaluation_only(runs)  # a ValueError: one line from cli.main
    return prefetch_order(runs)


def main(args: list[str]) -> None:
    ns = parse_tool(_parser(), args)
    out = ns.out or Path("outputs") / "sweeps" / ns.file.stem
    # a missing or bad sweep file, a corrupt state, a busy folder: user errors, one line from cli.main
    runs = with_cache_options(plan_sweep(ns.file, out, ns.count, ns.seed), ns)
    metric = load_sweep(ns.file).get("metric")
    if ns.dry_run:
        for run in runs:
            print(shell_line(run.command))
        return
    counts = run_sweep(runs, out, group=ns.file.stem)
    print(f"sweep {ns.file.stem}: {len(runs)} runs: {counts['finished']} finished, {counts['failed']} failed, "
          f"{counts['skipped']} skipped (finished before); state in {out / STATE_FILE}")
    if metric and "name" in metric:
        print(best_summary(runs, out, metric))
    if counts["failed"]:
        raise SystemExit(1)
