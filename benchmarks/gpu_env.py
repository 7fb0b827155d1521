"""The GPU suite's env step: which Python runs, its torch and CUDA, and where each dependency comes from.

    python benchmarks/gpu_env.py OUT.json [--dry-run]

A dependency loaded from a wheelhouse folder (``pip install --target``, on PYTHONPATH) shows that
folder as its location, so the JSON tells which transformers, jsonargparse... the suite ran with.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from pathlib import Path

# what the suite imports, directly or through the package, beside torch
PACKAGES = ("transformers", "lightning", "torchmetrics", "peft", "jsonargparse", "omegaconf", "huggingface_hub",
            "tokenizers", "safetensors", "accelerate", "numpy", "deepspeed", "wandb")


def where(name: str) -> dict | None:
    """Version and folder of the distribution Python finds first on sys.path, or None."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    return {"version": dist.version, "location": str(Path(dist.locate_file("")).resolve())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    ns = parser.parse_args(argv)
    import torch

    cuda = torch.cuda.is_available()
    info = {"dry_run": ns.dry_run, "python": sys.executable, "python_version": sys.version.split()[0],
            "torch": torch.__version__, "cuda": torch.version.cuda if cuda else None,
            "gpus": [torch.cuda.get_device_name(k) for k in range(torch.cuda.device_count())] if cuda else [],
            "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
            "pythonpath": os.environ.get("PYTHONPATH", "").split(os.pathsep),
            "packages": {name: where(name) for name in PACKAGES}}
    tmp = ns.out.with_name(ns.out.name + ".tmp")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, ns.out)
    print(json.dumps(info, indent=1))
    return info


if __name__ == "__main__":
    main()
