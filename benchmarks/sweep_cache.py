"""Sweeps with and without the comparison cache: comparisons computed, wall time, same metrics.

A short quickstart-like fit of the tiny model on a synthetic KADID-layout dataset gives an
export; then the beta sweep (1..5, min-variance anchors) and the anchor-rule sweep
(min_variance, max_variance, random; beta 1) run as ``evaluate`` commands in this process,
first each with ``--no-cache``, then all sharing one fresh cache folder, in the sweep files'
order (no prefetch ordering, so the figure is what plain sweeps get).

Without the cache a run computes its anchor block (``n x n`` anchor pairs, diagonal included,
as ``anchor_rows`` asks it) and one row of ``n`` per evaluated image; with it, the evaluator's
``<part>/cache/computed`` counts what was asked of the model. Metrics are compared key by key
(``seconds_per_image`` is a wall time, not a result, and is left out). The last line is
``saved=<1 - computed_with/computed_without> max_abs_diff=<largest metric difference>``.

    PYTHONPATH=. .venv/bin/python benchmarks/sweep_cache.py --quick
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from c2s_lightning.cli import main as cli
from c2s_lightning.data.synth import write_synthetic_kadid

QUICKSTART = str(Path(__file__).resolve().parents[1] / "experiments" / "quickstart.yaml")
SWEEPS = [("beta", {"evaluator.beta": b}) for b in range(1, 6)] + [
    ("rule", {"evaluator.rule": r}) for r in ("min_variance", "max_variance", "random")]


def override(tmp: Path, data: Path, steps: int, images: int | None) -> str:
    cfg = {"trainer": {"default_root_dir": str(tmp / "run"), "max_steps": steps, "val_check_interval": steps,
                       "enable_progress_bar": False, "logger": False},
           "data": {"datasets": [{"name": "kadid10k", "root": str(data), "pairs": 256, "pairs_per_image": None,
                                  "split": "random", "synthesize": False, "synth_options": {},
                                  "split_options": {"test_refs": [f"I{k:02d}" for k in range(13, 33)]}}],
                    "num_workers": 0, "batch_size": 16, "val_pairs": 8},
           "evaluator": {"max_images": images, "before_training": False, "plots": False}}
    path = tmp / "override.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def evaluate(export: Path, config: str, params: dict, cache: list[str]) -> tuple[dict, int, int]:
    """One sweep run: its metrics (``dataset/metric``), comparisons computed, anchors used."""
    args = [a for key, value in params.items() for a in (f"--{key}", str(value))]
    run = cli(["evaluate", "--checkpoint", str(export), "--config", QUICKSTART, "--config", config, *args, *cache])
    evaluator = next(c for c in run.trainer.callbacks if type(c).__name__ == "SoftComparisonEvaluator")
    metrics = {f"{label}/{name}": value for label, row in evaluator.last_results.items()
               for name, value in row.items() if name != "seconds_per_image"}
    n = evaluator.alpha * evaluator.beta
    images = sum(len(rows) for rows in evaluator.last_predictions.values())
    logged = run.trainer.callback_metrics
    computed = next((int(v) for k, v in logged.items() if k.endswith("/cache/computed")), n * n + images * n)
    return metrics, computed, n


def sweep(export: Path, config: str, cache: list[str]) -> tuple[list[dict], int, float]:
    start, total, results = time.perf_counter(), 0, []
    for name, params in SWEEPS:
        metrics, computed, n = evaluate(export, config, params, cache)
        results.append(metrics)
        total += computed
        print(f"  {name:<5} {params}  anchors {n:>2}  computed {computed:>6}", flush=True)
    return results, total, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a 10-step fit and 100 test images (default: 40 steps, all)")
    ns = p.parse_args()
    steps, images = (10, 100) if ns.quick else (40, None)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        data = write_synthetic_kadid(tmp / "kadid", size=32, crops=4)
        config = override(tmp, data, steps, images)
        cli(["fit", "--config", QUICKSTART, "--config", config])
        export = next((tmp / "run" / "runs").glob("*/export"))
        print("without the cache:")
        plain, without, plain_s = sweep(export, config, ["--no-cache"])
        print("with one cache for the whole sweep:")
        cached, with_cache, cached_s = sweep(export, config, ["--cache-dir", str(tmp / "cache")])
    diff = max(abs(a[k] - b[k]) for a, b in zip(plain, cached) for k in a)
    print(f"comparisons computed: without {without:,} in {plain_s:.1f} s, with {with_cache:,} in {cached_s:.1f} s "
          f"({len(SWEEPS)} runs each)")
    print(f"saved={1 - with_cache / without:.4f} max_abs_diff={diff:.3g}")


if __name__ == "__main__":
    main()
