"""The tool commands' argument layer: --config, --print_config, defaults in --help, did-you-mean."""

from __future__ import annotations

import csv

import pytest
import yaml
from PIL import Image

from c2s_lightning.cli import main

# each tool command with its required arguments (nothing runs: --print_config exits first)
TOOLS = {
    "data synth": ["data", "synth", "--out", "x"],
    "data inspect": ["data", "inspect", "kadid10k", "x"],
    "anchors build": ["anchors", "build", "--out", "b.json"],
    "score": ["score", "a.png", "--checkpoint", "e"],
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


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = capsys.readouterr().out
    assert "--batch-size" in text and "default: 16" in text and "--config" in text and "--print_config" in text


def test_anchor_options_are_typed_mappings_in_a_config(capsys, tmp_path):
    path = tmp_path / "bank.yaml"
    path.write_text(yaml.safe_dump({"out": "b.json", "split_options": {"test_refs": ["I04", "I05"]},
                                    "reader_options": {"check_images": False}}))
    with pytest.raises(SystemExit):
        main(["anchors", "build", "--config", str(path), "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["split_options"] == {"test_refs": ["I04", "I05"]}
    assert printed["reader_options"] == {"check_images": False}


@pytest.mark.parametrize("args, wanted", [(["scor"], "'score'"), (["evalute"], "'evaluate'"),
                                          (["anchors", "buidl"], "'build'"),
                                          (["score", "a.png", "--checkpoint", "e", "--bach-size", "2"], "'--batch-size'"),
                                          (["data", "synth", "--out", "x", "--sise", "8"], "'--size'")])
def test_a_mistyped_command_action_or_option_gets_a_suggestion(args, wanted, capsys):
    with pytest.raises(SystemExit) as error:
        main(args)
    said = str(error.value.code) + capsys.readouterr().err
    assert f"did you mean {wanted}?" in said


def test_data_synth_from_a_config_says_what_it_wrote(tmp_path, capsys):
    path = tmp_path / "synth.yaml"
    path.write_text(yaml.safe_dump({"out": str(tmp_path / "kadid"), "size": 16, "crops": 1}))
    main(["data", "synth", "--config", str(path)])
    said = capsys.readouterr().out
    assert str(tmp_path / "kadid") in said and "dmos.csv" in said
    rows = list(csv.DictReader((tmp_path / "kadid" / "dmos.csv").open()))
    assert rows and Image.open(tmp_path / "kadid" / "images" / rows[0]["dist_img"]).size == (16, 16)
