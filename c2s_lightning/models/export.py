"""Write a trained backbone as a Hugging Face folder, and load one back.

A merged export is an ordinary ``save_pretrained`` folder (config, safetensors weights, processor
files) that ``AutoModelForImageTextToText.from_pretrained`` reads. An unmerged LoRA export holds
the adapter alone (``adapter_model.safetensors`` + ``adapter_config.json``, with any fully
trained projector) and ``c2s_base.json``, the ``build_backbone`` arguments of its base model.
Merging never touches the live model: merged weights are computed into a fresh state dict.

Either way the folder also holds ``compare2score.json``, the comparison protocol with the model
fingerprint (``models/protocol.py``, ``models/fingerprint.py``), and, when one is given,
``anchors.json`` with its anchor images: the folder alone is then a complete scorer. The folder is
built under a temporary name and renamed when complete; an existing non-empty folder is never replaced.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import torch
from peft import PeftModel
from peft.tuners.lora import LoraLayer

from c2s_lightning.infra.atomic_files import is_nonempty_folder, publish_folder, staging_folder
from c2s_lightning.infra.user_errors import disk_error
from c2s_lightning.models.adapters import peft_quietly
from c2s_lightning.models.backbones import Backbone, assemble_backbone, build_backbone
from c2s_lightning.models.quiet_loading import no_transformers_bars
from c2s_lightning.models.fingerprint import stamp, weights_fingerprint
from c2s_lightning.models.protocol import (
    ANCHORS_FILE, BASE_FILE, PROTOCOL_FILE, ComparisonProtocol, ProtocolError, has_protocol,
)

log = logging.getLogger(__name__)


def export_pretrained(backbone_or_model, processor=None, out_dir: str | os.PathLike = "export", merge_lora: bool = True,
                      protocol: ComparisonProtocol | None = None, anchor_bank=None) -> Path:
    """Save a backbone (or a bare model + processor) as a Hugging Face folder with its protocol.

    Args:
        backbone_or_model: A ``Backbone``, or a model (plain or peft-wrapped).
        processor: The processor; taken from the backbone when one is given.
        out_dir: Folder to write; it must be missing or empty.
        merge_lora: For a peft model, fold the adapters into the weights (True) or write the
            adapter alone plus the base's build arguments (False; needs a ``Backbone``).
        protocol: The comparison protocol the model was trained with (image preprocessing,
            training datasets); default: this version's template with no padding. Its
            fingerprints are filled in from the written folder (``fingerprint.stamp``).
        anchor_bank: An ``AnchorBank`` whose matrix this same model computed; written as
            ``anchors.json`` (plus its images), its matrix recorded under the export's model fingerprint.

    Returns:
        The folder.

    Raises:
        FileExistsError: ``out_dir`` exists and is not empty.
    """
    out = Path(out_dir)
    if is_nonempty_folder(out):  # before the (long) save, not only at the final rename
        raise FileExistsError(f"{out} exists and is not empty; it is never replaced: choose another folder")
    staged = staging_folder(out)
    try:
        model, processor = _save_weights(backbone_or_model, processor, staged, merge_lora)
        protocol = stamp(protocol or _default_protocol(backbone_or_model, model), staged)
        protocol.save(staged)
        if anchor_bank is not None:
            anchor_bank.set_matrix(anchor_bank.matrix, protocol.model_fingerprint,
                                   protocol.image_preprocessing, protocol=protocol.to_dict())
            anchor_bank.save(staged / ANCHORS_FILE)
    except BaseException as error:
        shutil.rmtree(staged, ignore_errors=True)
        full = disk_error(error, out)  # a library's own error type for a full disk: one line naming the folder
        if full is not None and full is not error:
            raise full from error
        raise
    return publish_folder(staged, out)


def _default_protocol(backbone_or_model, model) -> ComparisonProtocol:
    if isinstance(backbone_or_model, Backbone):
        return ComparisonProtocol.for_backbone(backbone_or_model)
    return ComparisonProtocol.for_backbone(SimpleNamespace(family=model.config.model_type, build_args={}))


@no_transformers_bars()
def _save_weights(backbone_or_model, processor, out: Path, merge_lora: bool):
    """The Hugging Face files of the model and processor; returns the plain model and processor."""
    model, build_args = backbone_or_model, None
    if isinstance(model, Backbone):
        model, processor, build_args = model.model, model.processor, model.build_args
    if processor is None:
        raise ValueError("export_pretrained needs the processor (or a Backbone that holds it)")
    if isinstance(model, PeftModel) and not merge_lora:
        if not build_args:
            raise ValueError("an unmerged adapter export needs a Backbone, to record how to rebuild its base")
        model.save_pretrained(out)
        (out / BASE_FILE).write_text(json.dumps({"build_args": build_args}, indent=2))
    elif isinstance(model, PeftModel):
        model.get_base_model().save_pretrained(out, state_dict=merged_state_dict(model))
    else:
        model.save_pretrained(out)
    processor.save_pretrained(out)
    return model, processor


def merged_state_dict(model: PeftModel) -> dict[str, torch.Tensor]:
    """State dict of the base model with LoRA deltas added and trained module copies swapped in.

    Keys are the plain model's (no ``base_layer``, ``lora_``, ``modules_to_save`` parts).
    """
    adapter = model.active_adapter
    base = model.get_base_model()
    deltas = {
        f"{name}.base_layer.weight": module.get_delta_weight(adapter)
        for name, module in base.named_modules()
        if isinstance(module, LoraLayer) and adapter in module.lora_A
    }
    merged = {}
    for key, value in base.state_dict().items():
        if ".lora_" in key or ".original_module." in key:
            continue
        value = value + deltas[key].to(value.dtype) if key in deltas else value
        plain = key.replace(".base_layer.", ".").replace(f".modules_to_save.{adapter}.", ".")
        merged[plain] = value.detach().clone()
    return merged


def load_backbone(folder: str | os.PathLike, **kwargs) -> Backbone:
    """Load an exported folder: ``build_backbone`` on it, or base + adapter for an adapter folder.

    The backbone's ``model_id`` is the folder's weights fingerprint (``weights_fingerprint``), not
    where it is stored; ``load_export`` replaces it with the model fingerprint.

    Args:
        folder: Written by ``export_pretrained`` (or any Hugging Face / mPLUG-Owl2 folder).
        **kwargs: Passed to ``build_backbone`` (e.g. ``dtype``); for an adapter folder they
            override the recorded base arguments.
    """
    folder = Path(folder)
    base_file = folder / BASE_FILE
    if not base_file.is_file():
        backbone = build_backbone(str(folder), **kwargs)
    else:
        build_args = {**json.loads(base_file.read_text())["build_args"], **kwargs}
        base = build_backbone(**build_args)
        with no_transformers_bars(), peft_quietly():
            model = PeftModel.from_pretrained(base.model, str(folder))
        backbone = assemble_backbone(model.eval(), base.processor, model_id=str(folder),
                                     rating=build_args.get("rating"))
        backbone.build_args = build_args
    if folder.is_dir():
        backbone.model_id = weights_fingerprint(folder)
    return backbone


def load_export(folder: str | os.PathLike, **kwargs) -> tuple[Backbone, ComparisonProtocol]:
    """An export and its protocol, checked: the question it was trained with is the one this
    version asks, and its weights are the ones ``compare2score.json`` was written for.

    The protocol comes back with the folder's fingerprints as it is now, and the backbone's
    ``model_id`` is its model fingerprint: a file edited after the export is reported and gets
    neither the exported model's cached comparisons nor its anchor matrix (docs/fingerprint.md).
    A folder without ``compare2score.json`` gets this version's protocol without padding, with a warning.

    Raises:
        ProtocolError: the template or level words differ, or the weights were changed after export.
    """
    folder = Path(folder)
    recorded = ComparisonProtocol.load(folder) if has_protocol(folder) else None
    if recorded is not None:
        recorded.check_current(str(folder / PROTOCOL_FILE))
    backbone = load_backbone(folder, **kwargs)
    if recorded is None:
        log.warning("%s has no %s: scoring with this version's template and no padding; if the model "
                    "was trained on padded images, say so (--pad-to-square)", folder, PROTOCOL_FILE)
        recorded = ComparisonProtocol.for_backbone(backbone)
    elif recorded.weights_fingerprint != backbone.model_id:
        raise ProtocolError(f"{folder}: its weights ({backbone.model_id}) are not the ones {PROTOCOL_FILE} "
                            f"was written for ({recorded.weights_fingerprint}); the folder changed after export")
    protocol = stamp(recorded, folder, weights=backbone.model_id)
    was, now = (recorded.file_digests, protocol.file_digests) if recorded.model_fingerprint else ({}, {})
    changed = sorted(name for name in {*was, *now} if was.get(name) != now.get(name))
    if changed:
        log.warning("%s: %s changed after the export; comparisons are computed anew (its cached comparisons "
                    "and anchor matrix belong to the files as exported)", folder, ", ".join(changed))
    backbone.model_id = protocol.model_fingerprint
    return backbone, protocol
