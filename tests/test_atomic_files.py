"""Outputs are written whole or not at all: a write that fails midway leaves the previous file (or
folder) as it was and no temporary file behind, for every kind of file the project writes."""

from __future__ import annotations

import copy
import errno
import json
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure

from c2s_lightning.infra import atomic_files
from c2s_lightning.infra.atomic_files import (
    atomic_open, check_output_file, copy_file, publish_folder, staging_folder, streaming_file, write_json,
    write_text,
)
from c2s_lightning.cli import main


def disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def only(folder: Path) -> list[str]:
    """Every name in ``folder``: a failed write must leave no temporary file next to its target."""
    return sorted(p.name for p in folder.iterdir())


def test_a_writer_failing_midway_leaves_the_old_file(tmp_path):
    path = write_text(tmp_path / "scores.csv", "path,score\na.png,1.0\n")
    with pytest.raises(RuntimeError), atomic_open(path, newline="") as handle:
        handle.write("path,score\nb.png,")  # half of the new content, then the writer dies
        raise RuntimeError("killed midway")
    assert path.read_text() == "path,score\na.png,1.0\n" and only(tmp_path) == ["scores.csv"]


def test_a_full_disk_at_flush_leaves_the_old_file(tmp_path, monkeypatch):
    path = write_json(tmp_path / "state.json", {"runs": {"a": 1}})
    old = path.read_bytes()
    monkeypatch.setattr(atomic_files, "_fsync_file", disk_full)
    for write in (lambda: write_text(path, "new"), lambda: write_json(path, {"runs": {}}),
                  lambda: copy_file(__file__, path)):
        with pytest.raises(OSError, match="space"):
            write()
        assert path.read_bytes() == old and only(tmp_path) == ["state.json"]


def test_a_streamed_log_is_partial_while_written_and_kept_as_interrupted_on_an_exception(tmp_path):
    with streaming_file(tmp_path / "output.log") as log:
        log.write("step 1\n")
        log.flush()
        assert only(tmp_path) == ["output.log.partial"]
        assert (tmp_path / "output.log.partial").read_text() == "step 1\n"  # followable while it runs
    assert only(tmp_path) == ["output.log"] and (tmp_path / "output.log").read_text() == "step 1\n"
    with pytest.raises(KeyboardInterrupt), streaming_file(tmp_path / "b" / "output.log") as log:
        log.write("step 1\n")
        raise KeyboardInterrupt
    assert only(tmp_path / "b") == ["output.log.interrupted"]
    assert (tmp_path / "b" / "output.log.interrupted").read_text() == "step 1\n"


def test_new_files_get_the_usual_permissions(tmp_path):
    # a temp file from mkstemp is private (0600); what lands under the real name must not be
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert (write_text(tmp_path / "ours", "x").stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)


def test_figures_and_anchor_banks_keep_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    from c2s_lightning.evaluation.scatter import scatter_png
    from c2s_lightning.data.records import IQARecord
    from c2s_lightning.scoring.bank import AnchorBank

    png = scatter_png(tmp_path / "plots" / "test_kadid.png", [0.1, 0.5, 0.9, 1.2], [1.0, 2.0, 3.0, 4.5])
    old_png = png.read_bytes()
    records = [IQARecord(path=tmp_path / f"{i}.png", mos=float(i), std=0.1, ref=None, dataset="d") for i in range(5)]
    for record in records:
        record.path.write_bytes(b"an anchor image")  # a bank carries copies of its images
    bank = AnchorBank.from_records(records, dataset="d", split="all")
    bank_path = bank.save(tmp_path / "bank.json")
    old_bank = bank_path.read_bytes()

    def savefig_dies(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG\r\n")  # the start of a PNG, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", savefig_dies)
    with pytest.raises(KeyboardInterrupt):
        scatter_png(png, [0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])
    monkeypatch.setattr(atomic_files, "_fsync_file", disk_full)
    with pytest.raises(OSError):
        bank.save(bank_path)
    assert png.read_bytes() == old_png and only(png.parent) == ["test_kadid.png"]
    assert bank_path.read_bytes() == old_bank and len(json.loads(old_bank)["anchors"]) == 5
    assert [p.name for p in tmp_path.rglob(".*")] == []


