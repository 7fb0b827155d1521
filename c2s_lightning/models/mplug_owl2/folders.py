"""Recognise a local mPLUG-Owl2 folder and load it as ``(model, processor)``.

Two formats: a *released* folder (mPLUG-Owl2 or the Compare2Score checkpoint, remote-code key
names, ``model_type: mplug_owl2``), read by ``load_released_checkpoint``; and a *native* folder
written by this port's ``save_pretrained`` (``model_type: mplug_owl2_native``, e.g. an export of a
fine-tuned model). Either way the tokenizer is the one saved in the folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .causal_lm import MPLUGOwl2ForCausalLM
from .checkpoint import load_released_checkpoint
from .configuration import MPLUGOwl2Config
from .processing import MPLUGOwl2Processor

RELEASED, NATIVE = "released", "native"


def folder_format(path: str | os.PathLike) -> str | None:
    """``"released"``, ``"native"``, or None when ``path`` is not a local mPLUG-Owl2 folder.

    Decided by ``config.json`` (``model_type``, else the release's ``architectures`` name), and
    for a config that names neither, by the release's ``multiway`` weight names in the index.
    """
    folder = Path(path)
    config_file = folder / "config.json"
    if not config_file.is_file():
        return None
    config = json.loads(config_file.read_text())
    model_type = config.get("model_type")
    if model_type == MPLUGOwl2Config.model_type:
        return NATIVE
    if model_type == "mplug_owl2" or any(
        str(name).startswith("MPLUGOwl2") for name in config.get("architectures") or []
    ):
        return RELEASED
    if model_type is None and _index_has_multiway_keys(folder):
        return RELEASED
    return None


def _index_has_multiway_keys(folder: Path) -> bool:
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            return any(".multiway." in key for key in json.loads(index.read_text())["weight_map"])
    return False


def load_folder(
    path: str | os.PathLike,
    dtype: torch.dtype = torch.float32,
    attn_implementation: str | None = None,
) -> tuple[MPLUGOwl2ForCausalLM, MPLUGOwl2Processor]:
    """Load a released or native folder (see ``folder_format``) with the tokenizer saved in it.

    ``dtype`` is that of the floating-point weights; ``attn_implementation`` ``"sdpa"`` (default) or
    ``"eager"``. Returns ``(model in eval mode, processor)``.

    Raises:
        ValueError: ``path`` is not an mPLUG-Owl2 folder.
    """
    kind = folder_format(path)
    attn = attn_implementation or "sdpa"
    if kind == RELEASED:
        model = load_released_checkpoint(path, dtype=dtype, attn_implementation=attn)
    elif kind == NATIVE:
        model = MPLUGOwl2ForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attn)
    else:
        raise ValueError(f"{path} is not an mPLUG-Owl2 folder (no config.json naming mplug_owl2)")
    return model.eval(), MPLUGOwl2Processor.from_folder(str(path), model.config)
