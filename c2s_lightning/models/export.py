"""Write a trained backbone as a Hugging Face folder, and load one back.

A merged export is an ordinary ``save_pretrained`` folder (config, safetensors weights, processor
files) that ``AutoModelForImageTextToText.from_pretrained`` reads. An unmerged LoRA export holds
the adapter alone (``adapter_model.safetensors`` + ``adapter_config.json``, with any fully
trained projector) and ``c2s_base.json``, the ``build_backbone`` arguments of its base model.
Merging never touches the live model: merged weights are computed into a fresh state dict.
The folder is built under a temporary name and renamed when complete (``atomic_files``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import torch
from peft import PeftModel
from peft.tuners.lora import LoraLayer

from c2s_lightning.atomic_files import is_nonempty_folder, publish_folder, staging_folder
from c2s_lightning.models.backbones import Backbone, assemble_backbone, build_backbone

log = logging.getLogger(__name__)

BASE_FILE = "c2s_base.json"
"""In an adapter folder: ``{"build_args": {...}}`` to rebuild the base with ``build_backbone``."""


def export_pretrained(
    backbone_or_model,
    processor=None,
    out_dir: str | os.PathLike = "export",
    merge_lora: bool = True,
) -> Path:
    """Save a backbone (or a bare model + processor) as a Hugging Face folder.

    Args:
        backbone_or_model: A ``Backbone``, or a model (plain or peft-wrapped).
        processor: The processor; taken from the backbone when one is given.
        out_dir: Folder to write: missing, empty, or an earlier export, which is replaced (logged)
            once the new one is complete; any other folder is refused.
        merge_lora: For a peft model, fold the adapters into the weights (True) or write the
            adapter alone plus the base's build arguments (False; needs a ``Backbone``).

    Returns:
        The folder.

    Raises:
        FileExistsError: ``out_dir`` holds something other than an earlier export.
    """
    out = Path(out_dir)
    replace = is_nonempty_folder(out)
    if replace and not _is_export(out):  # before the (long) save, not only at the final rename
        raise FileExistsError(f"{out} is not empty and is not an earlier export; it is never replaced: "
                              "choose another folder")
    staged = staging_folder(out)
    try:
        _save_weights(backbone_or_model, processor, staged, merge_lora)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    if replace:
        log.warning("replacing the earlier export in %s", out)
    return publish_folder(staged, out, replace=replace)


def _is_export(folder: Path) -> bool:
    """A flat folder with a model or adapter config: what ``export_pretrained`` writes. Only such a
    folder is replaced, so a mistyped ``out_dir`` (a home or project folder) is never deleted."""
    entries = list(folder.iterdir()) if folder.is_dir() else []
    names = {entry.name for entry in entries}
    return bool(names & {"config.json", "adapter_config.json"}) and not any(e.is_dir() for e in entries)


def _save_weights(backbone_or_model, processor, out: Path, merge_lora: bool) -> None:
    """The Hugging Face files of the model and processor, written into ``out``."""
    build_args = None
    if isinstance(backbone_or_model, Backbone):
        model, processor = backbone_or_model.model, backbone_or_model.processor
        build_args = backbone_or_model.build_args
    else:
        model = backbone_or_model
    if processor is None:
        raise ValueError("export_pretrained needs the processor (or a Backbone that holds it)")
    if isinstance(model, PeftModel) and not merge_lora:
        if not build_args:
            raise ValueError("an unmerged adapter export needs a Backbone, to record how to rebuild its base")
        model.save_pretrained(out)
        (out / BASE_FILE).write_text(json.dumps({"build_args": build_args}, indent=2))
    elif isinstance(model, PeftModel):
        base = model.get_base_model()
        base.save_pretrained(out, state_dict=merged_state_dict(model))
    else:
        model.save_pretrained(out)
    processor.save_pretrained(out)


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

    Args:
        folder: Written by ``export_pretrained``.
        **kwargs: Passed to ``build_backbone`` (e.g. ``dtype``); for an adapter folder they
            override the recorded base arguments.
    """
    folder = Path(folder)
    base_file = folder / BASE_FILE
    if not base_file.is_file():
        return build_backbone(str(folder), **kwargs)
    build_args = {**json.loads(base_file.read_text())["build_args"], **kwargs}
    base = build_backbone(**build_args)
    model = PeftModel.from_pretrained(base.model, str(folder))
    backbone = assemble_backbone(
        model.eval(), base.processor, model_id=str(folder), rating=build_args.get("rating")
    )
    backbone.build_args = build_args
    return backbone
