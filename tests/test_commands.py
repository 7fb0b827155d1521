"""The scoring tools on a briefly trained quickstart model: export, anchors build, score, evaluate."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml

import c2s_lightning
from c2s_lightning.infra import atomic_files
from c2s_lightning.cli import main
from c2s_lightning.models.protocol import ComparisonProtocol
from c2s_lightning.scoring.bank import AnchorBank

from test_atomic_files import disk_full
from test_cli import QUICKSTART, override, synth  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth):  # noqa: F811
    tmp = tmp_path_factory.mktemp("trained")
    main(["fit", "--config", QUICKSTART, "--config", override(tmp, synth, max_steps=2),
          "--evaluator.before_training", "false"])
    return (tmp / "run" / "latest").resolve()


def test_export_command_matches_the_fit_export(trained, tmp_path):
    out = tmp_path / "export"
    assert main(["export", "--ckpt", str(trained / "checkpoints" / "last.ckpt"), "--out", str(out)]) == 0
    from safetensors.torch import load_file

    ours, fits = load_file(out / "model.safetensors"), load_file(trained / "export" / "model.safetensors")
    assert ours.keys() == fits.keys() and all(torch.equal(ours[k], fits[k]) for k in ours)


def test_anchors_build_then_score_with_an_unreadable_image(trained, synth, tmp_path, capsys, monkeypatch):  # noqa: F811
    bank_path = tmp_path / "bank.json"
    # the dataset entry exactly as the training config wrote it (data.datasets[0])
    (entry,) = yaml.safe_load(Path(override(tmp_path, synth)).read_text())["data"]["datasets"]
    config = tmp_path / "bank.yaml"
    config.write_text(yaml.safe_dump({"dataset": entry, "checkpoint": str(trained / "export"), "out": str(bank_path)}))
    assert main(["anchors", "build", "--config", str(config)]) == 0
    bank = AnchorBank.load(bank_path)
    assert len(bank.anchors) == 5 and bank.model_fingerprint == ComparisonProtocol.load(trained / "export").model_fingerprint
    # the entry the model trained on gives the anchors its evaluator chose (and fit exported)
    shipped = AnchorBank.load(trained / "export" / "anchors.json").anchors
    assert [(a.name, a.mos, a.std) for a in bank.anchors] == [(a.name, a.mos, a.std) for a in shipped]
    assert all(a.ref not in {"I04", "I05", "I06", "I07", "I08"} for a in bank.anchors)  # from training contents
    matrix = torch.tensor(bank.matrix)
    assert matrix.shape == (5, 5) and torch.all((matrix >= 0) & (matrix <= 1))

    images = sorted((synth / "images").glob("I04_*.png"))[:3]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    out = tmp_path / "scores.csv"
    code = main(["score", *map(str, images), str(broken), "--checkpoint", str(trained / "export"),
                 "--anchors", str(bank_path), "--out", str(out), "--batch-size", "4"])
    assert code == 1  # one image failed
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == [*map(str, images), str(broken)]
    assert all(r["score"] and not r["error"] for r in rows[:3])
    assert rows[3]["score"] == "" and str(broken) in rows[3]["error"]
    assert "scored 3 of 4 images" in capsys.readouterr().err
    # a rerun whose write fails (the disk fills as the CSV is flushed) leaves the earlier CSV whole
    before = out.read_bytes()
    monkeypatch.setattr(atomic_files, "_fsync_file", disk_full)
    with pytest.raises(SystemExit) as exit_info:
        main(["score", *map(str, images[:1]), "--checkpoint", str(trained / "export"),
              "--anchors", str(bank_path), "--out", str(out)])
    err = capsys.readouterr().err  # the first write to fail may be the resume parts' key, beside --out
    assert exit_info.value.code == 2 and f"error: {out}" in err and "no space left on device" in err
    assert out.read_bytes() == before
    assert not [p for p in tmp_path.rglob("*scores*") if p.name.endswith(".tmp") or p.name.startswith(".")]
    monkeypatch.undo()
    # the Python API gives the same scores
    api = c2s_lightning.score_images(images, trained / "export", anchors=bank_path, batch_size=4)
    assert torch.allclose(api, torch.tensor([float(r["score"]) for r in rows[:3]], dtype=api.dtype), atol=1e-5)


def test_evaluate_scores_the_held_out_set_without_training(trained, synth, tmp_path):  # noqa: F811
    cli = main(["evaluate", "--checkpoint", str(trained / "export"), "--config", QUICKSTART,
                "--config", override(tmp_path, synth), "--evaluator.beta", "2"])
    assert cli.trainer.global_step == 0
    assert not any(p.requires_grad for p in cli.model.parameters())  # the evaluate preset froze everything
    evaluator = next(c for c in cli.trainer.callbacks if type(c).__name__ == "SoftComparisonEvaluator")
    assert evaluator.beta == 2 and set(evaluator.last_results) == {"kadid10k"}
    assert -1 <= evaluator.last_results["kadid10k"]["srcc"] <= 1
    (run,) = (tmp_path / "run" / "runs").iterdir()  # its own folder; `latest` names training runs only
    assert list((run / "plots").glob("test_kadid10k_step000000.png")) and not (tmp_path / "run" / "latest").exists()
