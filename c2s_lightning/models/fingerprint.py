"""The model fingerprint: one hash over everything in an export that changes a comparison
(``docs/fingerprint.md``: what enters it, what changes it). The exact bytes: a sha256 of the
canonical JSON::

    {"weights": <weights fingerprint>, "files": {<name>: "sha256:<hex of its bytes>", ...},
     "protocol": <the protocol's comparison fields, ``comparison_fields``>}

**The weights fingerprint** is a sha256 over the stored tensors in sorted key order: for each
tensor the bytes ``key NUL dtype NUL shape NUL`` (UTF-8; dtype as ``float32``, shape as ``3,4``)
followed by its raw little-endian data, however the tensors are sharded (``.bin`` weights are
read the same way); an adapter folder adds ``c2s_base.json NUL`` and its base's build arguments
(canonical JSON).

**The files** are every other top-level file of the folder, byte for byte, except weight files and
their shard index, ``compare2score.json``, ``anchors.json``, ``c2s_base.json``, hidden files and
``*.md``. So a file this code does not know of still counts: an unneeded change only costs a cache
miss, a missed one would serve stale scores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
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
    the files ``backbone``'s config and processor would be saved as, and ``protocol``. It costs
    seconds for a 7B model (every tensor copied to the CPU and hashed): once per evaluation."""
    with tempfile.TemporaryDirectory(prefix="c2s-fingerprint-") as folder:
        backbone.model.config.save_pretrained(folder)
        backbone.processor.save_pretrained(folder)
        files = file_digests(folder)
    return model_fingerprint(weights_fingerprint(module.state_dict()), files, protocol)


def weights_fingerprint(source: str | os.PathLike | Mapping[str, torch.Tensor]) -> str:
    """``sha256:<hex>`` of an export folder's stored tensors, or of a name -> tensor mapping (the
    bytes: the module docstring).

    Raises:
        FileNotFoundError: the folder holds no ``*.safetensors`` or ``*.bin`` weights.
    """
    digest = hashlib.sha256()
    if isinstance(source, Mapping):
        _hash_tensors(digest, source, source.__getitem__)
        return "sha256:" + digest.hexdigest()
    folder = Path(source)
    readers = _stored_tensors(folder)
    _hash_tensors(digest, readers, lambda key: readers[key](key))
    if (folder / BASE_FILE).is_file():
        build_args = json.loads((folder / BASE_FILE).read_text(encoding="utf-8")).get("build_args", {})
        digest.update(b"c2s_base.json\0" + json.dumps(build_args, sort_keys=True).encode())
    return "sha256:" + digest.hexdigest()


def _hash_tensors(digest, names: Iterable[str], read: Callable[[str], torch.Tensor]) -> None:
    for key in sorted(names):
        tensor = read(key).detach().cpu().contiguous()
        dtype = str(tensor.dtype).removeprefix("torch.")
        digest.update(f"{key}\0{dtype}\0{','.join(map(str, tensor.shape))}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


def _stored_tensors(folder: Path) -> dict[str, Callable[[str], torch.Tensor]]:
    """Each stored tensor's name -> the reader of its file (a tensor is read only when hashed)."""
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*model*.bin"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *.safetensors or *.bin weights to fingerprint")
    readers, where = {}, {}
    for file in files:
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            handle = safe_open(str(file), framework="pt")
            read = handle.get_tensor
        else:
            handle = torch.load(file, map_location="cpu", mmap=True, weights_only=True)
            read = handle.__getitem__
        for key in handle.keys():
            if key in where:
                raise ValueError(f"tensor {key!r} is stored twice: {where[key]} and {file}")
            where[key], readers[key] = file, read
    return readers
