"""tools/torch_build.py, which `make install` asks which torch build to install and whether it did."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import threading
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "torch_build.py"
spec = importlib.util.spec_from_file_location("torch_build", SCRIPT)
torch_build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(torch_build)


def _fake_nvidia_smi(folder: Path, listing: str, status: int = 0) -> None:
    folder.mkdir(exist_ok=True)
    tool = folder / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\necho '{listing}'\nexit {status}\n")
    tool.chmod(0o755)


@pytest.mark.parametrize("listing, status, build", [
    ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)", 0, "cuda"),
    ("No devices were found", 6, "cpu"),  # the driver's tool present, no GPU
])
def test_auto_asks_nvidia_smi(tmp_path, monkeypatch, listing, status, build):
    _fake_nvidia_smi(tmp_path / "bin", listing, status)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert torch_build.choose("auto") == build
    assert torch_build.choose("cpu") == "cpu" and torch_build.choose("cuda") == "cuda"


def test_auto_without_nvidia_smi_is_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert torch_build.choose("auto") == "cpu"
    with pytest.raises(SystemExit, match="TORCH must be cpu, cuda or auto, not 'gpu'"):
        torch_build.choose("gpu")


def test_the_cpu_index_is_named_only_when_it_answers(tmp_path, capsys):
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "index.html").write_text("<a href='torch-2.13.0+cpu.whl'>torch</a>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert torch_build.index_args("cpu", url) == f"--extra-index-url {url}"
        assert torch_build.index_args("cuda", url) == ""
    finally:
        server.shutdown()
    assert torch_build.index_args("cpu", url) == ""  # the server is gone: left out, with a note
    assert "cannot be reached" in capsys.readouterr().err


def test_check_names_the_build_installed(capsys):
    installed = "cuda" if torch.version.cuda else "cpu"
    other = "cpu" if installed == "cuda" else "cuda"
    assert torch_build.check(installed) == 0
    assert torch_build.check(other) == 1
    assert "make clean" in capsys.readouterr().err
