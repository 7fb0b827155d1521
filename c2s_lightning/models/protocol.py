"""The comparison protocol of a trained model: how it must be asked to give the scores it learned.

A Compare2Score model answers one question, in one wording, about two images preprocessed in
one way; five answer words map to win probabilities. Asked any other way it still answers, with
wrong numbers and no error. So an export carries its protocol in ``compare2score.json`` and every
scorer (``score``, ``anchors build``, ``evaluate``, ``load_scorer``, the evaluator) takes the image
preprocessing from it; an explicit override is allowed and logged as a warning. The file::

    {"format_version": 1,
     "template": {"prompt": "<image> <image> Compared with ...", "answer_prefix": "The quality of
                  the second image is", "answer": "... is {level}.", "chat_template_family": "llava"},
     "levels": ["inferior", "worse", "similar", "better", "superior"],
     "level_weights": [0.0, 0.25, 0.5, 0.75, 1.0],
     "image_preprocessing": {"pad_to_square": true, "pad_colour": "image_mean", "image_size": null},
     "backbone": {"family": "llava", "build_args": {"model": "tiny-llava", ...}},
     "training_datasets": [{"name": "kadid10k", "label": "kadid10k", "root": "...", "split": "random",
                            "split_index": 1, "split_options": {...}, "reader_options": {}}],
     "weights_fingerprint": "sha256:<64 hex digits>"}

**The weights fingerprint** is a sha256 over the stored tensors in sorted key order: for each
tensor the bytes ``key NUL dtype NUL shape NUL`` (UTF-8; dtype as ``float32``, shape as ``3,4``)
followed by its raw little-endian data. How the tensors are laid out in files (one file or
shards), file metadata and the folder's name and place do not enter it. An adapter folder's
fingerprint also covers its base's build arguments (``c2s_base.json``, canonical JSON). Folders
with only ``.bin`` weights (released checkpoints) are read the same way, tensor by tensor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from c2s_lightning.infra.atomic_files import write_text
from c2s_lightning.data import prompts
from c2s_lightning.data.images import ImagePreprocessing
from c2s_lightning.data.levels import LEVEL_WEIGHTS, LEVELS

log = logging.getLogger(__name__)

PROTOCOL_FILE = "compare2score.json"
FORMAT_VERSION = 1
ANCHORS_FILE = "anchors.json"
"""In an export: the anchor bank of the evaluator that trained it (``AnchorBank``)."""
BASE_FILE = "c2s_base.json"
"""In an adapter folder: ``{"build_args": {...}}`` to rebuild the base with ``build_backbone``."""


class ProtocolError(ValueError):
    """A protocol file that is missing fields, or that this version cannot honour."""


def image_preprocessing(pad_to_square: bool = False) -> dict[str, Any]:
    """The image preprocessing as a plain dict: pad to a square (centred, with the image's own
    mean colour per RGB channel, rounded) or not; ``image_size`` None: the processor resizes.
    Decoded at full resolution; ``ImagePreprocessing.to_dict`` adds the reduced decoding."""
    return ImagePreprocessing(pad_to_square=bool(pad_to_square)).to_dict()


def current_template(family: str) -> dict[str, str]:
    """The comparison template this version asks with (``data/prompts.py``) for a chat family."""
    return {"prompt": prompts.COMPARISON_PROMPT, "answer_prefix": prompts.COMPARISON_ANSWER_PREFIX,
            "answer": prompts.COMPARISON_ANSWER, "chat_template_family": family}


@dataclasses.dataclass
class ComparisonProtocol:
    """Everything besides the weights that decides a model's scores (see the module docstring).

    Attributes:
        template: ``prompt``, ``answer_prefix``, ``answer`` and ``chat_template_family``.
        levels: The answer words, worst to best.
        level_weights: Win probability of each level.
        image_preprocessing: See ``image_preprocessing()``.
        backbone: ``family`` and ``build_args`` (``build_backbone`` arguments of the base).
        training_datasets: What the model was trained on: name, label, root, split and options.
        weights_fingerprint: ``sha256:...`` of the exported tensors; None before the export.
    """

    template: dict[str, str]
    levels: list[str]
    level_weights: list[float]
    image_preprocessing: dict[str, Any]
    backbone: dict[str, Any]
    training_datasets: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    weights_fingerprint: str | None = None

    @property
    def pad_to_square(self) -> bool:
        return bool(self.image_preprocessing.get("pad_to_square", False))

    @classmethod
    def for_backbone(cls, backbone, preprocessing: dict | None = None,
                     training_datasets: list[dict] | None = None) -> ComparisonProtocol:
        """The protocol this version uses with ``backbone`` (a ``Backbone``); without
        ``preprocessing``: no padding, JPEGs decoded at the model's input size."""
        preprocessing = preprocessing or ImagePreprocessing.for_encoder(getattr(backbone, "encoder", None)).to_dict()
        return cls(template=current_template(backbone.family), levels=list(LEVELS),
                   level_weights=list(LEVEL_WEIGHTS), image_preprocessing=preprocessing,
                   backbone={"family": backbone.family, "build_args": dict(backbone.build_args)},
                   training_datasets=list(training_datasets or []))

    def with_preprocessing(self, pad_to_square: bool | None) -> ComparisonProtocol:
        """This protocol, or a copy whose padding is overridden (logged when it differs)."""
        if pad_to_square is None or bool(pad_to_square) == self.pad_to_square:
            return self
        log.warning("overriding the model's image preprocessing: pad_to_square=%s, but it was trained "
                    "with pad_to_square=%s (compare2score.json)", bool(pad_to_square), self.pad_to_square)
        return dataclasses.replace(self, image_preprocessing={**self.image_preprocessing,
                                                              "pad_to_square": bool(pad_to_square)})

    def check_current(self, source: str = "the protocol") -> None:
        """Refuse a protocol whose question or answer words differ from what this version asks."""
        asked = current_template(self.template.get("chat_template_family", ""))
        for key in ("prompt", "answer_prefix", "answer"):
            if self.template.get(key) != asked[key]:
                raise ProtocolError(f"{source}: the model was trained with {key} {self.template.get(key)!r}, "
                                    f"but this version asks {asked[key]!r}; its scores would be meaningless")
        if list(self.levels) != list(LEVELS) or [float(w) for w in self.level_weights] != list(LEVEL_WEIGHTS):
            raise ProtocolError(f"{source}: levels {self.levels} / weights {self.level_weights} differ from "
                                f"this version's {list(LEVELS)} / {list(LEVEL_WEIGHTS)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, ``format_version`` first."""
        return {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "protocol") -> ComparisonProtocol:
        """Inverse of ``to_dict``; a missing field or another format version names ``source``."""
        if data.get("format_version") != FORMAT_VERSION:
            raise ProtocolError(f"{source}: unsupported format_version {data.get('format_version')!r} "
                                f"(this version reads {FORMAT_VERSION})")
        names = [f.name for f in dataclasses.fields(cls)]
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise ProtocolError(f"{source}: missing field(s) {', '.join(missing)}")
        return cls(**{name: data[name] for name in names if name in data})

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``compare2score.json`` into ``folder`` (atomically); returns its path."""
        return write_text(Path(folder) / PROTOCOL_FILE, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | os.PathLike) -> ComparisonProtocol:
        """Read ``compare2score.json`` from an export folder (or the file itself)."""
        path = Path(folder)
        path = path / PROTOCOL_FILE if path.is_dir() else path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ProtocolError(f"{path}: cannot read the protocol ({error})") from error
        return cls.from_dict(data, source=str(path))


def has_protocol(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is an export that carries ``compare2score.json``."""
    return (Path(folder) / PROTOCOL_FILE).is_file()


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
