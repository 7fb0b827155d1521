"""The comparison protocol of a trained model: how it must be asked to give the scores it learned.

A Compare2Score model answers one question, in one wording, about two images preprocessed in
one way; five answer words map to win probabilities. Asked any other way it still answers, with
wrong numbers and no error. So an export carries its protocol in ``compare2score.json`` and every
scorer (``score``, ``anchors build``, ``evaluate``, ``load_scorer``, the evaluator) takes the image
preprocessing from it; an explicit override is allowed and logged as a warning.

The file, with an example: docs/exports.md; its fingerprints (``weights_fingerprint``,
``file_digests``, ``model_fingerprint``, which keys the comparison cache and the anchor banks):
docs/fingerprint.md and ``models/fingerprint.py``. ``pad_colour`` ``"image_mean"`` (protocols
written before the colour was recorded) pads each image with its own mean colour, as those models
were trained.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
    """The image preprocessing as a plain dict: pad to a square (centred, with the CLIP mean
    colour) or not; ``image_size`` None: the processor resizes. Decoded at full resolution;
    ``ImagePreprocessing.for_encoder`` gives a model's own colour and reduced decoding."""
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
        file_digests: ``sha256:...`` of each other file that changes a comparison.
        model_fingerprint: ``sha256:...`` over the tensors, those files and the comparison
            fields; None before the export (and in exports made before it was recorded).
    """

    template: dict[str, str]
    levels: list[str]
    level_weights: list[float]
    image_preprocessing: dict[str, Any]
    backbone: dict[str, Any]
    training_datasets: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    weights_fingerprint: str | None = None
    file_digests: dict[str, str] = dataclasses.field(default_factory=dict)
    model_fingerprint: str | None = None

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
        fields = dataclasses.fields(cls)
        missing = [f.name for f in fields if f.name not in data and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ProtocolError(f"{source}: missing field(s) {', '.join(missing)}")
        return cls(**{f.name: data[f.name] for f in fields if f.name in data})

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
