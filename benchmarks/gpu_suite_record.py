"""Adds one step's figures to the GPU suite's JSON file and checks them (used by benchmarks/gpu_suite.sh).

    python benchmarks/gpu_suite_record.py SUITE.json STEP --rc 0 --seconds 12.3 --log step.log \
        [--parse scoring|json|ddp_eval] [--json step.json] [--runs ONE.json MANY.json] [--dry-run]
    python benchmarks/gpu_suite_record.py SUITE.json --summary     # exit code 1 if a step FAILED

The step's entry holds its exit code, wall time, the figures read from its output and its status:
``ok``, ``skipped`` (with a note), or ``FAILED`` with the ``problems`` found: a non-zero exit code,
a missing figure, or a wrong one (the checks of ``CHECKS``: scores off the plain path beyond the
dtype's tolerance, a NaN metric, 1 and N processes that disagree, a loss that is not finite). A
FAILED step keeps the last lines of its log, so the reason travels with the file. Non-finite
numbers are written as the strings "NaN"/"Infinity" (JSON has none). The file is rewritten
atomically after every step, so a suite killed half-way still leaves what it measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from pathlib import Path

NUMBER = r"[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf)"
# Largest soft-probability difference allowed between our scoring path and the release's, by dtype.
# p = sum_k w_k softmax(z)_k moves by at most half the largest logit change (its gradient is
# s_j (w_j - p), and sum_j s_j |w_j - p| <= 1/2 for weights in [0, 1]). bf16 keeps 8 significant
# bits: two computation orders of logits of magnitude ~4 differ by a few units of 2^-8 * 4 ~ 0.016,
# so p may differ by ~0.01 and no more. float32's 24 bits leave 1e-4 a wide margin.
TOLERANCE = {"torch.bfloat16": 1e-2, "torch.float16": 1e-2, "torch.float32": 1e-4}
DDP_TOLERANCE = 1e-6  # 1 vs N processes: the same scores gathered, the same metric up to float32 rounding


def parse_scoring(log: str) -> dict:
    """The last lines of scoring.py: ms/image and peak memory of both paths, speedup, difference."""
    out: dict = {}
    for key, label in (("release", r"release \(1 pair per forward\)"), ("ours", r"ours \(batch \d+ pairs\)")):
        if m := re.search(rf"{label}:\s+({NUMBER}) ms/image, peak \+\s*({NUMBER}) MiB", log):
            out[key] = {"ms_per_image": float(m[1]), "peak_mib": float(m[2])}
    if m := re.search(rf"speedup=({NUMBER}) max_abs_diff=({NUMBER})", log):
        out |= {"speedup": float(m[1]), "max_abs_diff": float(m[2])}
    if m := re.search(r"^(\S.*), (\S+), (torch\.\w+), (\d+) threads;", log, re.MULTILINE):
        out |= {"model": m[1], "device": m[2], "dtype": m[3]}
    return out


def parse_ddp_eval(files: list[str]) -> dict:
    """The metrics of the 1-process and the N-process runs (gpu_ddp_eval.py's files), and their difference."""
    one, many = (json.loads(Path(f).read_text())["metrics"] for f in (files[0], files[-1]))
    diffs = [abs(one[k] - many[k]) for k in one
             if k in many and all(isinstance(v, float) and math.isfinite(v) for v in (one[k], many[k]))]
    return {"one_process": one, "n_processes": many, "max_abs_diff": max(diffs) if diffs else None,
            "equal_1e-6": bool(diffs) and len(diffs) == len(one) == len(many) and max(diffs) <= DDP_TOLERANCE}


# -- checks: each returns the problems of a step's figures (none: ok) ----------------------------------
def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _need(figures: dict, path: str, positive: bool = False) -> list[str]:
    """``path`` (dotted) must be a finite number (and > 0 when ``positive``)."""
    value = figures
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if not _finite(value):
        return [f"{path} is {'missing' if value is None else value!r}, not a finite number"]
    return [f"{path} is {value}, not > 0"] if positive and value <= 0 else []


OPTIONAL = {"wandb"}  # the suite logs no W&B


def check_env(figures: dict, dry_run: bool) -> list[str]:
    optional = OPTIONAL | ({"deepspeed"} if dry_run else set())  # DeepSpeed steps need CUDA
    problems = [f"{name} is not installed for {figures.get('python')}"
                for name, found in (figures.get("packages") or {}).items() if found is None and name not in optional]
    if not dry_run and not (figures.get("cuda") and figures.get("gpus")):
        problems.append(f"no CUDA GPU visible to {figures.get('python')} (torch {figures.get('torch')})")
    return problems


def check_zero_steps(figures: dict, dry_run: bool) -> list[str]:
    rows = {row.get("strategy"): row for row in figures.get("strategies", [])}
    problems = [f"{name}: no row" for name in figures.get("expected", []) if name not in rows]
    for name, row in rows.items():
        if "error" in row:
            problems.append(f"{name}: {row['error']}")
            continue
        problems += [f"{name}: {p}" for key in ("loss", "s_per_step", "params_m")
                     for p in _need(row, key, positive=key != "loss")]
        if not dry_run:
            problems += [f"{name}: {p}" for p in _need(row, "peak_gib", positive=True)]
    return problems or ([] if rows else ["no strategy rows"])


def check_scoring(figures: dict, dry_run: bool) -> list[str]:
    problems = _need(figures, "max_abs_diff") + _need(figures, "speedup", positive=True)
    problems += [p for side in ("release", "ours") for p in _need(figures, f"{side}.ms_per_image", positive=True)]
    tolerance = TOLERANCE.get(figures.get("dtype"))
    if tolerance is None:
        problems.append(f"dtype {figures.get('dtype')!r} has no tolerance")
    elif _finite(figures.get("max_abs_diff")) and figures["max_abs_diff"] > tolerance:
        problems.append(f"our scores differ from the release's path by {figures['max_abs_diff']}, "
                        f"beyond {figures['dtype']}'s tolerance of {tolerance}")
    return problems


def check_mplug_owl2(figures: dict, dry_run: bool) -> list[str]:
    return _need(figures, "lora_step.loss") + _need(figures, "forward.median_s", positive=True)


def check_score_loading(figures: dict, dry_run: bool) -> list[str]:
    runs = figures.get("runs") or {}
    problems = [] if runs else ["no runs"]
    for label, run in runs.items():
        problems += [f"{label}: {p}" for p in _need(run, "images_per_s", positive=True) + _need(run, "wait_share")]
        if _finite(run.get("wait_share")) and not 0 <= run["wait_share"] <= 1:
            problems.append(f"{label}: wait_share {run['wait_share']} is outside [0, 1]")
    return problems + _need(figures, "ratio", positive=True)


def check_ddp_eval(figures: dict, dry_run: bool) -> list[str]:
    one, many = figures.get("one_process") or {}, figures.get("n_processes") or {}
    problems = [] if one and many else ["a run reported no SRCC/PLCC"]
    problems += [f"{label} {key} is {value!r}" for label, metrics in (("1 process:", one), ("N processes:", many))
                 for key, value in metrics.items() if not _finite(value)]
    if set(one) != set(many):
        problems.append(f"the runs report different metrics: {sorted(set(one) ^ set(many))}")
    if not figures.get("equal_1e-6") and not problems:
        problems.append(f"1 and N processes differ by {figures.get('max_abs_diff')} (> {DDP_TOLERANCE})")
    return problems


CHECKS = {"env": check_env, "zero_steps": check_zero_steps, "scoring_7b": check_scoring,
          "mplug_owl2": check_mplug_owl2, "score_loading_7b": check_score_loading, "ddp_eval": check_ddp_eval}


def figures(ns: argparse.Namespace, log: str) -> dict:
    if ns.parse == "scoring":
        return parse_scoring(log)
    if ns.parse == "ddp_eval":
        return parse_ddp_eval(ns.runs)
    if ns.parse == "json" and ns.json and Path(ns.json).is_file():
        return json.loads(Path(ns.json).read_text())
    return {}


def _plain(value):
    """``value`` with non-finite floats as strings, for standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def entry_for(ns: argparse.Namespace, log: str) -> dict:
    if ns.rc is None:
        return {"status": "skipped", "rc": None, "seconds": None, **({"note": ns.note} if ns.note else {})}
    entry: dict = {"status": "ok", "rc": ns.rc, "seconds": ns.seconds, **({"note": ns.note} if ns.note else {})}
    problems = [] if ns.rc == 0 else [f"exit code {ns.rc}"]
    try:
        entry["figures"] = figures(ns, log)
        problems += CHECKS[ns.step](entry["figures"], ns.dry_run) if ns.step in CHECKS else []
    except Exception as err:  # a parser failure must not lose the step's exit code and log
        problems.append(f"figures unreadable: {type(err).__name__}: {err}")
    if problems:
        entry |= {"status": "FAILED", "problems": problems, "log_tail": log.splitlines()[-40:]}
    return entry


def write_suite(path: Path, suite: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_plain(suite), indent=2) + "\n")
    os.replace(tmp, path)


def summary(path: Path) -> int:
    """One line per step; 1 if any FAILED."""
    steps = json.loads(path.read_text()).get("steps", {}) if path.is_file() else {}
    for name, entry in steps.items():
        why = "; ".join(entry.get("problems", [])) or entry.get("note", "")
        print(f"[gpu_suite] {name:17} {entry['status']:8} {why}")
    return 1 if any(entry["status"] == "FAILED" for entry in steps.values()) else 0


def main(argv: list[str] | None = None) -> dict | int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", type=Path, help="the suite's JSON file (created if missing)")
    parser.add_argument("step", nargs="?", help="the step's key in the file")
    parser.add_argument("--summary", action="store_true", help="print every step's status; exit 1 if one FAILED")
    parser.add_argument("--rc", type=int, default=None, help="exit code; omit for a skipped step")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--log", type=Path, help="the step's stdout+stderr")
    parser.add_argument("--parse", choices=("scoring", "json", "ddp_eval"))
    parser.add_argument("--json", help="a JSON file the step wrote (--parse json)")
    parser.add_argument("--runs", nargs="*", default=[], help="gpu_ddp_eval.py's files, 1 then N processes")
    parser.add_argument("--note", help="why a step was skipped, or what it ran")
    parser.add_argument("--dry-run", action="store_true", help="a CPU dry run: no CUDA figures expected")
    ns = parser.parse_args(argv)
    if ns.summary:
        return summary(ns.suite)
    if not ns.step:
        parser.error("a STEP is needed (or --summary)")
    log = ns.log.read_text(errors="replace") if ns.log and ns.log.is_file() else ""
    entry = entry_for(ns, log)
    suite = json.loads(ns.suite.read_text()) if ns.suite.is_file() else {}
    suite.setdefault("steps", {})[ns.step] = entry
    write_suite(ns.suite, suite)
    print(f"[gpu_suite] {ns.step}: {entry['status']}" + (f" in {ns.seconds:.0f} s" if ns.seconds is not None else "")
          + "".join(f"\n[gpu_suite]   {p}" for p in entry.get("problems", [])))
    return entry


if __name__ == "__main__":
    result = main()
    raise SystemExit(result if isinstance(result, int) else 0)
