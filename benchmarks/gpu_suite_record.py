"""Adds one step's figures to the GPU suite's JSON file (used by benchmarks/gpu_suite.sh).

    python benchmarks/gpu_suite_record.py SUITE.json STEP --rc 0 --seconds 12.3 --log step.log \
        [--parse gpu_check|scoring|json|ddp_eval|env] [--json step.json] [--runs DIR1 DIR2]

The step's entry holds its exit code, wall time and the figures parsed from its output (a failed
step keeps the last lines of its log instead, so the reason travels with the file). The file is
rewritten atomically after every step, so a suite killed half-way still leaves what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

NUMBER = r"[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf)"


def _float(text: str) -> float | None:
    value = float(text)
    return None if value != value else value  # NaN (no CUDA memory figure on a CPU) -> null


def parse_gpu_check(log: str) -> dict:
    """The table printed by gpu_check.py: one row per strategy, baseline first."""
    lines = log.splitlines()
    header = next((k for k, line in enumerate(lines) if line.startswith("strategy") and "peak GiB" in line), None)
    if header is None:
        return {}
    row = re.compile(rf"^(?P<name>.+?)\s+(?P<params>{NUMBER})\s+(?P<peak>{NUMBER})\s+(?P<ratio>{NUMBER})"
                     rf"\s+(?P<step>{NUMBER})\s+(?P<loss>{NUMBER})$")
    rows = [m.groupdict() for line in lines[header + 1:] if (m := row.match(line.strip()))]
    return {"device": lines[header - 1].strip(),
            "strategies": [{"strategy": r["name"], "params_m": _float(r["params"]), "peak_gib": _float(r["peak"]),
                            "peak_ratio_to_baseline": _float(r["ratio"]), "s_per_step": _float(r["step"]),
                            "loss": _float(r["loss"])} for r in rows]}


def parse_scoring(log: str) -> dict:
    """The last lines of scoring.py: ms/image and peak memory of both paths, speedup, difference."""
    out: dict = {}
    for key, label in (("release", r"release \(1 pair per forward\)"), ("ours", r"ours \(batch \d+ pairs\)")):
        if m := re.search(rf"{label}:\s+({NUMBER}) ms/image, peak \+\s*({NUMBER}) MiB", log):
            out[key] = {"ms_per_image": _float(m[1]), "peak_mib": _float(m[2])}
    if m := re.search(rf"speedup=({NUMBER}) max_abs_diff=({NUMBER})", log):
        out |= {"speedup": _float(m[1]), "max_abs_diff": _float(m[2])}
    if m := re.search(r"^(\S.*), (\S+), (torch\.\w+), (\d+) threads;", log, re.MULTILINE):
        out |= {"model": m[1], "device": m[2], "dtype": m[3]}
    return out


def parse_ddp_eval(run_dirs: list[str]) -> dict:
    """``test/<dataset>/{srcc,plcc}`` of the 1-process and the N-process runs, and their difference."""
    from c2s_lightning.reporting.runs import find_runs, read_metrics

    found = []
    for folder in run_dirs:
        runs = list(find_runs(Path(folder)))
        summary = read_metrics(runs[-1]) if runs else {}
        found.append({k: v for k, v in summary.items()
                      if isinstance(v, (int, float)) and k.startswith("test/") and k.endswith(("/srcc", "/plcc"))})
    one, many = found[0], found[-1]
    diffs = [abs(one[k] - many[k]) for k in one if k in many]
    return {"one_process": one, "n_processes": many,
            "max_abs_diff": max(diffs) if diffs else None, "equal_1e-6": bool(diffs) and max(diffs) <= 1e-6}


def figures(ns: argparse.Namespace, log: str) -> dict:
    if ns.parse == "gpu_check":
        return parse_gpu_check(log)
    if ns.parse == "scoring":
        return parse_scoring(log)
    if ns.parse == "ddp_eval":
        return parse_ddp_eval(ns.runs)
    if ns.parse in ("json", "env") and ns.json and Path(ns.json).is_file():
        return json.loads(Path(ns.json).read_text())
    return {}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", type=Path, help="the suite's JSON file (created if missing)")
    parser.add_argument("step", help="the step's key in the file")
    parser.add_argument("--rc", type=int, default=None, help="exit code; omit for a skipped step")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--log", type=Path, help="the step's stdout+stderr")
    parser.add_argument("--parse", choices=("gpu_check", "scoring", "json", "ddp_eval", "env"))
    parser.add_argument("--json", help="a JSON file the step wrote (--parse json/env)")
    parser.add_argument("--runs", nargs="*", default=[], help="run folders (--parse ddp_eval)")
    parser.add_argument("--note", help="why a step was skipped, or what it ran")
    ns = parser.parse_args(argv)
    log = ns.log.read_text(errors="replace") if ns.log and ns.log.is_file() else ""
    entry: dict = {"status": "skipped" if ns.rc is None else ("ok" if ns.rc == 0 else "failed"),
                   "rc": ns.rc, "seconds": ns.seconds}
    if ns.note:
        entry["note"] = ns.note
    if ns.rc is not None:
        try:
            entry["figures"] = figures(ns, log)
        except Exception as err:  # a parser failure must not lose the step's exit code and log
            entry["parse_error"] = f"{type(err).__name__}: {err}"
        if ns.rc != 0 or not entry.get("figures"):
            entry["log_tail"] = log.splitlines()[-40:]
    suite = json.loads(ns.suite.read_text()) if ns.suite.is_file() else {}
    suite.setdefault("steps", {})[ns.step] = entry
    tmp = ns.suite.with_name(ns.suite.name + ".tmp")
    tmp.write_text(json.dumps(suite, indent=2) + "\n")
    os.replace(tmp, ns.suite)
    print(f"[gpu_suite] {ns.step}: {entry['status']}" + (f" in {ns.seconds:.0f} s" if ns.seconds is not None else ""))
    return entry


if __name__ == "__main__":
    main()
