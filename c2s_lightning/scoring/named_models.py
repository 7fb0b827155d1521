"""Pretrained models by name (``create_metric("compare2score")``, ``score --export compare2score``).

A name stands for a model release on the Hugging Face hub plus the anchor images it scores
against. The first use fetches both through ``huggingface_hub``'s own cache and assembles a
complete export from them once, under ``<cache root>/models/<name>-<revision>/``; later uses go
straight to it. What ``compare2score`` is, and how it scores unlike the release's own scorer:
docs/newcomer.md.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

from PIL import Image

from c2s_lightning.infra.atomic_files import is_nonempty_folder, publish_folder, staging_folder
from c2s_lightning.infra.cache_folders import cache_folder
from c2s_lightning.infra.user_errors import suggestion
from c2s_lightning.scoring.image_feed import expand_image_paths

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class NamedModel:
    """A pretrained model release and the anchors it scores against.

    Attributes:
        description: One line for ``list_models()``.
        hub_id: The model repository on the Hugging Face hub.
        anchors_hub_id: The dataset repository holding the anchor images (worst to best).
        anchors: ``(mos, std)`` of each anchor image, worst first.
        anchors_dataset: Where the anchor images were taken from.
    """

    description: str
    hub_id: str
    anchors_hub_id: str
    anchors: tuple[tuple[float, float], ...]
    anchors_dataset: str = "koniq10k"


NAMED_MODELS = {
    "compare2score": NamedModel(
        description="the authors' Compare2Score release (mPLUG-Owl2, LLaMA-2-7B; six IQA datasets) with the "
                    "paper's five KonIQ-10k anchors",
        hub_id="q-future/Compare2Score",
        anchors_hub_id="VQA-CityU/Anchor_images",
        # the paper's min-variance anchors of KonIQ-10k's split-1 training part (MOS/std, 1-5 scale)
        anchors=((1.09, 0.29), (2.02, 0.39), (2.96, 0.38), (3.21, 0.41), (4.01, 0.34)),
    ),
}


def list_models() -> dict[str, NamedModel]:
    """The pretrained models ``create_metric`` and ``score --export`` take by name."""
    return dict(NAMED_MODELS)


def resolve_export(name_or_folder: str | os.PathLike) -> Path:
    """The export folder to score with: ``name_or_folder`` itself when it is a folder holding a model,
    else the named model's export (built on first use, see the module docstring).

    Raises:
        FileNotFoundError: Neither an existing folder nor a model name (with a did-you-mean).
        NotADirectoryError: A file where a folder is expected.
        ValueError: A folder that holds no model (no ``config.json`` or adapter).
    """
    path = Path(name_or_folder)
    if path.is_dir():
        if not any((path / name).is_file() for name in ("config.json", "adapter_config.json")):
            raise ValueError(f"{path} is not an exported model folder (no config.json): give the folder `fit` "
                             f"exported (<run>/export) or a model name ({', '.join(NAMED_MODELS)})")
        return path
    if str(name_or_folder) in NAMED_MODELS:
        return named_export(str(name_or_folder))
    if path.exists():
        raise NotADirectoryError(f"{path} is a file, not an exported model folder or a model name "
                                 f"({', '.join(NAMED_MODELS)})")
    raise FileNotFoundError(f"no such folder {path}, and {str(name_or_folder)!r} is not a model name "
                            f"({', '.join(NAMED_MODELS)}){suggestion(str(name_or_folder), NAMED_MODELS)}")


def named_export(name: str) -> Path:
    """The complete export of the named model, assembled from the hub cache on first use."""
    model = NAMED_MODELS[name]
    release = _snapshot(model.hub_id, "model")
    # with the caches off (None), assembled afresh each time, in a folder of its own
    root = cache_folder("models") or Path(tempfile.mkdtemp(prefix="c2s-models-"))
    folder = root / f"{name}-{release.name[:12]}"
    if is_nonempty_folder(folder):
        return folder
    anchors = anchor_images(_snapshot(model.anchors_hub_id, "dataset"), len(model.anchors))
    log.warning("assembling the %s export from the Hugging Face cache in %s (once)", name, folder)
    staged = staging_folder(folder)
    try:
        _assemble(model, name, release, anchors, staged)
        return publish_folder(staged, folder)
    except FileExistsError:  # another process finished it first: theirs is the same
        return folder
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def _snapshot(repo_id: str, repo_type: str) -> Path:
    """The local snapshot folder of a hub repository (downloaded unless ``HF_HUB_OFFLINE`` is set)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, repo_type=repo_type))
    except LocalEntryNotFoundError as error:
        command = f"hf download {repo_id}" + (" --repo-type dataset" if repo_type == "dataset" else "")
        raise FileNotFoundError(
            f"the {repo_type} {repo_id} is not in the Hugging Face cache and the hub cannot be reached "
            f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '')}): download it where the hub is reachable "
            f"with `{command}`") from error


