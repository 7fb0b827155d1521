"""The report: runs read from the files the CSV logger writes, failed runs marked and left out,
labels, the paper-layout table beside the paper, cache-aware times, figures, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from c2s_lightning.cli import main as cli_main
from c2s_lightning.commands import report as report_cmd
from c2s_lightning.infra.config_keys import flatten
from c2s_lightning.reporting import figures
from c2s_lightning.reporting import paper_numbers as paper
from c2s_lightning.reporting.aggregate import aggregate_key, best_line, median_table
from c2s_lightning.reporting.runs import ReportRun, collect, label_runs, read_metrics, resolve
from c2s_lightning.reporting.tables import results_table
from c2s_lightning.sweep.state import save_state
from c2s_lightning.training.loggers import RunCSVLogger

# A sweep over beta x split as `sweep` leaves it: OUT/sweep_state.json, and per run FOLDER/params.json,
# FOLDER/config.yaml and the CSV logger's FOLDER/csv/. LIVE SRCC after training by (beta, split);
# (1, 3) failed after its step-0 evaluation (SRCC 0.1). beta 1 reused every comparison from the
# cache (0 computed, 60 reused), beta 2 computed all of its 120.
SRCC = {(1, 1): 0.90, (1, 2): 0.80, (2, 1): 0.92, (2, 2): 0.84, (2, 3): 0.88}
FAILED = (1, 3)


def write_run(folder: Path, params: dict, rows: list[dict], status: str | None) -> None:
    """A run folder written by the project's CSV logger; ``status`` None: killed before it ended."""
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps(params))
    config = {"evaluator": {"alpha": 5, "beta": params["evaluator.beta"], "rule": "min_variance"},
              "data": {"split_index": params["data.split_index"]},
              "trainer": {"logger": {"init_args": {"name": folder.name, "save_dir": str(folder)}}}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    logger = RunCSVLogger(folder)
    logger.log_hyperparams(flatten(config))
    for step, row in enumerate(rows):
        logger.log_metrics(row, step=step)
    logger.finalize(status) if status else logger.save()


@pytest.fixture(scope="module")
def sweep_runs(tmp_path_factory) -> Path:
    root, records = tmp_path_factory.mktemp("sweep"), {}
    for beta, split in [*SRCC, FAILED]:
        folder = root / f"s-b{beta}-s{split}"
        rows = [{"test/live/srcc": 0.1, "test/live/plcc": 0.1, "test/koniq10k/srcc": 0.1}]
        if (beta, split) != FAILED:
            srcc, cached = SRCC[beta, split], beta == 1
            rows.append({"test/live/srcc": srcc, "test/live/plcc": srcc - 0.02, "test/koniq10k/srcc": 0.8,
                         "test/koniq10k/plcc": 0.81, "test/live/seconds_per_image": 0.01 if cached else 0.2,
                         "test/koniq10k/seconds_per_image": 0.01 if cached else 0.2,
                         "test/cache/computed": 0.0 if cached else 120.0, "test/cache/reused": 60.0 if cached else 0.0})
        params = {"evaluator.beta": beta, "data.split_index": split}
        write_run(folder, params, rows, "failed" if (beta, split) == FAILED else "success")
        status = "failed" if (beta, split) == FAILED else "finished"
        records[folder.name] = {"name": folder.name, "params": params, "status": status, "folder": str(folder)}
    save_state(root, {"runs": records})
    plots = root / "s-b1-s1" / "plots"  # what the evaluation callback writes beside a run
    plots.mkdir()
    for step in (5, 10):
        Image.new("RGB", (40, 30), (step, 0, 0)).save(plots / f"test_live_step{step:06d}.png")
    return root


def test_report_marks_the_failed_run_and_keeps_it_out_of_tables_and_medians(sweep_runs, tmp_path, capsys):
    out = tmp_path / "report"
    report_cmd.main([str(sweep_runs), "--out", str(out), "--aggregate", "split_index"])
    printed = capsys.readouterr().out
    text = (out / "report.md").read_text()
    assert "6 run(s), 5 finished" in text
    failed = text.split("## Runs that did not finish")[1].split("##")[0]
    assert "**beta=1, split_index=3: failed**" in failed and str(sweep_runs / "s-b1-s3") in failed
    # medians by hand: beta 1 over splits 1, 2 only: {0.90, 0.80}; with the failed run's 0.1 it would be 0.8
    assert "| beta=1 | LIVE | 2 | 0.850 [0.800, 0.900] | 0.830 [0.780, 0.880] | 0.972 / 0.969 |" in printed
    assert "| beta=2 | LIVE | 3 | 0.880 [0.840, 0.920] | 0.860 [0.820, 0.900] | – |" in printed
    results = text.split("## Results")[1].split("## Mean")[0].splitlines()
    rows = [line.split(" |")[0] for line in results if line.startswith("| beta=")]
    assert rows == ["| beta=1, split_index=1", "| beta=1, split_index=2", "| beta=2, split_index=1",
                    "| beta=2, split_index=2", "| beta=2, split_index=3"]
    # beta 1's time is a cache read: marked; beta 2 computed its comparisons
    assert "| beta=1, split_index=2 | 0.800 / 0.780 | 0.800 / 0.810 | 0.800 / 0.795 | 0.01* |" in results
    assert "| beta=2, split_index=3 | 0.880 / 0.860 | 0.800 / 0.810 | 0.840 / 0.835 | 0.2 |" in results
    summary = text.split("## Mean over datasets")[1].split("##")[0]
    assert "| run | SRCC | PLCC | s / image | comparisons computed / reused |" in summary
    assert "| 0.01* | 0 / 60 |" in summary and "| 0.2 | 120 / 0 |" in summary
    assert "No best run: no run logged `val/mean/srcc`" in text  # test metrics are never selected on
    assert "Not in the time plot (comparisons reused from the cache): beta=1, split_index=1; beta=1, " \
           "split_index=2." in text
    assert "`*`: comparisons reused from the comparison cache" in text
    assert "- beta=1, split_index=3 (failed): `" in text.split("## Runs\n")[1]


def test_beta_plots_keep_every_other_swept_value_apart_and_time_only_computed_runs(sweep_runs, tmp_path,
                                                                                   monkeypatch):
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.setdefault(path.name, fig) and path)
    runs, varied = collect([sweep_runs])
    finished = [r for r in runs if r.status == "finished"]
    paths, cached = figures.beta_plots(finished, varied, "test", tmp_path)
    assert [p.name for p in paths] == ["beta_srcc.png", "beta_time.png"]
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
             for line in drawn["beta_srcc.png"].axes[0].lines}
    assert lines["split_index=1: LIVE"] == ([1.0, 2.0], [0.90, 0.92])
    assert lines["split_index=2: LIVE"] == ([1.0, 2.0], [0.80, 0.84])
    assert lines["split_index=3: LIVE"] == ([2.0], [0.88])  # split 3 of beta 1 failed: no point
    times = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
             for line in drawn["beta_time.png"].axes[0].lines}
    assert times == {f"split_index={s}": ([2.0], [pytest.approx(0.2)]) for s in (1, 2, 3)}
    assert cached == ["beta=1, split_index=1", "beta=1, split_index=2"]


