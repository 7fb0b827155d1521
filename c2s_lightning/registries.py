"""``list_backbones()`` and ``list_datasets()``: what ``model.model`` and a dataset name may be.

These two tables are the one place the command line (``--help``, errors for unknown names), the
README and Python callers learn the supported backbones and datasets from. Datasets reuse
``data.datasets.DATASETS`` (their descriptions) and add the folder layout each reader expects.
"""

from __future__ import annotations

import dataclasses
import difflib


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


@dataclasses.dataclass(frozen=True)
class DatasetListing:
    """One dataset name: what it is and the files its reader expects under ``root``."""

    description: str
    layout: str


_BACKBONES = {
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

_LAYOUTS = {
    "live": "live/  dmos.mat  dmos_realigned.mat  refnames_all.mat  jp2k/ jpeg/ wn/ gblur/ fastfading/ refimgs/",
    "csiq": "csiq/  csiq.DMOS.xlsx  dst_imgs/{awgn,blur,contrast,fnoise,jpeg,jpeg2000}/<image>.<TOKEN>.<level>.png  src_imgs/",
    "kadid10k": "kadid10k/  dmos.csv (dist_img, ref_img, dmos, var)  images/I01_01_01.png ...",
    "bid": "bid/  DatabaseGrades.xlsx  ImageDatabase/DatabaseImage0001.JPG ...",
    "clive": "clive/  Data/AllImages_release.mat  Data/AllMOS_release.mat  Data/AllStdDev_release.mat  Images/",
    "koniq10k": "koniq10k/  koniq10k_scores_and_distributions.csv  koniq10k_distributions_sets.csv  1024x768/<id>.jpg",
    "tid2013": "tid2013/  mos_with_names.txt  mos_std.txt  distorted_images/I01_01_1.bmp ...  reference_images/",
    "spaq": "spaq/  Annotations/MOS and Image attribute scores.xlsx  TestImage/00001.jpg ...",
    "agiqa3k": "agiqa3k/  data.csv (name, ..., mos_quality, std_quality)  AttnGAN_normal_000.jpg ...",
    "list": "labels.csv (path,score[,std[,ref]] rows; or .tsv/.txt/.json/.jsonl) with paths relative to its folder",
}


def list_backbones() -> dict[str, BackboneInfo]:
    """The backbone families ``model.model`` accepts: every ``tiny-*`` family, mPLUG-Owl2 and the
    Hugging Face families; real ones are loaded by hub id or folder (``BackboneInfo.example``)."""
    from c2s_lightning.models.tiny import TINY_FAMILIES

    missing = set(TINY_FAMILIES) - set(_BACKBONES)
    if missing:  # a new tiny family must be described here, not silently absent from listings
        raise RuntimeError(f"tiny families {sorted(missing)} are not described in c2s_lightning/registries.py")
    return dict(_BACKBONES)


def list_datasets() -> dict[str, DatasetListing]:
    """The dataset names ``read_dataset`` and the configs accept: the nine native datasets and
    ``list`` (your own labelled list), each with a description and its expected layout."""
    from c2s_lightning.data.datasets import DATASETS

    return {name: DatasetListing(info.description, _LAYOUTS[name]) for name, info in DATASETS.items()}


def format_listing(entries: dict) -> str:
    """One line per entry, ``name  description``, for ``--help`` texts and errors."""
    width = max(map(len, entries))
    return "\n".join(f"  {name:<{width}}  {info.description}" for name, info in entries.items())


def suggestion(word: str, candidates) -> str:
    """``"; did you mean 'x'?"`` when a candidate is close to ``word``, else ``""``: the one
    did-you-mean of commands, options, backbones and datasets."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_name(kind: str, name: str, entries: dict) -> str:
    """An error text for an unknown ``kind`` name: a suggestion when one is close, then the list."""
    return f"unknown {kind} {name!r}{suggestion(name, entries)} Known {kind}s:\n{format_listing(entries)}"
