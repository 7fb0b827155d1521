"""A trained model carries its protocol: run folders that never overwrite, an export that scores
alone and anywhere, stale banks refused, and one image preprocessing in training, evaluation and
scoring. Three short fits of the tiny model on non-square images (two with padding, same root).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from PIL import Image

from c2s_lightning.cli import main
from c2s_lightning.models.fingerprint import weights_fingerprint
from c2s_lightning.models.protocol import ComparisonProtocol

SIZES = [(40, 24), (24, 40)]  # landscape and portrait: padding changes every image


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """30 non-square noise images whose brightness is their MOS, listed in labels.csv."""
    folder = tmp_path_factory.mktemp("wide")
    rng = np.random.default_rng(0)
    rows = ["path,score,std"]
    for k in range(30):
        w, h = SIZES[k % 2]
        level = 20 + 7 * k
        pixels = np.clip(rng.normal(level, 25, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{k:02d}.png")
        rows.append(f"img{k:02d}.png,{1 + k * 4 / 29:.4f},0.3")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def padded_by_hand(path: Path) -> bytes:
    """The image centred on a square of tiny LLaVA's pad colour, with numpy: its SigLIP
    processor's image_mean 0.5 x 255 = 127.5, truncated as the release does."""
    pixels = np.asarray(Image.open(path).convert("RGB"))
    h, w, _ = pixels.shape
    side = max(h, w)
    canvas = np.full((side, side, 3), 127, dtype=np.uint8)
    canvas[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = pixels
    return canvas.tobytes()


@pytest.fixture(scope="module")
def shown():
    """Every PIL image handed to any Hugging Face image processor (what reaches the model)."""
    from transformers.image_processing_utils import BaseImageProcessor

    images: list[Image.Image] = []
    original = BaseImageProcessor.__call__

    def flatten(given):
        if isinstance(given, Image.Image):
            return [given]
        return [img for item in given for img in flatten(item)] if isinstance(given, (list, tuple)) else []

    def recording(self, *args, **kwargs):
        images.extend(flatten(kwargs.get("images", args[0] if args else None)))
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(BaseImageProcessor, "__call__", recording)
        yield images


def config(tmp: Path, data: Path, root: Path, pad: bool, plots: bool = False) -> str:
    cfg = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": 2, "val_check_interval": 2,
                    "check_val_every_n_epoch": None, "log_every_n_steps": 1, "enable_progress_bar": False,
                    "default_root_dir": str(root),
                    "logger": {"class_path": "c2s_lightning.training.loggers.WandbLogger", "init_args": {"name": "t"}}},
        "model": {"model": "tiny-llava", "finetune": "full", "lr": 0.002, "train_vision": True},
        "data": {"datasets": [{"name": "list", "root": str(data / "labels.csv"), "pairs": 16, "split": "random"}],
                 "batch_size": 4, "val_pairs": 4, "num_workers": 0, "pad_to_square": pad},
        "evaluator": {"batch_size": 16, "plots": plots},
    }
    path = tmp / f"{root.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def fit(path: str, shown: list, *extra: str) -> SimpleNamespace:
    """Run ``fit``; return its evaluator, what it showed the model and its run folder."""
    shown.clear()
    cli = main(["fit", "--config", path, *extra])
    evaluator = next(c for c in cli.trainer.callbacks if type(c).__name__ == "SoftComparisonEvaluator")
    split = cli.datamodule.mix.splits["list"]
    return SimpleNamespace(evaluator=evaluator, shown=list(shown), run=cli.run_dir.resolve(),
                           train=split.train, val=split.val, test=split.test, export=cli.run_dir.resolve() / "export")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data, shown):
    tmp = tmp_path_factory.mktemp("runs")
    padded_config = config(tmp, data, tmp / "padded", pad=True, plots=True)
    first = fit(padded_config, shown)
    first_fingerprint = weights_fingerprint(first.export)
    first_bytes = (first.export / "model.safetensors").read_bytes()
    # the same config and root again; another learning rate, so that its weights differ and
    # an overwritten first export would show in the fingerprint
    second = fit(padded_config, shown, "--model.lr", "0.001")
    plain = fit(config(tmp, data, tmp / "plain", pad=False), shown)
    return SimpleNamespace(root=tmp / "padded", first=first, second=second, plain=plain,
                           first_fingerprint=first_fingerprint, first_bytes=first_bytes)


def score(images: list[Path], export: Path, out: Path, *extra: str) -> dict[str, float]:
    assert main(["score", *map(str, images), "--checkpoint", str(export), "--out", str(out), *extra]) == 0
    return {row["path"]: float(row["score"]) for row in csv.DictReader(out.open())}