def test_report_figures_and_scatter_copies(sweep_runs, tmp_path):
    out = tmp_path / "report"
    report_cmd.main([str(sweep_runs), "--out", str(out)])
    text = (out / "report.md").read_text()
    for name in ("beta_srcc.png", "beta_time.png"):
        assert (out / name).stat().st_size > 1000 and f"]({name})" in text
        with Image.open(out / name) as image:
            assert image.size == (550, 400)
    # only the newest step, named by the run's label
    assert [p.name for p in (out / "scatter").iterdir()] == ["beta=1_split_index=1__test_live_step000010.png"]
    assert "](scatter/beta=1_split_index=1__test_live_step000010.png)" in text


def test_a_run_folder_says_how_it_ended_without_a_sweep(sweep_runs, tmp_path):
    write_run(tmp_path / "killed", {"evaluator.beta": 1, "data.split_index": 1}, [{"test/live/srcc": 0.5}], None)
    write_run(tmp_path / "done", {"evaluator.beta": 2, "data.split_index": 1}, [{"test/live/srcc": 0.6}], "success")
    runs, _ = collect([tmp_path / "killed", tmp_path / "done"])
    assert {r.name: r.status for r in runs} == {"killed": "unfinished", "done": "finished"}
    # inside the sweep folder the state's record decides
    assert {r.source.rsplit("/", 1)[-1]: r.status for r in collect([sweep_runs])[0]}["s-b1-s3"] == "failed"
    assert read_metrics(sweep_runs / "s-b2-s3")["test/live/srcc"] == pytest.approx(0.88)
    assert read_metrics(sweep_runs / "s-b1-s3")["test/live/srcc"] == pytest.approx(0.1)  # its step-0 value


