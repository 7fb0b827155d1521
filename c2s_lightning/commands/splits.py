"""``python -m c2s_lightning splits``: one experiment over the paper's 10 splits, medians per dataset.

The experiment's configs are resolved once (``fit --print_config``); each split gets a copy with
every dataset's ``split_index`` set and its own output folder, and runs as its own process.
Finished splits are skipped on a rerun; ``--aggregate-only`` just rebuilds the summary.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

METRICS = ("srcc", "plcc")


def parse_splits(text: str) -> list[int]:
    """``"1-10"``, ``"1,3,5"`` or ``"2"`` -> split indices (1..10)."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    if not out or any(not 1 <= k <= 10 for k in out):
        raise argparse.ArgumentTypeError(f"splits must lie in 1..10, got {text!r}")
    return sorted(set(out))


def resolve_config(config_args: list[str]) -> dict:
    """The experiment's resolved config, as ``fit --print_config`` prints it."""
    from c2s_lightning.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
        main(["fit", *config_args, "--print_config"])
    return yaml.safe_load(buffer.getvalue())


def split_config(config: dict, k: int, folder: Path) -> dict:
    """A copy of ``config`` for split ``k`` writing everything under ``folder``."""
    config = yaml.safe_load(yaml.safe_dump(config))
    for spec in config["data"]["datasets"]:
        spec["split_index"] = k
    trainer = config["trainer"]
    trainer["default_root_dir"] = str(folder)
    if isinstance(trainer.get("logger"), dict):
        trainer["logger"].setdefault("init_args", {}).update(save_dir=str(folder), name=f"split{k}")
    config["checkpoint"]["dirpath"] = str(folder / "checkpoints")
    config["export"]["dirpath"] = str(folder / "export")
    return config


def run_split(config: dict, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    with open(folder / "output.log", "w") as log:
        code = subprocess.call([sys.executable, "-m", "c2s_lightning", "fit", "--config", str(folder / "config.yaml")],
                               stdout=log, stderr=subprocess.STDOUT)
    if code == 0:
        (folder / "DONE").touch()
    return code


def split_metrics(folder: Path, prefix: str) -> dict[str, dict[str, float]]:
    """``{dataset: {metric: value}}`` from the newest W&B run under ``folder``."""
    from c2s_lightning.reporting.runs import last_metrics
    from c2s_lightning.wandb_runs import find_runs, read_run

    runs = find_runs(folder)
    if not runs:
        return {}
    out: dict[str, dict[str, float]] = {}
    for key, value in last_metrics(read_run(runs[-1])).items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == prefix and parts[2] in METRICS and parts[1] != "mean":
            out.setdefault(parts[1], {})[parts[2]] = value
    return out


def summary_table(per_split: dict[int, dict[str, dict[str, float]]]) -> str:
    """Markdown: per dataset and metric the median over splits and its range."""
    datasets = sorted({d for m in per_split.values() for d in m})
    lines = ["| dataset | splits | " + " | ".join(f"{m} median [min, max]" for m in METRICS) + " |",
             "|---|---|" + "---|" * len(METRICS)]
    for d in datasets:
        cells = []
        for m in METRICS:
            values = [per_split[k][d][m] for k in per_split if m in per_split[k].get(d, {})]
            cells.append(f"{statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]" if values else "-")
        n = sum(1 for k in per_split if d in per_split[k])
        lines.append(f"| {d} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m c2s_lightning splits", description=__doc__,
        usage="python -m c2s_lightning splits [--splits 1-10] [--out DIR] [--dry-run] -- --config A.yaml [...]")
    p.add_argument("--splits", type=parse_splits, default=list(range(1, 11)), help="e.g. 1-10, 1,2,3 (default 1-10)")
    p.add_argument("--out", type=Path, default=Path("outputs/splits"), help="one sub-folder per split")
    p.add_argument("--metric-prefix", default="test",
                   help="split part the metrics were computed on, the evaluator's eval_part (default test)")
    p.add_argument("--dry-run", action="store_true", help="write the per-split configs and print the commands")
    p.add_argument("--aggregate-only", action="store_true", help="only rebuild the summary of finished splits")
    p.add_argument("config_args", nargs=argparse.REMAINDER, help="after --: the fit arguments (--config ...)")
    return p


def main(args: list[str]) -> int:
    ns = _parser().parse_args(args)
    config_args = ns.config_args[1:] if ns.config_args[:1] == ["--"] else ns.config_args
    failed = []
    if not ns.aggregate_only:
        if not config_args:
            raise SystemExit("give the experiment after --, e.g. -- --config experiments/quickstart.yaml")
        config = resolve_config(config_args)
        for k in ns.splits:
            folder = ns.out / f"split{k:02d}"
            if (folder / "DONE").exists():
                print(f"split {k}: finished before, skipped")
                continue
            cfg = split_config(config, k, folder)
            if ns.dry_run:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
                print(f"{sys.executable} -m c2s_lightning fit --config {folder / 'config.yaml'}")
                continue
            print(f"split {k}: running (log: {folder / 'output.log'})", flush=True)
            if run_split(cfg, folder) != 0:
                failed.append(k)
                print(f"split {k}: FAILED, see {folder / 'output.log'}")
    if ns.dry_run:
        return 0
    per_split = {k: m for k in ns.splits if (m := split_metrics(ns.out / f"split{k:02d}", ns.metric_prefix))}
    table = summary_table(per_split)
    ns.out.mkdir(parents=True, exist_ok=True)
    (ns.out / "summary.md").write_text(f"# Median over splits {sorted(per_split)}\n\n{table}\n")
    print(table)
    print(f"summary -> {ns.out / 'summary.md'}" + (f"; failed splits: {failed}" if failed else ""))
    return 1 if failed else 0