def test_two_fits_into_one_root_leave_two_run_folders_and_the_first_export_unchanged(runs):
    assert sorted((runs.root / "runs").iterdir()) == [runs.first.run, runs.second.run]
    assert weights_fingerprint(runs.first.export) == runs.first_fingerprint
    assert (runs.first.export / "model.safetensors").read_bytes() == runs.first_bytes
    assert ComparisonProtocol.load(runs.first.export).weights_fingerprint == runs.first_fingerprint
    assert weights_fingerprint(runs.second.export) != runs.first_fingerprint
    latest = runs.root / "latest"
    assert latest.resolve() == runs.second.run  # last.ckpt and export of the newest run
    assert (latest / "checkpoints" / "last.ckpt").is_file() and (runs.first.run / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((runs.root / "latest.json").read_text())["run"] == f"runs/{runs.second.run.name}"
    assert runs.second.run.name.endswith("-" + next((runs.second.run / "wandb").glob("offline-run-*")).name[-8:])


@pytest.mark.parametrize("which", ["first", "plain"])
def test_the_export_alone_scores_as_the_evaluator_did_anywhere_without_the_dataset(runs, data, shown, which,
                                                                                   tmp_path):
    run = getattr(runs, which)
    expected = {Path(r["path"]).name: r["prediction"] for r in run.evaluator.last_predictions["list"]}
    photos = tmp_path / "photos"
    photos.mkdir()
    for record in run.test:
        shutil.copy(record.path, photos / record.path.name)
    export = shutil.copytree(run.export, tmp_path / "moved" / "export")
    hidden = data.rename(data.with_name(data.name + "_away"))  # a machine without the dataset
    shown.clear()
    try:
        scores = score(sorted(photos.iterdir()), export, tmp_path / "scores.csv")
    finally:
        hidden.rename(data)
    assert len(scores) == len(expected) >= 3
    for path, value in scores.items():
        assert value == pytest.approx(expected[Path(path).name], abs=1e-5)
    # what `score` showed the model: the anchors and the photos, preprocessed as in training
    prepared = preprocessed(run, pad=which == "first")
    assert {prepared[r.name] for r in run.test} <= {img.tobytes() for img in shown} <= set(prepared.values())


def test_a_bank_of_other_weights_fails_in_one_line_until_recomputed(runs, tmp_path, capsys):
    photo = runs.second.test[0].path
    with pytest.raises(SystemExit) as error:
        main(["score", str(photo), "--checkpoint", str(runs.second.export),
              "--anchors", str(runs.first.export / "anchors.json")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert error.value.code == 2 and len(lines) == 1  # a user error: status 2, one line
    assert "another model" in lines[0] and "--recompute-anchors" in lines[0]
    score([photo], runs.second.export, tmp_path / "s.csv", "--anchors", str(runs.first.export / "anchors.json"),
          "--recompute-anchors")
    assert "images/s" in capsys.readouterr().err


def preprocessed(run: SimpleNamespace, pad: bool) -> dict[str, bytes]:
    """Every image of the run's dataset as the model should see it: padded by hand, or as it is."""
    return {r.name: padded_by_hand(r.path) if pad else Image.open(r.path).convert("RGB").tobytes()
            for r in run.train + run.val + run.test}


@pytest.mark.parametrize("which", ["first", "plain"])
def test_images_reach_the_model_as_the_protocol_says_in_training_and_evaluation(runs, which):
    # scoring: test_the_export_alone_scores_as_the_evaluator_did_anywhere_without_the_dataset
    run = getattr(runs, which)
    pad = which == "first"
    expected = preprocessed(run, pad)
    seen = {img.tobytes() for img in run.shown}
    assert seen <= set(expected.values())  # nothing reached the model any other way
    assert {expected[r.name] for r in run.test} <= seen  # the evaluator scored every test image so
    anchor_names = {a["name"] for a in json.loads((run.export / "anchors.json").read_text())["anchors"]}
    trained_only = [r.name for r in run.train if r.name not in anchor_names]
    assert any(expected[name] in seen for name in trained_only)  # training pairs, not only anchors
    assert all(img.width == img.height for img in run.shown) == pad


def test_the_predictions_table_names_each_image(runs):
    tables = list(runs.first.run.rglob("*predictions*.table.json"))
    assert tables
    table = json.loads(tables[-1].read_text())
    assert table["columns"] == ["image", "prediction", "mos"]
    assert {row[0] for row in table["data"]} == {r.name for r in runs.first.test}


def test_anchors_build_from_an_export_reproduces_its_bank(runs, tmp_path, capsys):
    out = tmp_path / "bank.json"
    assert main(["anchors", "build", "--checkpoint", str(runs.first.export), "--out", str(out)]) == 0
    built, shipped = (json.loads(p.read_text()) for p in (out, runs.first.export / "anchors.json"))
    assert [a["name"] for a in built["anchors"]] == [a["name"] for a in shipped["anchors"]]
    recorded = ComparisonProtocol.load(runs.first.export)
    assert built["model_fingerprint"] == shipped["model_fingerprint"] == recorded.model_fingerprint
    assert recorded.weights_fingerprint == runs.first_fingerprint
    assert built["image_digests"] == shipped["image_digests"]  # the copies beside each bank: the same bytes
    assert np.allclose(built["matrix"], shipped["matrix"], atol=1e-6)
    assert built["image_preprocessing"]["pad_to_square"] is True
    # the export records the pipeline training loaded with: JPEGs decoded at the tiny model's 32 px
    protocol = json.loads((runs.first.export / "compare2score.json").read_text())
    assert protocol["image_preprocessing"] == built["image_preprocessing"] == shipped["image_preprocessing"]
    assert protocol["image_preprocessing"]["decode_size"] == 32
    with pytest.raises(SystemExit) as stop:
        main(["anchors", "build", "--checkpoint", str(runs.first.export), "--out", str(out)])
    assert stop.value.code == 2 and "never replaced" in capsys.readouterr().err


def test_score_documents_its_scale_and_reads_off_minmax(runs, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "higher is better" in text and "standard normal units" in text and "--readoff {raw,minmax}" in text
    import c2s_lightning

    photo = runs.first.test[0].path
    scores = score([photo], runs.first.export, tmp_path / "minmax.csv", "--readoff", "minmax")
    api = c2s_lightning.score_images([photo], runs.first.export, readoff="minmax")
    raw = c2s_lightning.score_images([photo], runs.first.export)
    assert scores[str(photo)] == pytest.approx(api.item(), abs=1e-5) and api.item() != pytest.approx(raw.item())