def test_a_folder_is_published_whole_or_not_at_all(tmp_path, monkeypatch):
    export = tmp_path / "export"
    export.mkdir()
    (export / "config.json").write_text("old")
    staged = staging_folder(export)
    (staged / "config.json").write_text("new")
    (staged / "model.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(atomic_files, "_fsync_file", disk_full)
    with pytest.raises(OSError):
        publish_folder(staged, export, replace=True)
    assert only(export) == ["config.json"] and (export / "config.json").read_text() == "old"
    monkeypatch.undo()
    publish_folder(staged, export, replace=True)
    assert only(export) == ["config.json", "model.safetensors"] and only(tmp_path) == ["export"]
    other = staging_folder(export)
    with pytest.raises(FileExistsError, match="never replaced"):
        publish_folder(other, export)  # without replace=True a folder that holds something stays
    assert only(tmp_path) == ["export"]


def test_export_failing_midway_leaves_no_folder_and_never_touches_an_earlier_one(tiny_llava, tmp_path,
                                                                                 monkeypatch):
    from c2s_lightning.models.export import export_pretrained

    earlier = export_pretrained(tiny_llava, out_dir=tmp_path / "earlier")
    before = {p.name: p.read_bytes() for p in earlier.iterdir()}
    changed = copy.deepcopy(tiny_llava.model)
    with torch.no_grad():
        next(changed.parameters()).add_(1.0)  # other weights: an in-place write would change the file
    with pytest.raises(FileExistsError, match="never replaced"):
        export_pretrained(changed, tiny_llava.processor, out_dir=earlier)

    def dies(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    # the weights are written, then the disk fills
    monkeypatch.setattr(type(tiny_llava.processor), "save_pretrained", dies)
    with pytest.raises(OSError):
        export_pretrained(changed, tiny_llava.processor, out_dir=tmp_path / "new")
    assert {p.name: p.read_bytes() for p in earlier.iterdir()} == before
    assert only(tmp_path) == ["earlier"]  # no half export, no staging folder left


def test_output_file_is_checked_before_any_work(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"x")
    with pytest.raises(ValueError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(ValueError, match="also an input"):
        check_output_file(tmp_path / "." / "a.png", [image])
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_output_file(image / "scores.csv")
    assert check_output_file(tmp_path / "new" / "scores.csv") == tmp_path / "new" / "scores.csv"
    assert not (tmp_path / "new").exists()  # nothing is created by the check


@pytest.mark.parametrize("out", ["folder", "input", "under_a_file"])
def test_score_refuses_an_unusable_out_before_loading_anything(tmp_path, capsys, out):
    image = tmp_path / "a.png"
    image.write_bytes(b"not even an image")
    target = {"folder": tmp_path, "input": image, "under_a_file": image / "scores.csv"}[out]
    # the export holds no model and the bank does not exist: the --out check must come first and end the command
    export = tmp_path / "export"
    export.mkdir()
    (export / "config.json").write_text("{}")  # passes the name check (a folder that may hold a model), no more
    with pytest.raises(SystemExit) as exit_info:
        main(["score", str(image), "--checkpoint", str(export), "--anchors",
              str(tmp_path / "no_bank.json"), "--out", str(target)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --out ") and "Traceback" not in err[0]
    assert image.read_bytes() == b"not even an image"


def test_a_checkpoint_save_cut_off_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from c2s_lightning.infra.checkpoint_files import AtomicCheckpointIO

    io, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"global_step": 3, "w": torch.ones(4)}, path)
    real_save = torch.save

    def save_dies(obj, target, *args, **kwargs):
        real_save(obj, target, *args, **kwargs)
        Path(target).write_bytes(Path(target).read_bytes()[:100])  # the bytes written before the kill
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", save_dies)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"global_step": 6, "w": torch.zeros(4)}, path)
    assert torch.load(path, weights_only=True)["global_step"] == 3 and only(path.parent) == ["last.ckpt"]
