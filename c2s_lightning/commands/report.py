"""``python -m c2s_lightning report RUNS...``: a markdown report of runs beside the paper's numbers.

RUNS are run folders, folders searched for them (a sweep's ``--out``), or ``entity/project/run_id``
online runs. ``OUT/report.md`` lists the runs that did not finish and tables the others in the
paper's layout with the paper's matching rows, medians over splits (``--aggregate``), the best run
on ``val/mean/srcc`` and Figure 4 (SRCC and time against beta). What each part holds:
docs/reporting.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from c2s_lightning.infra.atomic_files import write_text
from c2s_lightning.infra.arguments import parse_tool, tool_parser
from c2s_lightning.reporting.paper_numbers import PAPER_BETA_FINDING, PAPER_SECONDS_PER_IMAGE
from c2s_lightning.reporting.aggregate import aggregate_key, best_line, median_table
from c2s_lightning.reporting.figures import beta_plots, copy_scatters
from c2s_lightning.reporting.runs import FINISHED, ReportRun, collect
from c2s_lightning.reporting.tables import CACHED_NOTE, cache_counts, datasets_of, results_table, summary_table


def render(runs: list[ReportRun], varied: list[str], prefix: str, out: Path, title: str,
           medians: tuple[str, str] | None = None) -> str:
    """The report's markdown (figures are written under ``out`` on the way); runs not finished are
    listed and left out of the rest; ``medians``: the key aggregated over and its table, or None."""
    finished = [r for r in runs if r.status == FINISHED]
    parts = [f"# {title}", "",
             f"{len(runs)} run(s), {len(finished)} finished; `{prefix}/` metrics, last logged values. Rows are "
             + (f"labelled by the values the runs vary ({', '.join(f'`{k}`' for k in varied)})." if varied
                else "labelled by run name (no config value differs between them)."),
             "Under a run, *paper* is the published row measured with the same evaluation settings "
             "(median over 10 splits, full mPLUG-Owl2 model): a bar to compare with, not the same setup."]
    if len(finished) < len(runs):
        parts += ["", "## Runs that did not finish (left out of every table, median and plot)", ""]
        parts += [f"- **{r.label}: {r.status}**: `{r.source}`" for r in runs if r.status != FINISHED]
    if medians is not None:
        parts += ["", f"## Median over `{medians[0]}` [min, max]", "", medians[1]]
    parts += ["", "## Results (SRCC / PLCC)", "", results_table(finished, prefix, varied), "",
              "## Mean over datasets", "", summary_table(finished, prefix), ""]
    if any((counts := cache_counts(r, prefix)) and counts[1] for r in finished):
        parts += [CACHED_NOTE + ".", ""]
    parts += [best_line(finished), "", f"Paper's scoring cost for context: {PAPER_SECONDS_PER_IMAGE}."]
    figures, cached = beta_plots(finished, varied, prefix, out)
    if figures:
        parts += ["", "## SRCC and time against beta (paper Figure 4)", "", f"Paper: {PAPER_BETA_FINDING}."]
        if cached:
            parts += ["", f"Not in the time plot (comparisons reused from the cache): {'; '.join(cached)}."]
        parts += [""] + [f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in figures]
    scatters = copy_scatters(finished, prefix, out)
    if scatters:
        parts += ["", "## Predictions against MOS", ""]
        for label, paths in scatters.items():
            parts += [f"**{label}**", ""] + [f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in paths] + [""]
    parts += ["", "## Runs", ""] + [f"- {r.label} ({r.status}): `{r.source}`" for r in runs]
    return "\n".join(parts).rstrip() + "\n"


def _parser():
    parser = tool_parser("report", __doc__)
    parser.add_argument("runs", nargs="+", help="run folders, folders to search (a sweep's), or entity/project/run_id")
    parser.add_argument("--out", type=Path, default=Path("outputs/report"), help="report folder")
    parser.add_argument("--metric-prefix", choices=("val", "test"), default="test",
                        help="which logged metrics to report: the split part they were computed on, "
                             "the evaluator's eval_part")
    parser.add_argument("--title", default="Compare2Score report", help="heading of report.md")
    parser.add_argument("--aggregate", metavar="KEY",
                        help="median [min, max] per dataset over runs that differ in KEY (a dotted config key "
                             "or sweep parameter, or its last part); default: the split index when runs vary it")
    return parser


def main(args: list[str]) -> None:
    ns = parse_tool(_parser(), args)
    prefix = ns.metric_prefix
    runs, varied = collect(ns.runs)  # errors (no such folder, no runs, ...): one line from cli.main
    finished = [r for r in runs if r.status == FINISHED]
    if not datasets_of(finished, prefix):
        print(f"report: warning: no {prefix}/<dataset>/srcc metric in the {len(finished)} finished run(s)",
              file=sys.stderr)
    key = aggregate_key(runs, varied, ns.aggregate)
    medians = (key, median_table(finished, varied, key, prefix)) if key else None
    ns.out.mkdir(parents=True, exist_ok=True)
    path = write_text(ns.out / "report.md", render(runs, varied, prefix, ns.out, ns.title, medians))
    if medians:
        print(medians[1])
    print(f"wrote {path}")
