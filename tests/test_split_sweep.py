"""The paper's 10-split protocol as a sweep: ``data.split_index`` sets every dataset's split, the
sweep runner runs one fit per split, ``report`` prints the median per dataset over the splits."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from c2s_lightning.cli import main
from c2s_lightning.commands import report as report_cmd
from c2s_lightning.commands import sweep as sweep_cmd
from c2s_lightning.data.datamodule import ComparisonDataModule
from c2s_lightning.data.mix import MixEntry
from c2s_lightning.data.datasets import read_dataset
from c2s_lightning.data.splits import split_records
from c2s_lightning.data.synth import write_synthetic_kadid

sys.path.insert(0, str(Path(__file__).parent))
import native_fixtures as nf  # noqa: E402
from run_logs import logged_config, series  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPLIT_SWEEP = ROOT / "sweeps" / "paper_splits.yaml"
QUICKSTART = str(ROOT / "experiments" / "quickstart.yaml")


def test_split_index_sets_every_datasets_paper_split(tmp_path):
    roots = {"live": nf.write_live(tmp_path / "live", full=True, images=False),
             "csiq": nf.write_csiq(tmp_path / "csiq", full=True, images=False)}
    specs = [MixEntry(name=n, root=str(r), pairs=4, split="paper", split_index=1,
                      reader_options={"check_images": False}) for n, r in roots.items()]
    data = ComparisonDataModule(specs, split_index=3)
    plain = ComparisonDataModule(specs)
    for name, root in roots.items():
        records = read_dataset(name, root, check_images=False)
        third, first = (split_records(records, "paper", index=k).test for k in (3, 1))
        assert [r.path for r in data.mix.records(name, "test")] == [r.path for r in third]
        assert [r.path for r in plain.mix.records(name, "test")] == [r.path for r in first]
        assert {r.path for r in third} != {r.path for r in first}


def test_shipped_split_sweep_sets_the_split_of_all_ten_runs(tmp_path, monkeypatch, capsys):
    sweep = yaml.safe_load(SPLIT_SWEEP.read_text())
    assert sweep["method"] == "grid"
    assert sweep["parameters"] == {"data.split_index": {"values": list(range(1, 11))}}
    command = sweep_cmd.plan_sweep(SPLIT_SWEEP, tmp_path)[2].command  # split 3, as the runner launches it
    monkeypatch.chdir(ROOT)  # the file's configs are named from the repository root
    with pytest.raises(SystemExit):
        main(command[command.index("c2s_lightning") + 1:] + ["--print_config"])
    printed = capsys.readouterr().out
    data = yaml.safe_load(printed[printed.index("# lightning"):])["data"]  # after DeepSpeed's import notice
    assert data["split_index"] == 3 and len(data["datasets"]) == 6


def two_dataset_override(tmp_path: Path) -> Path:
    """The quickstart on two small synthetic datasets with random splits (the index reseeds them),
    two training steps, evaluated once at the end."""
    datasets = [{"name": "kadid10k", "label": label, "root": str(write_synthetic_kadid(tmp_path / label, size=32,
                                                                                       seed=seed, distortions=(kind,))),
                 "pairs": 16, "pairs_per_image": None, "split": "random", "synthesize": False,
                 "synth_options": {}, "split_options": {}}
                for label, seed, kind in (("noise", 0, "noise"), ("blur", 1, "blur"))]
    cfg = {"trainer": {"max_steps": 2, "val_check_interval": 2, "log_every_n_steps": 1,
                       "enable_progress_bar": False},
           "data": {"datasets": datasets, "balance_levels": False, "rating_images_per_pair": 0,
                    "augment": False, "num_workers": 0, "batch_size": 4, "val_pairs": 4},
           "model": {"rating_loss_weight": 0.0},
           "evaluator": {"max_images": 12, "before_training": False, "plots": False},
           "export": {"enabled": False}}
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_two_splits_through_the_sweep_runner_then_report_prints_medians(tmp_path, capsys):
    shipped = yaml.safe_load(SPLIT_SWEEP.read_text())
    sweep = {key: shipped[key] for key in ("method", "metric")}
    sweep["parameters"] = {"data.split_index": {"values": [1, 2, "x"]}}  # "x": a run that fails
    sweep["command"] = ["${interpreter}", "-m", "c2s_lightning", "fit", "--config", QUICKSTART,
                        "--config", str(two_dataset_override(tmp_path)), "${args}"]
    file, out = tmp_path / "splits.yaml", tmp_path / "sweep"
    file.write_text(yaml.safe_dump(sweep))
    with pytest.raises(SystemExit) as exit_info:
        sweep_cmd.main([str(file), "--out", str(out)])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert "3 runs: 2 finished, 1 failed" in captured.out
    assert "no best run: the sweep's metric test/mean/srcc is not a validation metric" in captured.out
    assert "sweep: run 3 of 3, elapsed" in captured.err

    folders = sorted(p for p in out.iterdir() if p.is_dir() and (p / "csv").is_dir())
    assert len(folders) == 2 and sorted(logged_config(f)["data.split_index"] for f in folders) == [1, 2]
    report_cmd.main([str(out), "--out", str(tmp_path / "report")])
    printed = capsys.readouterr().out
    for label in ("noise", "blur"):
        srcc, plcc = ([series(f, f"test/{label}/{m}")[-1] for f in folders] for m in ("srcc", "plcc"))
        # the median of two values is their mean; the failed run is not among them
        cells = [f"{(a + b) / 2:.3f} [{min(a, b):.3f}, {max(a, b):.3f}]" for a, b in (srcc, plcc)]
        assert f"| all runs | {label} | 2 | {cells[0]} | {cells[1]} |" in printed
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Median over `data.split_index`" in text and "3 run(s), 2 finished" in text
    assert "- **split_index=x: failed**" in text