def test_metrics_are_the_last_numeric_value_of_each_column(tmp_path):
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text("step,a,b,note\n0,1,2.5,x\n1,3,,y\n2,nan,,\n")
    assert read_metrics(tmp_path) == {"step": 2.0, "a": 3.0, "b": 2.5}  # nan and text are not values


def test_flatten_gives_the_dotted_cli_keys():
    config = {"evaluator": {"beta": 2, "rule": "random"}, "seed": 3, "data": {"datasets": [{"name": "live"}]},
              "trainer": {"plugins": {}}}
    assert flatten(config) == {"evaluator.beta": 2, "evaluator.rule": "random", "seed": 3,
                               "data.datasets": [{"name": "live"}], "trainer.plugins": {}}


def _run(name: str, config: dict, metrics: dict, params: dict | None = None) -> ReportRun:
    return ReportRun(name, name, None, flatten(config), params or {}, metrics)


def test_the_best_run_is_picked_on_validation_only():
    runs = [_run("a", {}, {"val/mean/srcc": 0.7, "test/mean/srcc": 0.9}, {"x": 1}),
            _run("b", {}, {"val/mean/srcc": 0.8, "test/mean/srcc": 0.1}, {"x": 2})]
    label_runs(runs)
    assert best_line(runs) == "Best run on `val/mean/srcc` (validation part): x=2 (0.800)."


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


def test_inputs_resolve_to_run_folders_or_online_paths(sweep_runs, tmp_path):
    found = resolve([str(sweep_runs)])
    assert len(found) == 6 and found[sweep_runs / "s-b1-s3"] == "failed"
    assert resolve([str(sweep_runs / "s-b2-s1")]) == {sweep_runs / "s-b2-s1": None}
    assert resolve(["my-team/c2s_lightning/ab12cd34"]) == {"my-team/c2s_lightning/ab12cd34": None}


@pytest.mark.parametrize("case", ["missing", "empty", "mistyped"])
def test_report_errors_are_one_line_naming_the_folder(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs" / "sweeps").mkdir(parents=True)
    item = {"missing": str(tmp_path / "nothing"), "empty": "outputs/sweeps",
            "mistyped": "outputs/sweeps/bta"}[case]  # an entity/project/run_id shape, but outputs/ is here
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["report", item, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "API key" not in message
    expected = f"no runs in {item}" if case == "empty" else f"{item}: no such run folder"
    assert expected in message


def test_a_trainer_that_logs_gets_the_csv_logger_beside_its_first_logger(tmp_path):
    import lightning as L

    from c2s_lightning.training.loggers import WandbLogger, add_csv_logger

    def trainer(**options) -> L.Trainer:
        return L.Trainer(accelerator="cpu", default_root_dir=str(tmp_path), enable_progress_bar=False,
                         enable_model_summary=False, **options)

    logging = trainer(logger=WandbLogger(save_dir=str(tmp_path / "w"), offline=True))
    add_csv_logger(logging)
    add_csv_logger(logging)  # once only
    assert [type(x).__name__ for x in logging.loggers] == ["WandbLogger", "RunCSVLogger"]
    assert Path(logging.loggers[1].log_dir) == tmp_path / "w" / "csv"  # beside config.yaml and plots/
    for quiet in (trainer(logger=False), trainer(fast_dev_run=True, logger=WandbLogger(offline=True))):
        loggers = list(quiet.loggers)
        add_csv_logger(quiet)
        assert quiet.loggers == loggers  # logging off stays off