def anchor_images(snapshot: Path, count: int) -> list:
    """The anchor images of a dataset snapshot in the dataset's order: the rows of its parquet files'
    ``image`` column (PIL images; needs pyarrow), else its image files sorted by path, as the
    ``datasets`` library orders an image folder."""
    parquet = sorted(snapshot.rglob("*.parquet"))
    images = _parquet_images(parquet) if parquet else expand_image_paths([snapshot])
    if len(images) != count:
        raise ValueError(f"{snapshot}: expected {count} anchor images, found {len(images)}")
    return images


def _parquet_images(files: list[Path]) -> list:
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ValueError(f"{files[0]}: the anchor images are stored as parquet; reading them needs pyarrow "
                         "(pip install pyarrow)") from error
    rows = [row for file in files for row in pq.read_table(file, columns=["image"]).column("image").to_pylist()]
    return [Image.open(io.BytesIO(row["bytes"])).convert("RGB") for row in rows]


def _assemble(model: NamedModel, name: str, release: Path, anchors: list, staged: Path) -> None:
    """Links to the release's files, its protocol and its anchor bank in ``staged``."""
    from c2s_lightning.data.images import ImagePreprocessing
    from c2s_lightning.data.records import IQARecord
    from c2s_lightning.models.mplug_owl2.checkpoint import config_from_released
    from c2s_lightning.models.fingerprint import stamp
    from c2s_lightning.models.protocol import ANCHORS_FILE, ComparisonProtocol
    from c2s_lightning.scoring.bank import AnchorBank

    for file in release.iterdir():
        (staged / file.name).symlink_to(file.resolve())
    # the protocol from the release's config alone: loading 7B weights here would double the first call
    config = config_from_released(json.loads((release / "config.json").read_text()))
    # no padding of our own: the mPLUG-Owl2 processor pads, with the release's colour
    preprocessing = ImagePreprocessing(pad_to_square=False, decode_size=config.vision.image_size)
    family = SimpleNamespace(family=config.model_type, build_args={"model": model.hub_id})
    stamp(ComparisonProtocol.for_backbone(family, preprocessing.to_dict()), staged).save(staged)
    with tempfile.TemporaryDirectory() as decoded:
        records = []
        for k, (image, (mos, std)) in enumerate(zip(anchors, model.anchors)):
            if not isinstance(image, Path):  # a parquet row: kept as a lossless file, which the bank copies
                image.save(Path(decoded) / f"anchor_{k}.png")
                image = Path(decoded) / f"anchor_{k}.png"
            records.append(IQARecord(path=image, mos=mos, std=std, ref=None, dataset=model.anchors_dataset,
                                      name=image.name))
        bank = AnchorBank(records, dataset=model.anchors_dataset, split=f"{name} release ({model.anchors_hub_id})")
        bank.save(staged / ANCHORS_FILE)
