"""Ordinary mistakes end a command with one line naming what and where, before any work starts:
a mistyped backbone, files that are not checkpoints, bad data inside ``fit``; ``--debug`` and
``C2S_DEBUG=1`` show the traceback instead."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch

from c2s_lightning.cli import main
from c2s_lightning.data.records import DatasetError
from c2s_lightning.models.backbones import build_backbone, check_model_name

from test_cli import QUICKSTART, override


class NotAllowed:
    """A class safe loading refuses: stands for whatever a foreign checkpoint pickles."""


def one_error_line(capsys, args: list[str]) -> str:
    """Run ``args``; the command must exit with status 2 and exactly one ``error:`` line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    # A log handler that an earlier test bound to its own (now closed) captured stream reports a
    # "--- Logging error ---" with a traceback of its own: pytest's doing, not the command's output.
    err = capsys.readouterr().err
    assert err.count("Traceback") == err.count("--- Logging error ---"), err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_a_mistyped_backbone_fails_at_once_naming_the_families(capsys, tmp_path, monkeypatch):
    line = one_error_line(capsys, ["fit", "--config", QUICKSTART, "--model.model", "tiny-llavaa",
                                   "--trainer.default_root_dir", str(tmp_path)])
    assert "'tiny-llavaa'" in line and "tiny-qwen2-vl" in line and "did you mean 'tiny-llava'" in line
    assert not [*tmp_path.rglob("*.wandb"), *tmp_path.rglob("*.ckpt")]  # nothing ran: no W&B run, no checkpoint
    with pytest.raises(ValueError, match="no such folder"):
        check_model_name(str(tmp_path / "missing_export"))
    with pytest.raises(ValueError, match="is a file"):
        check_model_name(QUICKSTART)
    for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    check_model_name("llava-hf/llava-1.5-7b-hf")  # online a hub id passes: the hub decides


def test_offline_a_hub_id_missing_from_the_cache_fails_without_a_hub_call(monkeypatch):
    import transformers

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_hub(*args, **kwargs):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", no_hub)
    with pytest.raises(ValueError, match="not in the local Hugging Face cache and HF_HUB_OFFLINE"):
        build_backbone("someone/not-downloaded")


def checkpoint_like(kind: str, folder: Path) -> Path:
    """A file given as a checkpoint that is none (or one that safe loading refuses)."""
    path = folder / f"{kind}.ckpt"
    if kind == "empty":
        path.touch()
    elif kind == "text":
        path.write_text("epoch=3 step=120\nthis is a note, not a checkpoint\n")
    else:
        torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": NotAllowed()}, path)
        if kind == "cut":
            path.write_bytes(path.read_bytes()[:200])  # a save interrupted after 200 bytes
    return path


@pytest.mark.parametrize("command", ["export", "fit", "evaluate"])
@pytest.mark.parametrize("kind", ["empty", "text", "cut", "unsafe"])
def test_a_file_that_is_no_checkpoint_gives_one_line_and_no_unsafe_advice(capsys, tmp_path, command, kind):
    ckpt = checkpoint_like(kind, tmp_path)
    args = {"export": ["export", "--ckpt", str(ckpt), "--out", str(tmp_path / "out")],
            "fit": ["fit", "--config", QUICKSTART, "--ckpt_path", str(ckpt)],
            "evaluate": ["evaluate", "--checkpoint", str(ckpt), "--config", QUICKSTART]}[command]
    line = one_error_line(capsys, args + ["--trainer.default_root_dir", str(tmp_path / "root")]
                          if command != "export" else args)
    assert str(ckpt) in line or kind == "unsafe"
    expected = {"empty": "empty (0 bytes)", "text": "a text file", "cut": "cut short",
                "unsafe": "safe loading (weights_only=True) refused it: Unsupported global"}[kind]
    assert expected in line
    assert "weights_only=False" not in line and "weights_only` set to `False" not in line
    assert not (tmp_path / "out").exists()


def test_bad_data_inside_fit_is_one_line(capsys, tmp_path):
    empty = tmp_path / "kadid"
    empty.mkdir()  # no dmos.csv, no images
    line = one_error_line(capsys, ["fit", "--config", QUICKSTART, "--config", override(tmp_path, empty)])
    assert "dmos.csv" in line and str(empty) in line


def test_debug_shows_the_traceback(capsys, tmp_path, monkeypatch):
    args = ["data", "inspect", "kadid10k", str(tmp_path)]
    assert "dmos.csv" in one_error_line(capsys, args)
    with pytest.raises(DatasetError):
        main(args + ["--debug"])
    monkeypatch.setenv("C2S_DEBUG", "1")
    with pytest.raises(DatasetError):
        main(args)


def test_a_checkpoint_written_by_torch_save_passes_the_check(tmp_path):
    from c2s_lightning.infra.checkpoint_files import check_checkpoint_file

    path = tmp_path / "ok.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1)}}, path)
    assert check_checkpoint_file(path) == path and zipfile.is_zipfile(path)
    legacy = tmp_path / "legacy.ckpt"
    torch.save({"w": torch.ones(1)}, legacy, _use_new_zipfile_serialization=False)
    assert check_checkpoint_file(legacy) == legacy
