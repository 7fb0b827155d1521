"""Own data in one recipe: experiments/own_list_train.yaml trains on a labelled list without stds; a
dataset list on the command line replaces the config's whole; the std fallback works where its error
says."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from c2s_lightning.cli import main
from c2s_lightning.commands.anchor_bank import build_bank
from c2s_lightning.data.mix import Mix, MixEntry

ROOT = Path(__file__).resolve().parents[1]
RECIPE, TINY = ROOT / "experiments" / "own_list_train.yaml", ROOT / "experiments" / "backbones" / "tiny_llava.yaml"


def write_list(folder: Path, scores, header="path,score") -> Path:
    """Small noisy photos (noise falls as the score rises) and a ``path,score`` list of them."""
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = [header]
    for k, score in enumerate(scores):
        base = np.full((16, 16, 3), 128.0) + rng.normal(0, 60 / (1 + score), (16, 16, 3))
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(folder / "images" / f"img{k:03d}.png")
        rows.append(f"images/img{k:03d}.png,{score}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder / "labels.csv"


def printed_config(args, capsys) -> dict:
    with pytest.raises(SystemExit):
        main(["fit", *args, "--print_config"])
    return yaml.safe_load(capsys.readouterr().out)


def test_the_recipe_fits_on_a_list_without_stds(tmp_path, monkeypatch, capsys):
    labels = write_list(tmp_path / "mine", np.linspace(1, 5, 30).round(2))
    monkeypatch.setenv("C2S_LIST", str(labels))
    config = printed_config(["--config", str(RECIPE), "--config", str(TINY)], capsys)
    [entry] = config["data"]["datasets"]
    assert (entry["name"], entry["root"], entry["synthesize"]) == ("list", str(labels), False)
    out = tmp_path / "run"
    config["trainer"] |= {"fast_dev_run": True, "default_root_dir": str(out), "enable_progress_bar": False}
    config["trainer"]["logger"]["init_args"]["save_dir"] = str(out)
    config["checkpoint"]["dirpath"] = str(out / "checkpoints")
    config["data"] |= {"num_workers": 0, "batch_size": 2, "val_pairs": 2}
    config["evaluator"] |= {"max_images": 6, "plots": False}
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(yaml.safe_dump(config))
    cli = main(["fit", "--config", str(resolved)])
    assert cli.trainer.global_step == 1
    evaluator = next(c for c in cli.trainer.callbacks if type(c).__name__ == "SoftComparisonEvaluator")
    assert set(evaluator.last_results) == {"list"}
    # no std in the list: the anchors carry the fallback, the median of none, so 0.14 x the score range
    train = [r.mos for r in cli.datamodule.mix.records("list", "train")]
    fallback = 0.14 * (max(train) - min(train))
    assert [a.std for a in evaluator.bank(cli.datamodule).anchors] == pytest.approx([fallback] * 5)


def test_a_command_line_list_replaces_the_configs_whole(tmp_path, capsys):
    given = "[{name: list, root: a.csv, pairs: 10}]"
    config = printed_config(["--config", str(ROOT / "experiments" / "quickstart.yaml"), "--data.datasets", given],
                            capsys)
    [entry] = config["data"]["datasets"]
    assert entry == {"name": "list", "root": "a.csv", "pairs": 10, "pairs_per_image": None, "split": "random",
                     "split_index": 1, "split_options": {}, "reader_options": {}, "std_fallback": None,
                     "label": None, "evaluate": True, "synthesize": False, "synth_options": {}}
    # the append form still appends
    config = printed_config(["--config", str(ROOT / "experiments" / "quickstart.yaml"), f"--data.datasets+={given}"],
                            capsys)
    assert [e["name"] for e in config["data"]["datasets"]] == ["kadid10k", "list"]


def test_the_std_fallback_fixes_what_its_error_names(tmp_path, capsys):
    labels = write_list(tmp_path / "flat", [3.0] * 8)  # equal scores, no std: no fallback can be derived
    entry = dict(name="list", root=str(labels), split="none", reader_options={"check_images": False})
    with pytest.raises(SystemExit) as exit_:
        main(["data", "inspect", "list", str(labels), "--no-check-images"])
    assert exit_.value.code == 2 and "--std-fallback 0.5" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"`std_fallback: 0\.5` in its data.datasets entry"):
        Mix([MixEntry(**entry)]).anchor_records("list", "test")  # what the evaluator and `anchors build` use

    assert main(["data", "inspect", "list", str(labels), "--no-check-images", "--std-fallback", "0.5"]) is None
    row = capsys.readouterr().out.splitlines()[-1]
    counts = [int(c) for c in re.findall(r"(\d+) \(\s*[\d.]+%\)", row)]
    # equal scores lie within one std of each other: every pair is "similar", none is any other level
    assert len(counts) == 5 and counts[2] > 0 and counts[:2] + counts[3:] == [0, 0, 0, 0]
    assert {r.std for r in Mix([MixEntry(**entry, std_fallback=0.5)]).anchor_records("list", "test")} == {0.5}
    bank = build_bank(MixEntry(**entry, std_fallback=0.5), part="test", alpha=1)  # anchors build --dataset....
    assert [a.std for a in bank.anchors] == [0.5]
    with pytest.raises(ValueError, match="std_fallback must be a positive std"):
        MixEntry(**entry, std_fallback=0)
