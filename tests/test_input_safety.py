"""Inputs are never written over, special files never hang a reader, YAML bombs fail fast, the
comparison cache serves several threads, every image format Pillow opens is scored, and
``score`` holds a bounded number of decoded bytes."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

import c2s_lightning
from c2s_lightning.cli import main
from c2s_lightning.commands import score as score_cmd
from c2s_lightning.data.image_checks import unreadable_images
from c2s_lightning.data.readers.checks import finish
from c2s_lightning.data.readers.lists import read_list
from c2s_lightning.data.records import DatasetError
from c2s_lightning.infra.user_errors import is_user_error, one_line
from c2s_lightning.infra.yaml_files import AliasBombError, safe_load
from c2s_lightning.scoring.bank import AnchorBank

from test_user_error_table import BOMB, world  # noqa: F401  (fixture)
from tiny_scorer import png


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail instead of hanging: a read that blocks on a FIFO is interrupted after ``seconds``."""
    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_yaml_bomb_fails_in_a_second_and_ordinary_aliases_still_load():
    start = time.perf_counter()
    with pytest.raises(AliasBombError, match="alias"):
        safe_load(BOMB)
    assert time.perf_counter() - start < 2
    with pytest.raises(AliasBombError, match="recursive"):
        safe_load("a: &x [1, *x]\n")
    text = "base: &base {lr: 0.1, layers: [1, 2]}\nsmall: *base\nlarge: {<<: *base, lr: 0.2}\n"
    assert safe_load(text) == yaml.safe_load(text)  # the reference loader on a harmless document


def test_a_run_folder_whose_config_is_a_yaml_bomb_is_refused_by_the_report_reader(tmp_path):
    from c2s_lightning.reporting.runs import load_run

    (tmp_path / "config.yaml").write_text(BOMB)  # report walks the config into dotted keys
    with deadline(60), pytest.raises(AliasBombError):
        load_run(tmp_path)


def test_special_files_are_refused_by_readers_and_scored_as_error_rows(world, tmp_path, capsys):  # noqa: F811
    folder = tmp_path / "photos"
    png(folder / "a.png", 1)
    Image.open(png(folder / "b.png", 2)).save(folder / "c.avif")  # a format the old suffix list left out
    os.mkfifo(folder / "d.png")
    os.mkfifo(tmp_path / "list.csv")
    with deadline(60):
        with pytest.raises(DatasetError, match="FIFO"):
            read_list(tmp_path / "list.csv")
        (tmp_path / "good.csv").write_text("path,score\nphotos/a.png,1\nphotos/d.png,2\n")
        with pytest.raises(DatasetError, match=r"row 3: listed image .*d\.png is a FIFO"):
            finish(read_list(tmp_path / "good.csv"), source=tmp_path)
        assert "FIFO" in unreadable_images([folder / "d.png"], "full")[folder / "d.png"]
        code = main(["score", str(folder), "/dev/zero", "--checkpoint", str(world / "export"), "--no-cache",
                     "--out", str(tmp_path / "scores.csv"), "--device", "cpu"])
    assert code == 1  # two images could not be scored
    rows = {Path(r["path"]).name: r for r in csv.DictReader((tmp_path / "scores.csv").open())}
    assert sorted(rows) == ["a.png", "b.png", "c.avif", "d.png", "zero"]
    assert "FIFO" in rows["d.png"]["error"] and "character device" in rows["zero"]["error"]
    assert rows["c.avif"]["score"] and not rows["c.avif"]["error"]


def test_a_quoted_file_name_with_a_line_break_is_one_row(tmp_path):
    png(tmp_path / "odd\nname.png", 1)
    png(tmp_path / "plain.png", 2)
    (tmp_path / "list.csv").write_text('path,score\n"odd\nname.png",3.5\nplain.png,4\n')
    rows = read_list(tmp_path / "list.csv")
    assert [(r.record.name, r.record.mos, r.where.rsplit(", ", 1)[1]) for r in rows] == [
        ("odd\nname.png", 3.5, "row 2"), ("plain.png", 4.0, "row 4")]
    assert [r.path.name for r in finish(rows, source=tmp_path)] == ["odd\nname.png", "plain.png"]


def test_a_bank_never_writes_into_an_occupied_images_folder(world, tmp_path):  # noqa: F811
    bank = AnchorBank.load(world / "bank.json")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "holiday.jpg").write_bytes(b"someone's photo")
    with pytest.raises(FileExistsError, match="not empty"):
        bank.save(tmp_path / "mine.json")
    assert [p.name for p in tmp_path.rglob("*")] == ["mine", "holiday.jpg"]  # nothing staged is left
    saved = bank.save(tmp_path / "new.json")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [f"{k:02d}_{k:02d}_a{2 * k}.png" for k in range(5)]
    assert AnchorBank.load(saved).anchors[0].path.read_bytes() == bank.anchors[0].path.read_bytes()


def test_create_metric_serves_several_threads_with_the_cache_on(world, tmp_path):  # noqa: F811
    metric = c2s_lightning.create_metric(world / "export", device="cpu", cache=tmp_path / "cache")
    images = sorted((world / "images").glob("*.png"))
    alone = metric(images)
    results, errors = [], []

    def call():
        try:
            results.append(metric(images))
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(repr(error))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 3
    assert all(torch.equal(r, alone) for r in results)
    assert metric.scorer.comparator.counts()["reused"] > 0  # the threads read the cache the first call wrote


def test_score_chunks_follow_the_decoded_bytes_not_the_image_count(world, tmp_path, monkeypatch):  # noqa: F811
    paths = [png(tmp_path / f"big{i}.png", i, size=(600, 800)) for i in range(5)]  # 1.44 MB decoded each
    paths.insert(2, tmp_path / "missing.png")
    scorer = c2s_lightning.create_metric(world / "export", device="cpu", cache=False).scorer
    chunks = []
    real = scorer.score
    # the bytes a chunk holds: its distinct images (an unreadable one is scored as a stand-in, a repeat of another)
    monkeypatch.setattr(scorer, "score", lambda images, progress=None: chunks.append(
        sum(i.width * i.height * 3 for i in {id(i): i for i in images}.values())) or real(images, progress))
    rows = score_cmd.score_paths(scorer, paths, workers=2, chunk=64, chunk_bytes=3_000_000)
    image_bytes = 800 * 800 * 3  # padded to a square as the export's protocol says
    assert chunks == [2 * image_bytes, 2 * image_bytes, image_bytes]  # a chunk closes once it holds 3 MB
    assert [r[0] for r in rows] == list(map(str, paths)) and "missing.png" in rows[2][2]
    alone = score_cmd.score_paths(scorer, paths, workers=0, chunk=1)
    assert [r[1] for r in rows] == pytest.approx([r[1] for r in alone], abs=1e-9)


def test_a_full_disk_during_export_is_one_line_naming_the_folder(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    from c2s_lightning.models.backbones import build_backbone
    from c2s_lightning.models.export import export_pretrained

    def full(*args, **kwargs):  # what safetensors raises when the disk fills up mid-write
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr("transformers.modeling_utils.safe_save_file", full)
    with pytest.raises(OSError) as error:
        export_pretrained(build_backbone("tiny-llava", seed=5), out_dir=tmp_path / "export")
    assert is_user_error(error.value)
    assert one_line(error.value) == f"{tmp_path / 'export'}: no space left on device"
    assert list(tmp_path.iterdir()) == []  # the staged folder is gone
    assert is_user_error(SafetensorError("I/O error: Read-only file system (os error 30)"))
    assert not is_user_error(SafetensorError("Error while deserializing header: HeaderTooLarge"))
