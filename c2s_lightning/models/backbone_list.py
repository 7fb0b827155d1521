"""The backbone families ``model.model`` accepts, one line each: what ``list_backbones()``, ``--help``
and the errors for unknown names show."""

from __future__ import annotations

import dataclasses

from c2s_lightning.models.tiny import TINY_FAMILIES


@dataclasses.dataclass(frozen=True)
class BackboneInfo:
    """One backbone family.

    Attributes:
        description: One line: what it is.
        example: A value of ``model.model`` that loads it (a name, hub id or folder).
        tiny: Whether it is a random-weight family built in-process (tests, the quickstart).
    """

    description: str
    example: str
    tiny: bool = False


BACKBONES = {
    "tiny-llava": BackboneInfo("random-weight toy LLaVA-1.5 (CLIP-style vision + LLaMA), the default; seconds on CPU",
                               "tiny-llava", True),
    "tiny-llava-next": BackboneInfo("random-weight toy LLaVA-NeXT (any-resolution tiles)", "tiny-llava-next", True),
    "tiny-qwen2-vl": BackboneInfo("random-weight toy Qwen2-VL (dynamic resolution, M-RoPE)", "tiny-qwen2-vl", True),
    "tiny-idefics3": BackboneInfo("random-weight toy Idefics3 / SmolVLM (SigLIP + pixel shuffle)",
                                  "tiny-idefics3", True),
    "tiny-mplug-owl2": BackboneInfo("random-weight toy of the native mPLUG-Owl2 port (the paper's architecture)",
                                    "tiny-mplug-owl2", True),
    "mplug-owl2": BackboneInfo("mPLUG-Owl2 7B, the paper's model (native port, no trust_remote_code): the released "
                               "Compare2Score weights or the original ones, as a local folder",
                               "checkpoints/Compare2Score_1"),
    "llava": BackboneInfo("LLaVA-1.5 (AutoModelForImageTextToText)", "llava-hf/llava-1.5-7b-hf"),
    "llava-next": BackboneInfo("LLaVA-NeXT / LLaVA-1.6", "llava-hf/llava-v1.6-mistral-7b-hf"),
    "qwen2-vl": BackboneInfo("Qwen2-VL and Qwen2.5-VL (image-only processor, no torchvision)",
                             "Qwen/Qwen2.5-VL-7B-Instruct"),
    "idefics3": BackboneInfo("Idefics3 and SmolVLM (SmolVLM hub processors need `pip install num2words`)",
                             "HuggingFaceTB/SmolVLM-Instruct"),
}


def list_backbones() -> dict[str, BackboneInfo]:
    """The backbone families ``model.model`` accepts: every ``tiny-*`` family, mPLUG-Owl2 and the
    Hugging Face families; real ones are loaded by hub id or folder (``BackboneInfo.example``)."""
    missing = set(TINY_FAMILIES) - set(BACKBONES)
    if missing:  # a new tiny family must be described here, not silently absent from listings
        raise RuntimeError(f"tiny families {sorted(missing)} are not described in "
                           "c2s_lightning/models/backbone_list.py")
    return dict(BACKBONES)
