"""A table of ordinary mistakes: each ends its command with exit status 2 and one ``error:`` line,
and those that can be known before the model loads are found before it loads (loading the
weights is replaced by a failure here, so a check that comes too late fails the test)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from c2s_lightning.cli import main
from c2s_lightning.models.protocol import ComparisonProtocol
from tiny_scorer import png, pool_bank, tiny_export

BOMB = "\n".join([f"a0: &a0 [{', '.join(['lol'] * 9)}]"]
                 + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]) + "\n"
"""Billion laughs: nine levels of nine aliases, 9^9 (~387 million) strings once expanded."""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """An export with its own bank, a separate bank, images to score, and broken variants."""
    tmp = tmp_path_factory.mktemp("mistakes")
    export = tiny_export(tmp)
    bank = pool_bank(tmp)
    bank.set_matrix([[0.5] * 5] * 5, ComparisonProtocol.load(export).model_fingerprint,
                    ComparisonProtocol.load(export).image_preprocessing)
    bank.save(export / "anchors.json")
    bank.save(tmp / "bank.json")
    for i in range(3):
        png(tmp / "images" / f"t{i}.png", 20 + i)
    stale = json.loads((tmp / "bank.json").read_text())
    (tmp / "stale.json").write_text(json.dumps({**stale, "model_fingerprint": "sha256:" + "0" * 64}))
    (tmp / "holes.json").write_text(json.dumps({**stale, "anchors": [
        {**a, "file": a["file"].replace("bank/", "gone/")} for a in stale["anchors"]]}))
    (tmp / "notabank.json").write_text("{ this is not json")
    cut = json.loads((tmp / "bank.json").read_text())
    cut_images = tmp / "cut"
    cut_images.mkdir()
    for k, entry in enumerate(cut["anchors"]):
        target = cut_images / f"{k:02d}.png"
        target.write_bytes((tmp / entry["file"]).read_bytes()[:60])  # a header, then nothing
        entry["file"] = f"cut/{k:02d}.png"
    (tmp / "cut.json").write_text(json.dumps(cut))
    edited = tmp / "edited_export"
    shutil.copytree(export, edited)
    protocol = json.loads((edited / "compare2score.json").read_text())
    protocol["levels"] = ["bad", "poor", "fair", "good", "excellent"]
    (edited / "compare2score.json").write_text(json.dumps(protocol))
    (tmp / "notacache").mkdir()
    (tmp / "notacache" / "comparisons.sqlite3").write_text("a text file, not a database\n")
    (tmp / "empty").mkdir()
    (tmp / "bomb.yaml").write_text(BOMB)
    (tmp / "sweep.yaml").write_text("method: grid\nparameters:\n  model.lr:\n    values: [0.1]\n"
                                    + BOMB.replace("a", "z"))
    os.mkfifo(tmp / "pipe.json")
    return tmp


def score(world: Path, *extra: str) -> list[str]:
    return ["score", str(world / "images"), "--checkpoint", str(world / "export"), "--no-cache", *extra]


MISTAKES = {
    "negative batch size": (lambda w: score(w, "--batch-size=-3"), "batch_size"),
    "zero devices": (lambda w: score(w, "--devices", "0"), "devices"),
    "negative workers": (lambda w: score(w, "--workers", "-1"), "workers"),
    "out over the weights": (lambda w: score(w, "--out", str(w / "export" / "model.safetensors")), "inside"),
    "out over the export's bank": (lambda w: score(w, "--out", str(w / "export" / "anchors.json")), "inside"),
    "out over a scored image": (lambda w: score(w, "--out", str(w / "images" / "t1.png")), "also an input"),
    "out over a bank": (lambda w: score(w, "--anchors", str(w / "bank.json"), "--out", str(w / "bank.json")),
                        "also an input"),
    "out over an anchor image": (lambda w: score(w, "--anchors", str(w / "bank.json"), "--out",
                                                 str(w / "bank" / "00_a0.png")), "also an input"),
    "out in a bank's images": (lambda w: score(w, "--anchors", str(w / "bank.json"), "--out",
                                               str(w / "bank" / "scores.csv")), "inside"),
    "missing bank": (lambda w: score(w, "--anchors", str(w / "missing.json")), "missing.json"),
    "bank that is no JSON": (lambda w: score(w, "--anchors", str(w / "notabank.json")), "not a valid anchor bank"),
    "bank that is a FIFO": (lambda w: score(w, "--anchors", str(w / "pipe.json")), "FIFO"),
    "bank without its images": (lambda w: score(w, "--anchors", str(w / "holes.json")), "anchor 0 image"),
    "bank with cut images": (lambda w: score(w, "--anchors", str(w / "cut.json")), "cannot be read"),
    "bank of other weights": (lambda w: score(w, "--anchors", str(w / "stale.json")), "another model"),
    "export with other level words": (lambda w: ["score", str(w / "images"), "--checkpoint",
                                                 str(w / "edited_export"), "--no-cache"], "levels"),
    "a cache that is no database": (lambda w: ["score", str(w / "images"), "--checkpoint", str(w / "export"),
                                               "--cache-dir", str(w / "notacache")],
                                    "not a usable comparison cache"),
    "a folder without images": (lambda w: ["score", str(w / "empty"), "--checkpoint", str(w / "export")],
                                "no images in this folder"),
    "YAML bomb in score --config": (lambda w: score(w, "--config", str(w / "bomb.yaml")), "alias"),
    "YAML bomb in fit --config": (lambda w: ["fit", "--config", str(w / "bomb.yaml")], "alias"),
    "YAML bomb in a sweep": (lambda w: ["sweep", str(w / "sweep.yaml"), "--dry-run"], "alias"),
    "anchors build over a bank": (lambda w: ["anchors", "build", "--checkpoint", str(w / "export"), "--out",
                                             str(w / "bank.json")], "never replaced"),
    "anchors build over a bank's images": (lambda w: ["anchors", "build", "--checkpoint", str(w / "export"),
                                                      "--out", str(w / "bank.yaml")], "not empty"),
    "anchors build into the export": (lambda w: ["anchors", "build", "--checkpoint", str(w / "export"), "--out",
                                                 str(w / "export" / "mine.json")], "inside"),
    "unknown command": (lambda w: ["scroe"], "did you mean 'score'"),
}


@pytest.mark.parametrize("name", MISTAKES)
def test_a_mistake_is_one_line_and_status_2_before_the_model_loads(name, world, capsys, monkeypatch):
    import c2s_lightning.models.export as export_module

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the mistake was found")

    monkeypatch.setattr(export_module, "load_export", no_loading)
    args, wanted = MISTAKES[name]
    before = {p: p.stat().st_mtime_ns for p in world.rglob("*") if p.is_file() and not p.is_fifo()}
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(args(world))
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert wanted in lines[0], lines[0]
    after = {p: p.stat().st_mtime_ns for p in world.rglob("*") if p.is_file() and not p.is_fifo()}
    assert after == before  # nothing written, nothing replaced
