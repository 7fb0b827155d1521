"""A Hugging Face hub cache on disk, laid out as ``huggingface_hub`` writes it, holding tiny stand-ins.

``write_released_folder`` saves a tiny mPLUG-Owl2 backbone the way the Compare2Score release lays
its model out (remote-code key names with ``multiway.0/1``, ``model_type: mplug_owl2``, sharded
``pytorch_model-*.bin`` files with an index, the tokenizer files). ``add_snapshot`` puts a folder
into a hub cache: ``<cache>/<models|datasets>--<owner>--<name>/`` with ``refs/main`` naming a
commit, the files as content-addressed ``blobs/`` and ``snapshots/<commit>/`` links to them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import torch

RELEASE_COMMIT = "0123456789abcdef0123456789abcdef01234567"
ANCHORS_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def write_released_folder(backbone, folder: Path, shards: int = 2) -> Path:
    """A backbone's weights, config and tokenizer in the release's layout."""
    folder.mkdir(parents=True)
    config = backbone.model.config
    branch = re.compile(r"^(model\.layers\.\d+\.[\w.]+?)\.(text|visual)\.")
    weights = {
        branch.sub(lambda m: f"{m.group(1)}.multiway.{0 if m.group(2) == 'text' else 1}.", k): v.contiguous().clone()
        for k, v in backbone.model.state_dict().items()
    }
    keys = sorted(weights)
    weight_map = {}
    for k in range(shards):
        name = f"pytorch_model-{k + 1:05d}-of-{shards:05d}.bin"
        part = {key: weights[key] for key in keys[k::shards]}
        torch.save(part, folder / name)
        weight_map |= dict.fromkeys(part, name)
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    text = {k: v for k, v in config.to_dict().items() if k not in ("vision_config", "abstractor_config")}
    visual = {"visual_model": config.vision_config, "visual_abstractor": config.abstractor_config}
    (folder / "config.json").write_text(json.dumps({**text, "model_type": "mplug_owl2",
                                                    "architectures": ["MPLUGOwl2LlamaForCausalLM"],
                                                    "visual_config": visual}))
    backbone.processor.tokenizer.save_pretrained(folder)
    return folder


def add_snapshot(cache: Path, repo_id: str, source: Path, commit: str, repo_type: str = "model") -> Path:
    """Put every file under ``source`` into the hub cache ``cache`` as ``repo_id`` at ``commit``."""
    repo = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / file.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot
