"""The split-protocol runner: per-split configs, a real run, the median summary."""

from pathlib import Path

import pytest
import yaml

from c2s_lightning.commands.splits import main, parse_splits, summary_table

from test_cli import QUICKSTART, override, synth  # noqa: F401  (fixture)


def test_parse_splits():
    assert parse_splits("1-3,7") == [1, 2, 3, 7]
    assert parse_splits("10") == [10]
    with pytest.raises(Exception, match="1..10"):
        parse_splits("0-2")


def test_summary_is_the_median_with_range():
    table = summary_table({1: {"live": {"srcc": 0.9, "plcc": 0.8}}, 2: {"live": {"srcc": 0.7, "plcc": 0.6}},
                           3: {"live": {"srcc": 0.8, "plcc": 0.9}}})
    assert "| live | 3 | 0.800 [0.700, 0.900] | 0.800 [0.600, 0.900] |" in table


def test_runs_each_split_in_its_own_folder_and_summarises(tmp_path, synth, capsys):  # noqa: F811
    cfg = override(tmp_path, synth, max_steps=2)
    out = tmp_path / "splits"
    assert main(["--splits", "1-2", "--out", str(out), "--dry-run", "--", "--config", QUICKSTART, "--config", cfg]) == 0
    planned = [yaml.safe_load((out / f"split0{k}" / "config.yaml").read_text()) for k in (1, 2)]
    assert [c["data"]["datasets"][0]["split_index"] for c in planned] == [1, 2]
    assert planned[1]["checkpoint"]["dirpath"] == str(out / "split02" / "checkpoints")
    assert main(["--splits", "2", "--out", str(out), "--", "--config", QUICKSTART, "--config", cfg]) == 0
    assert (out / "split02" / "DONE").exists()
    summary = (out / "summary.md").read_text()
    assert "| kadid10k | 1 |" in summary
    # a rerun skips the finished split
    assert main(["--splits", "2", "--out", str(out), "--", "--config", QUICKSTART, "--config", cfg]) == 0
    assert "finished before, skipped" in capsys.readouterr().out
