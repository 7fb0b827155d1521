"""The model fingerprint: one hash over everything in an export that changes a comparison.

Level logits depend on the tensors and on the files beside them: model config, tokenizer (swap
two level words' ids and every score flips sign), processor config (image size, mean, std), chat
template, an adapter's config, and on the comparison protocol. The comparison cache and the
anchor banks are keyed by the **model fingerprint**, a sha256 of the canonical JSON::

    {"weights": <weights fingerprint>, "files": {<name>: "sha256:<hex of its bytes>", ...},
     "protocol": <the protocol's comparison fields, ``comparison_fields``>}

**The weights fingerprint** is a sha256 over the stored tensors in sorted key order: for each
tensor the bytes ``key NUL dtype NUL shape NUL`` (UTF-8; dtype as ``float32``, shape as ``3,4``)
followed by its raw little-endian data. How the tensors are laid out in files (one file or
shards), file metadata and the folder's name and place do not enter it. An adapter folder's
fingerprint also covers its base's build arguments (``c2s_base.json``, canonical JSON). Folders
with only ``.bin`` weights (released checkpoints) are read the same way, tensor by tensor.

**The files** are every other top-level file of the folder, byte for byte, except what is not
the model: weight files and their shard index (hashed as tensors above), ``compare2score.json``
(it holds the fingerprint; its comparison fields enter as ``protocol``), ``anchors.json`` and
``c2s_base.json`` (already in the weights fingerprint), hidden files and ``*.md``. So a file this
code does not know of (a new tokenizer format) still counts: an unneeded change only costs a
cache miss, a missed one would serve stale scores. ``compare2score.json`` records the digest of
each file, so loading names the files changed since the export.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from c2s_lightning.infra.input_files import hash_file
from c2s_lightning.models.protocol import ANCHORS_FILE, BASE_FILE, PROTOCOL_FILE, ComparisonProtocol

COMPARISON_FIELDS = ("template", "levels", "level_weights", "image_preprocessing")
"""Protocol fields that change a comparison (with the backbone family); what a model was trained
on and its fingerprints do not."""
NOT_THE_MODEL = (PROTOCOL_FILE, ANCHORS_FILE, BASE_FILE)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf")


def comparison_fields(protocol: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a protocol dict (``ComparisonProtocol.to_dict()``) that changes a comparison.

    Raises:
        KeyError: naming a missing field.
    """
    missing = [name for name in COMPARISON_FIELDS if name not in protocol]
    if missing:
        raise KeyError(f"the comparison protocol lacks {', '.join(missing)}")
    family = (protocol.get("backbone") or {}).get("family")
    return {**{name: protocol[name] for name in COMPARISON_FIELDS}, "backbone_family": family}


def model_fingerprint(weights: str, files: Mapping[str, str], protocol: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of a weights fingerprint, the files' digests and a protocol dict."""
    text = json.dumps({"weights": weights, "files": dict(files), "protocol": comparison_fields(protocol)},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def file_digests(folder: str | os.PathLike) -> dict[str, str]:
    """``{name: "sha256:<hex>"}`` of the folder's files that enter the model fingerprint."""
    digests = {}
    for path in sorted(Path(folder).iterdir()):
        name = path.name
        if (not path.is_file() or name.startswith(".") or name in NOT_THE_MODEL or path.suffix == ".md"
                or path.suffix in WEIGHT_SUFFIXES or name.endswith(".index.json")):
            continue
        digests[name] = "sha256:" + hash_file(path, hashlib.sha256()).hexdigest()
    return digests


def stamp(protocol: ComparisonProtocol, folder: str | os.PathLike, weights: str | None = None) -> ComparisonProtocol:
    """``protocol`` with the fingerprints of ``folder`` as it is now (``weights``: its weights
    fingerprint when already computed, to save reading the tensors twice)."""
    weights = weights or weights_fingerprint(folder)
    files = file_digests(folder)
    return dataclasses.replace(protocol, weights_fingerprint=weights, file_digests=files,
                               model_fingerprint=model_fingerprint(weights, files, protocol.to_dict()))


def live_fingerprint(module: torch.nn.Module, backbone: Any, protocol: Mapping[str, Any]) -> str:
    """The model fingerprint of a model in memory: ``module``'s tensors (the live state dict),
    the files ``backbone``'s config and processor would be saved as, and ``protocol``.

    It reads every tensor (a copy to the CPU and a sha256 pass: seconds for a 7B model) and
    saves the processor once, so it is paid once per evaluation, not per comparison.
    """
    with tempfile.TemporaryDirectory(prefix="c2s-fingerprint-") as folder:
        backbone.model.config.save_pretrained(folder)
        backbone.processor.save_pretrained(folder)
        files = file_digests(folder)
    return model_fingerprint(weights_fingerprint(module.state_dict()), files, protocol)


def weights_fingerprint(source: str | os.PathLike | Mapping[str, torch.Tensor]) -> str:
    """``sha256:<hex>`` of an export folder's stored tensors, or of a name -> tensor mapping.

    See the module docstring for the exact bytes hashed.

    Raises:
        FileNotFoundError: the folder holds no ``*.safetensors`` or ``*.bin`` weights.
    """
    digest = hashlib.sha256()
    if isinstance(source, Mapping):
        _hash_tensors(digest, source)
        return "sha256:" + digest.hexdigest()
    folder = Path(source)
    _hash_tensors(digest, _folder_tensors(folder))
    base = folder / BASE_FILE
    if base.is_file():
        build_args = json.loads(base.read_text(encoding="utf-8")).get("build_args", {})
        digest.update(b"c2s_base.json\0" + json.dumps(build_args, sort_keys=True).encode())
    return "sha256:" + digest.hexdigest()


def _hash_tensors(digest, tensors: Mapping[str, torch.Tensor]) -> None:
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        dtype = str(tensor.dtype).removeprefix("torch.")
        digest.update(f"{key}\0{dtype}\0{','.join(map(str, tensor.shape))}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


class _LazyTensors(Mapping):
    """The tensors of several weight files as one mapping, each read when asked for."""

    def __init__(self, files: list[Path]):
        self._where: dict[str, Path] = {}
        self._open: dict[Path, Any] = {}
        for file in files:
            for key in self._handle(file).keys():
                if key in self._where:
                    raise ValueError(f"tensor {key!r} is stored twice: {self._where[key]} and {file}")
                self._where[key] = file

    def _handle(self, file: Path):
        if file not in self._open:
            if file.suffix == ".safetensors":
                from safetensors import safe_open

                self._open[file] = safe_open(str(file), framework="pt")
            else:
                self._open[file] = torch.load(file, map_location="cpu", mmap=True, weights_only=True)
        return self._open[file]

    def __getitem__(self, key: str) -> torch.Tensor:
        handle = self._handle(self._where[key])
        return handle.get_tensor(key) if hasattr(handle, "get_tensor") else handle[key]

    def __iter__(self):
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


def _folder_tensors(folder: Path) -> Mapping[str, torch.Tensor]:
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*model*.bin"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *.safetensors or *.bin weights to fingerprint")
    return _LazyTensors(files)
