"""`score` and `evaluate` --dtype auto: bfloat16 on a CUDA device that supports it, else float32, said in
one line; the CUDA probes are monkeypatched (this machine has no GPU)."""

from __future__ import annotations

import pytest
import torch

from c2s_lightning.commands import evaluate, score


def _cuda(monkeypatch, available: bool, bf16: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)


@pytest.mark.parametrize("available, bf16, device, expected, why", [
    (True, True, None, "bfloat16", "a CUDA device with bf16"),
    (True, True, "cuda:1", "bfloat16", "a CUDA device with bf16"),
    (True, False, None, "float32", "CUDA without bf16"),
    (False, False, None, "float32", "no CUDA device"),
    (True, True, "cpu", "float32", "no CUDA device"),  # --device cpu on a GPU machine
])
def test_auto_is_bf16_only_on_a_cuda_device_that_supports_it(monkeypatch, capsys, available, bf16, device,
                                                               expected, why):
    _cuda(monkeypatch, available, bf16)
    assert score.resolve_dtype("auto", device, "score") == expected
    said = [f"score: --dtype auto -> {expected} ({why}; --dtype float32|bfloat16|float16 to choose)"]
    # said only where CUDA is in play: without it float32 is what it always was
    assert capsys.readouterr().err.splitlines() == (said if why != "no CUDA device" else [])


def test_a_named_dtype_is_kept_and_not_reported(monkeypatch, capsys):
    _cuda(monkeypatch, True, True)
    assert score.resolve_dtype("float32", None, "score") == "float32"
    assert score.resolve_dtype("auto", None, None) == "bfloat16"  # another rank: chosen, not said again
    assert capsys.readouterr().err == ""


def test_score_loads_the_model_in_the_resolved_dtype(monkeypatch, tmp_path, capsys):
    from c2s_lightning.scoring import from_export

    asked = {}

    def load_scorer(*args, **kwargs):
        asked.update(kwargs)
        raise FileNotFoundError("stop here")

    monkeypatch.setattr(from_export, "load_scorer", load_scorer)
    monkeypatch.setattr(from_export, "export_bank", lambda checkpoint, anchors: None)  # no bank needed to stop
    _cuda(monkeypatch, True, True)
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "config.json").write_text("{}")  # enough of an export folder for the name check; loading is patched
    with pytest.raises(FileNotFoundError, match="stop here"):
        score.main([str(tmp_path / "a.png"), "--checkpoint", str(tmp_path)])
    assert asked["dtype"] == "bfloat16" and "score: --dtype auto -> bfloat16" in capsys.readouterr().err


@pytest.mark.parametrize("options, precision", [
    ([], ["--trainer.precision", "bf16-true"]),
    (["--dtype", "float32"], ["--trainer.precision", "32-true"]),
    (["--trainer.accelerator", "cpu"], ["--trainer.precision", "32-true"]),
    (["--trainer.accelerator=cpu"], ["--trainer.precision", "32-true"]),
    (["--trainer.precision", "16-mixed"], ["--trainer.precision", "16-mixed"]),  # given: used as given, once
])
def test_evaluate_passes_the_dtype_as_the_trainers_precision(monkeypatch, options, precision):
    from c2s_lightning.training import lightning_cli

    commands = []
    monkeypatch.setattr(lightning_cli, "run_lightning_cli", lambda command, own: commands.append(command))
    _cuda(monkeypatch, True, True)
    evaluate.main(["--checkpoint", "model.ckpt", "--no-cache", *options])
    (command,) = commands
    found = [command[k:k + 2] for k, arg in enumerate(command) if arg == "--trainer.precision"]
    assert found == [precision]


def test_evaluate_refuses_a_dtype_and_a_precision_together(monkeypatch, capsys):
    with pytest.raises(SystemExit) as stop:
        evaluate.main(["--checkpoint", "model.ckpt", "--dtype", "bfloat16", "--trainer.precision", "32-true"])
    assert stop.value.code == 2
    assert "--dtype bfloat16 and --trainer.precision both given" in capsys.readouterr().err
