"""The tool commands' argument layer: --config, --print_config, defaults in --help, did-you-mean."""

from __future__ import annotations

import csv
import dataclasses

import pytest
import yaml
from PIL import Image

from c2s_lightning.cli import LIGHTNING, TOOLS, main
from c2s_lightning.data.mix import MixEntry

# each tool command with its required arguments (nothing runs: --print_config exits first)
TOOLS = {
    "data synth": ["data", "synth", "--out", "x"],
    "data inspect": ["data", "inspect", "kadid10k", "x"],
    "anchors build": ["anchors", "build", "--out", "b.json"],
    "score": ["score", "a.png", "--export", "e"],
    "export": ["export", "--ckpt", "c.ckpt", "--out", "e"],
    "sweep": ["sweep", "sweeps/beta.yaml"],
    "report": ["report", "runs"],
    "cache stats": ["cache", "stats"],
    "cache clear": ["cache", "clear"],
}


@pytest.mark.parametrize("tool", TOOLS)
def test_every_tool_prints_its_config_and_reads_it_back(tool, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main([*TOOLS[tool], "--print_config"])
    assert done.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert isinstance(printed, dict) and printed
    # the printed config, given back with --config, parses to the same values
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(printed))
    head = [a for a in TOOLS[tool] if not a.startswith("-")][: len(tool.split())]
    with pytest.raises(SystemExit):
        main([*head, "--config", str(path), "--print_config"])
    assert yaml.safe_load(capsys.readouterr().out) == printed


@pytest.mark.parametrize("tool", [["score", "a.png"], ["anchors", "build", "--out", "b.json"]])
def test_export_option_keeps_its_old_spelling_checkpoint(tool, tmp_path, capsys):
    for given in (["--export", "e"], ["--checkpoint", "e"], ["--checkpoint=e"]):
        with pytest.raises(SystemExit):
            main([*tool, *given, "--print_config"])
        printed = yaml.safe_load(capsys.readouterr().out)
        assert printed["export"] == "e" and "checkpoint" not in printed
    old_config = tmp_path / "old.yaml"  # a config file written with the old key reads the same
    old_config.write_text(yaml.safe_dump({"checkpoint": "e"}))
    with pytest.raises(SystemExit):
        main([*tool, "--config", str(old_config), "--print_config"])
    assert yaml.safe_load(capsys.readouterr().out)["export"] == "e"
    with pytest.raises(SystemExit):
        main([*tool[:2 if tool[0] == "anchors" else 1], "--help"])
    assert "--checkpoint: its old name" in " ".join(capsys.readouterr().out.split())


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = capsys.readouterr().out
    assert "--batch-size" in text and "default: 16" in text and "--config" in text and "--print_config" in text


def test_anchor_dataset_is_a_mix_entry_nested_as_in_an_experiment(capsys, tmp_path):
    entry = {"name": "kadid10k", "root": "data/kadid10k", "split": "random", "pairs": 64,
             "split_options": {"test_refs": ["I04", "I05"]}, "reader_options": {"check_images": False}}
    path = tmp_path / "bank.yaml"
    path.write_text(yaml.safe_dump({"out": "b.json", "dataset": entry}))
    with pytest.raises(SystemExit):
        main(["anchors", "build", "--config", str(path), "--print_config"])
    from_file = yaml.safe_load(capsys.readouterr().out)
    # MixEntry's fields, its defaults filled in (a data.datasets item of experiments/*.yaml reads the same)
    assert from_file["dataset"] == {**dataclasses.asdict(MixEntry(**entry)), **entry}
    with pytest.raises(SystemExit):
        main(["anchors", "build", "--dataset.name", "koniq10k", "--dataset.root", "k", "--dataset.split", "paper",
              "--out", "b.json", "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)["dataset"]
    assert (printed["name"], printed["root"], printed["split"], printed["split_index"]) == ("koniq10k", "k", "paper", 1)


@pytest.mark.parametrize("args, wanted", [(["scor"], "'score'"), (["evalute"], "'evaluate'"),
                                          (["anchors", "buidl"], "'build'"),
                                          (["score", "a.png", "--checkpoint", "e", "--bach-size", "2"], "'--batch-size'"),
                                          (["data", "synth", "--out", "x", "--sise", "8"], "'--size'"),
                                          (["anchors", "build", "--out", "b", "--dataset.nme", "k"], "'--dataset.name'"),
                                          (["fit", "--trainer.max_stepz", "3"], "'--trainer.max_steps'"),
                                          (["validate", "--evaluator.bta", "3"], "'--evaluator.beta'"),
                                          # evaluate: its own options, and validate's, wherever they stand
                                          (["evaluate", "--checkpont", "e"], "'--checkpoint'"),
                                          (["evaluate", "--checkpoint", "e", "--no-cach"], "'--no-cache'"),
                                          (["evaluate", "--checkpoint", "e", "--trainer.max_stepz", "3"],
                                           "'--trainer.max_steps'")])
def test_a_mistyped_command_action_or_option_gets_a_suggestion(args, wanted, capsys):
    with pytest.raises(SystemExit) as error:
        main(args)
    err = capsys.readouterr().err
    said = str(error.value.code) + err
    assert f"did you mean {wanted}?" in said
    if args[0] in TOOLS or args[0] in LIGHTNING:  # the error line is not buried under every option's usage
        assert len(err.splitlines()) <= 4, err


def test_a_mistyped_key_in_a_training_config_gets_a_suggestion(tmp_path, capsys):
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({"trainer": {"max_stepz": 3}}))
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(path)])
    assert "'trainer.max_stepz'; did you mean 'trainer.max_steps'?" in capsys.readouterr().err


def test_evaluate_help_lists_its_own_options_and_points_at_validate(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--checkpoint" in text and "--no-cache" in text and "--num-nodes" in text and "default: False" in text
    assert "--trainer.max_steps" not in text and "python -m c2s_lightning validate --help" in text


def test_data_synth_from_a_config_says_what_it_wrote(tmp_path, capsys):
    path = tmp_path / "synth.yaml"
    path.write_text(yaml.safe_dump({"out": str(tmp_path / "kadid"), "size": 16, "crops": 1}))
    main(["data", "synth", "--config", str(path)])
    said = capsys.readouterr().out
    assert str(tmp_path / "kadid") in said and "dmos.csv" in said
    rows = list(csv.DictReader((tmp_path / "kadid" / "dmos.csv").open()))
    assert rows and Image.open(tmp_path / "kadid" / "images" / rows[0]["dist_img"]).size == (16, 16)
