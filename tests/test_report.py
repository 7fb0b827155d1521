"""The report: reading offline runs, labels, the paper-layout table beside the paper, figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from c2s_lightning.commands import report as report_cmd
from c2s_lightning.sweep.runner import read_metric
from c2s_lightning.reporting import paper_numbers as paper
from c2s_lightning.reporting.aggregate import aggregate_key, median_table
from c2s_lightning.infra.config_keys import flatten
from c2s_lightning.reporting.runs import ReportRun, label_runs, last_metrics, resolve
from c2s_lightning.reporting.tables import results_table
from c2s_lightning.reporting.wandb_files import RunData

# One process writes three offline runs laid out as `sweep` leaves them: FOLDER/params.json and
# FOLDER/wandb/offline-run-*/run-*.wandb, evaluated with beta = 1, 2, 3.
MAKE_RUNS = """import json, pathlib, sys, wandb
root = pathlib.Path(sys.argv[1])
for beta in (1, 2, 3):
    folder = root / f"beta-00{beta}"
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps({"evaluator.beta": beta}))
    config = {"evaluator": {"alpha": 5, "beta": beta, "rule": "min_variance"},
              "trainer": {"logger": {"init_args": {"name": folder.name, "save_dir": str(folder)}}}}
    run = wandb.init(mode="offline", dir=str(folder), project="t", config=config, reinit="create_new")
    run.log({"test/live/srcc": 0.1, "test/live/plcc": 0.1})
    run.log({"test/live/srcc": 0.90 + beta / 100, "test/live/plcc": 0.88, "test/koniq10k/srcc": 0.8,
             "test/koniq10k/plcc": 0.81, "test/live/seconds_per_image": 0.1 * beta,
             "test/koniq10k/seconds_per_image": 0.1 * beta})
    run.summary["test/mean/srcc"] = 0.777 + beta / 1000
    run.finish()
