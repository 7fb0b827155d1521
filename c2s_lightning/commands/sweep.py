"""``python -m c2s_lightning sweep FILE``: run a W&B sweep file offline, one run after another.

No W&B server needed (``wandb sweep FILE`` + ``wandb agent ID`` run the same files): grid and
random searches, W&B's command macros, each run from the current folder with ``WANDB_MODE=offline``
unless set, in ``OUT/<sweep>-<index>-<hash>/``. ``OUT/sweep_state.json`` makes a rerun skip the
finished runs whose whole command (config contents included) is unchanged and retry the others.
Progress, the best run, exit statuses and ``report OUT``: docs/reporting.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from c2s_lightning.infra.arguments import parse_tool, tool_parser
from c2s_lightning.sweep.cache_first import cache_first_order, check_evaluation_only
from c2s_lightning.sweep.plan import load_sweep
from c2s_lightning.sweep.runner import best_summary, plan_sweep, run_sweep, shell_line
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
    parser.add_argument("--cache-first", "--prefetch", action="store_true",
                        help="evaluation-only sweeps: the largest evaluator.beta first, its one batched pass computing "
                             "the nested anchor sets' comparisons; later runs read them from the comparison cache "
                             "(--prefetch: its old name)")
    parser.add_argument("--cache-dir", type=Path, help="cache root the runs share (sets C2S_CACHE_DIR; comparisons "
                        "in DIR/comparisons; default $XDG_CACHE_HOME/c2s_lightning or ~/.cache/c2s_lightning)")
    return parser


def main(args: list[str]) -> None:
    ns = parse_tool(_parser(), args)
    out = ns.out or Path("outputs") / "sweeps" / ns.file.stem
    # a missing or bad sweep file, a corrupt state, a busy folder, a --cache-first sweep that trains:
    # user errors, one line from cli.main
    runs = plan_sweep(ns.file, out, ns.count, ns.seed)
    if ns.cache_dir is not None:
        os.environ["C2S_CACHE_DIR"] = str(ns.cache_dir.resolve())  # the root of every child run's caches
    if ns.cache_first:
        check_evaluation_only(runs)
        runs = cache_first_order(runs)
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
