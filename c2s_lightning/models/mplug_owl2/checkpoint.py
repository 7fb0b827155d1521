"""Loading the released mPLUG-Owl2 / Compare2Score checkpoints from a local folder.

The release stores the model under the key names of its remote code (``...k_proj.multiway.0...``)
in sharded ``.bin`` or safetensors files with an index json. This module reads those files
(``torch.load(weights_only=True)``, never pickle code), renames the keys to this port's names and
refuses checkpoints whose keys or shapes do not match the configuration.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import LlamaConfig

from .abstractor import MPLUGOwl2VisualAbstractor
from .causal_lm import MPLUGOwl2ForCausalLM
from .configuration import AbstractorConfig, MPLUGOwl2Config, VisionConfig

_BRANCH = re.compile(r"^(model\.layers\.\d+\.[\w.]+?)\.multiway\.([01])\.")
_ROTARY = re.compile(r"^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$")
_POSITION = re.compile(r"^model\.visual_abstractor\.encoder\.layers\.\d+\.crossattention\.attention\.([qk])_pos_embed$")
_POSITION_TOLERANCE = 1e-4


class CheckpointError(ValueError):
    """A checkpoint folder or state dict does not fit the model."""


def read_checkpoint_files(folder: str | Path) -> dict[str, torch.Tensor]:
    """Read every weight of a checkpoint folder into one CPU state dict.

    Looks for, in order: ``model.safetensors.index.json``, ``model.safetensors``,
    ``pytorch_model.bin.index.json``, ``pytorch_model.bin``.

    Raises:
        CheckpointError: If none of them is present or a shard named by the index is missing.
    """
    folder = Path(folder)
    for index_name, single_name in (
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ):
        if (folder / index_name).is_file():
            weight_map = json.loads((folder / index_name).read_text())["weight_map"]
            shards = sorted(set(weight_map.values()))
        elif (folder / single_name).is_file():
            shards = [single_name]
        else:
            continue
        state_dict = {}
        for shard in shards:
            if not (folder / shard).is_file():
                raise CheckpointError(f"{folder / index_name} names a missing shard {shard}")
            state_dict.update(_read_shard(folder / shard))
        return state_dict
    raise CheckpointError(
        f"No weights in {folder}: expected model.safetensors[.index.json] or pytorch_model.bin[.index.json]"
    )


def _read_shard(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def convert_released_state_dict(
    state_dict: dict[str, torch.Tensor], config: MPLUGOwl2Config
) -> dict[str, torch.Tensor]:
    """Rename released keys to this port's names.

    ``multiway.0``/``multiway.1`` become ``text``/``visual``; the rotary ``inv_freq`` some
    conversions write is dropped; the abstractor's stored position tables are checked against the
    recomputed ones, then dropped. Every other key keeps its name.
    """
    query_pos, key_pos = MPLUGOwl2VisualAbstractor.position_tables(config)
    converted = {}
    for key, tensor in state_dict.items():
        if _ROTARY.match(key):
            continue
        position = _POSITION.match(key)
        if position:
            expected = query_pos if position.group(1) == "q" else key_pos
            if tensor.shape != expected.shape or (tensor.float() - expected).abs().max() > _POSITION_TOLERANCE:
                raise CheckpointError(f"{key} differs from the fixed sin-cos table this port computes")
            continue
        branch = _BRANCH.match(key)
        if branch:
            name = "text" if branch.group(2) == "0" else "visual"
            key = f"{branch.group(1)}.{name}.{key[branch.end():]}"
        converted[key] = tensor
    return converted


def check_state_dict(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Raise :class:`CheckpointError` listing missing, unexpected or mis-shaped keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = sorted(
        f"{key}: checkpoint {tuple(state_dict[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in set(expected) & set(state_dict)
        if state_dict[key].shape != expected[key].shape
    )
    problems = [
        f"{label} ({len(keys)}): {keys[:10]}{' ...' if len(keys) > 10 else ''}"
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
        if keys
    ]
    if problems:
        raise CheckpointError("Checkpoint does not fit the model; " + "; ".join(problems))


def _known(cls, values: dict) -> dict:
    names = {field.name for field in dataclasses.fields(cls)}
    return {key: value for key, value in values.items() if key in names}


def config_from_released(config_dict: dict) -> MPLUGOwl2Config:
    """Build the configuration from a released ``config.json`` (``visual_config`` with
    ``visual_model`` and ``visual_abstractor``; fields this port does not read are ignored)."""
    text_fields = {field.name for field in dataclasses.fields(LlamaConfig)} | {"rope_theta", "rope_scaling"}
    text = {key: value for key, value in config_dict.items() if key in text_fields}
    visual = config_dict.get("visual_config") or {}
    return MPLUGOwl2Config(
        **text,
        vision_config=_known(VisionConfig, visual.get("visual_model") or {}),
        abstractor_config=_known(AbstractorConfig, visual.get("visual_abstractor") or {}),
    )


def load_released_checkpoint(
    folder: str | Path,
    dtype: torch.dtype = torch.float32,
    attn_implementation: str = "sdpa",
    config: MPLUGOwl2Config | None = None,
) -> MPLUGOwl2ForCausalLM:
    """Load a released mPLUG-Owl2 / Compare2Score checkpoint folder.

    Args:
        folder: Local folder with ``config.json`` and the weight files.
        dtype: Dtype of the floating-point weights.
        attn_implementation: ``"sdpa"`` or ``"eager"``.
        config: Use this configuration instead of the folder's ``config.json``.

    Returns:
        The model in eval mode, on CPU.

    Raises:
        CheckpointError: On missing files, or missing / unexpected / mis-shaped keys.
    """
    folder = Path(folder)
    if config is None:
        config = config_from_released(json.loads((folder / "config.json").read_text()))
    config._attn_implementation = attn_implementation
    state_dict = convert_released_state_dict(read_checkpoint_files(folder), config)
    state_dict = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
    with torch.device("meta"):
        model = MPLUGOwl2ForCausalLM(config)
    check_state_dict(model, state_dict)
    model.load_state_dict(state_dict, strict=True, assign=True)
    # The non-persistent buffers are not in the checkpoint: rebuild them off the meta device.
    abstractor = model.model.visual_abstractor
    abstractor.query_pos, abstractor.key_pos = abstractor.position_tables(config)
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)
    model.config.dtype = dtype
    return model.eval()