"""


@pytest.fixture(scope="module")
def sweep_runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    env = os.environ | {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    subprocess.run([sys.executable, "-c", MAKE_RUNS, str(root)], check=True, env=env, capture_output=True)
    plots = root / "beta-001" / "plots"  # what the evaluation callback writes beside a run
    plots.mkdir()
    for step in (5, 10):
        Image.new("RGB", (40, 30), (step, 0, 0)).save(plots / f"test_live_step{step:06d}.png")
    return root


def test_report_table_figures_and_paper_row(sweep_runs, tmp_path, capsys):
    out = tmp_path / "report"
    report_cmd.main([str(sweep_runs), "--out", str(out)])
    assert str(out / "report.md") in capsys.readouterr().out
    text = (out / "report.md").read_text()
    lines = text.split("## Results")[1].split("## Mean")[0].splitlines()
    rows = [line for line in lines if line.startswith("| beta=")]
    assert [r.split(" |")[0] for r in rows] == ["| beta=1", "| beta=2", "| beta=3"]
    assert "| beta=2 | 0.920 / 0.880 | 0.800 / 0.810 | 0.779 / 0.845 | 0.2 |" in lines
    assert lines[1 + lines.index(rows[0])].startswith("| ↳ *paper: main table")
    paper_rows = [line for line in lines if line.startswith("| ↳")]
    assert len(paper_rows) == 1, "beta = 2 and 3 are not the paper's setting: no paper row under them"
    assert "| 0.972 / 0.969 | 0.931 / 0.939 | 0.952 / 0.954 |" in paper_rows[0]
    for name in ("beta_srcc.png", "beta_time.png"):
        assert (out / name).stat().st_size > 1000 and f"]({name})" in text
        with Image.open(out / name) as image:
            assert image.size == (550, 400)
    copied = out / "scatter" / "beta=1__test_live_step000010.png"  # only the newest step
    assert copied.is_file() and not (out / "scatter" / "beta=1__test_live_step000005.png").exists()
    assert "](scatter/beta=1__test_live_step000010.png)" in text


def test_sweep_reads_the_best_metric_from_offline_runs(sweep_runs):
    assert read_metric(sweep_runs / "beta-002", "test/mean/srcc") == pytest.approx(0.779)
    assert read_metric(sweep_runs / "beta-003", "test/live/srcc") == pytest.approx(0.93)
    assert read_metric(sweep_runs / "beta-003", "test/nothing") is None


def test_metrics_prefer_the_summary_and_fall_back_to_history():
    data = RunData(Path("x"), "id", history=[{"a": 1, "b": 2.5}, {"a": 3, "img": {"_type": "image-file"}}],
                   summary={"a": 4, "note": "text", "flag": True}, config={})
    assert last_metrics(data) == {"a": 4, "b": 2.5}


def test_flatten_unwraps_and_drops_wandb_internals():
    config = {"evaluator": {"beta": 2, "rule": "random"}, "seed": {"value": 3, "desc": None}, "_wandb": {"x": 1}}
    assert flatten(config) == {"evaluator.beta": 2, "evaluator.rule": "random", "seed": 3}


def _run(name: str, config: dict, metrics: dict, params: dict | None = None) -> ReportRun:
    return ReportRun(name, name, None, flatten(config), params or {}, metrics)


def test_labels_come_from_varying_config_without_sweep_params():
    runs = [_run(f"r{i}", {"evaluator": {"rule": rule, "beta": 1},
                           "trainer": {"logger": {"init_args": {"save_dir": f"d{i}", "name": f"r{i}"}}}},
                 {"val/live/srcc": 0.9})
            for i, rule in enumerate(["random", "min_variance", "max_variance"])]
    assert label_runs(runs) == ["evaluator.rule"]
    assert [r.label for r in runs] == ["rule=max_variance", "rule=min_variance", "rule=random"]
    same = [_run("a", {}, {}, {"x": 1}), _run("b", {}, {}, {"x": 2}), _run("c", {}, {}, {"x": 1})]
    label_runs(same)
    assert [r.label for r in same] == ["x=1 (a)", "x=1 (c)", "x=2"]  # repeated values keep names apart
    plain = [_run("a", {"x": 1}, {}), _run("b", {"x": 1}, {})]
    assert label_runs(plain) == [] and [r.label for r in plain] == ["a", "b"]  # nothing varies: names
    single = [_run("only", {"x": 1}, {}, params={"evaluator.beta": 2})]
    label_runs(single)
    assert single[0].label == "beta=2"


def test_anchor_rule_rows_sit_beside_the_paper_ablation():
    runs = [_run(rule, {"evaluator": {"rule": rule}}, {"val/live/srcc": 0.5, "val/bid/srcc": 0.4})
            for rule in ("random", "min_variance")]
    varied = label_runs(runs)
    table = results_table(runs, "val", varied).splitlines()
    assert table[0] == "| run | LIVE SRCC / PLCC | BID SRCC / PLCC | mean SRCC / PLCC | s / image |"
    at = table.index("| rule=random | 0.500 / – | 0.400 / – | 0.450 / – | – |")
    assert table[at + 1] == "| ↳ *paper: anchor selection: random* | 0.954 / – | 0.881 / – | 0.917 / – | – |"


def test_medians_over_splits_per_dataset_and_per_other_setting():
    srcc = {(1, 1): 0.9, (1, 2): 0.7, (1, 3): 0.8, (2, 1): 0.5, (2, 2): 0.6, (2, 3): 0.1}  # (beta, split)
    runs = [_run(f"b{b}s{s}", {}, {"val/live/srcc": v, "val/live/plcc": v / 2}
                 | ({"val/bid/srcc": 0.4} if s == 1 else {}),  # BID logged by one split only
                 params={"evaluator.beta": b, "data.split_index": s}) for (b, s), v in srcc.items()]
    varied = label_runs(runs)
    key = aggregate_key(runs, varied)
    assert key == "data.split_index"
    table = median_table(runs, varied, key, "val").splitlines()
    # worked by hand: beta 1 takes {0.9, 0.7, 0.8} -> 0.8; beta 2 takes {0.5, 0.6, 0.1} -> 0.5
    assert "| beta=1 | LIVE | 3 | 0.800 [0.700, 0.900] | 0.400 [0.350, 0.450] | 0.972 / 0.969 |" in table
    assert "| beta=2 | LIVE | 3 | 0.500 [0.100, 0.600] | 0.250 [0.050, 0.300] | – |" in table  # no paper row
    assert "| beta=1 | BID | 1 | 0.400 [0.400, 0.400] | – | 0.919 / 0.939 |" in table
    assert aggregate_key(runs, varied, "beta") == "evaluator.beta"
    assert aggregate_key(runs, ["evaluator.beta"]) is None  # no split varies: nothing by default
    with pytest.raises(ValueError, match="seed"):
        aggregate_key(runs, varied, "seed")


def test_paper_reference_matches_one_changed_setting():
    assert paper.paper_reference({}).source.startswith("main table")
    assert paper.paper_reference({"beta": 1, "rule": "min_variance"}).srcc["spaq"] == 0.906
    assert paper.paper_reference({"rule": "random"}) is paper.ANCHOR_SELECTION["random"]
    assert paper.paper_reference({"matrix": "count"}) is paper.COMPARISON_MATRIX["count"]
    assert paper.paper_reference({}, varied={"matrix"}) is paper.COMPARISON_MATRIX["probability"]
    assert paper.paper_reference({"rule": "random", "beta": 2}) is None
    assert paper.paper_reference({"beta": 3}) is None


def test_inputs_resolve_to_run_files_or_online_paths(sweep_runs, tmp_path):
    files = resolve([str(sweep_runs)])
    assert len(files) == 3 and all(f.name.startswith("run-") and f.suffix == ".wandb" for f in files)
    assert resolve([str(files[0]), str(files[0].parent)]) == [files[0]]
    assert resolve(["my-team/c2s_lightning/ab12cd34"]) == ["my-team/c2s_lightning/ab12cd34"]
    with pytest.raises(FileNotFoundError):
        resolve([str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="no run-"):
        report_cmd.main([str(tmp_path), "--out", str(tmp_path / "out")])
