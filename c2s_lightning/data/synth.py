"""A small synthetic IQA dataset in KADID-10k's native layout, for the quickstart and the tests.

Reference contents are scikit-image's bundled photos (no download), centre-cropped and resized to
``size`` pixels. Each is distorted at ``levels`` strengths per distortion type, and the MOS falls
by one per level (5 for the mildest, 1 for the strongest) plus a small seeded jitter, so quality is
a simple, learnable function of the image. The folder is read by the real KADID-10k reader::

    out/images/I01.png             reference of content 1
    out/images/I01_11_01.png       content 1, distortion type 11 (KADID's white noise), level 1
    out/dmos.csv                   dist_img,ref_img,dmos,var  ('dmos' is a MOS, 'var' a variance)
    out/contents.json              {"I01": "astronaut", ...}
    out/synth.json                 the parameters, so that regenerating can be skipped
    out/synth_files.json           every file written here, the only ones a rewrite may remove
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from c2s_lightning.infra.atomic_files import atomic_open, atomic_path, write_json

log = logging.getLogger(__name__)

#: Content order fixes the Ixx ids: astronaut is I01, chelsea I04, page I08, ...
CONTENTS = ("astronaut", "camera", "coffee", "chelsea", "moon", "gravel", "clock", "page",
            "rocket", "coins", "hubble_deep_field", "immunohistochemistry", "brick", "grass",
            "retina", "cell")
#: Contents the quickstart holds out as its test set (I04..I08 under the default order).
HELD_OUT = ("chelsea", "moon", "gravel", "clock", "page")
#: name -> (KADID-10k type number, strengths of the 5 levels: noise sigma /255, blur sigma in
#: pixels, JPEG quality). Level 1 of noise and blur is the undistorted image.
DISTORTIONS = {
    "blur": (1, (0.0, 0.7, 1.4, 2.4, 4.0)),
    "jpeg": (10, (95, 50, 25, 12, 5)),
    "noise": (11, (0.0, 8.0, 18.0, 32.0, 55.0)),
}
STD_RANGE = (0.3, 0.5)
JITTER = 0.15
_VERSION = 1
FILES_MANIFEST = "synth_files.json"


def content_ids(contents: Sequence[str] | None = None, crops: int = 1) -> dict[str, str]:
    """``{"I01": name, ...}`` in the given (default: ``CONTENTS``) order. With ``crops > 1`` every content
    gives that many views, each a reference of its own, named ``"<name>#<k>"`` (view 0 is the centre
    crop): ``{"I01": "astronaut#0", "I02": "astronaut#1", ...}``."""
    views = [name if crops == 1 else f"{name}#{k}" for name in (contents or CONTENTS) for k in range(crops)]
    return {f"I{i:02d}": view for i, view in enumerate(views, start=1)}


def held_out_refs(names: Sequence[str] = HELD_OUT, contents: Sequence[str] | None = None,
                  crops: int = 1) -> list[str]:
    """The Ixx ids of every view of the named contents, e.g. for the ``test_refs`` split option."""
    return [ref for ref, view in content_ids(contents, crops).items() if view.split("#")[0] in names]


def load_content(name: str, size: int) -> np.ndarray:
    """A scikit-image sample photo as ``size`` x ``size`` x 3 uint8 (centre crop, then resize)."""
    from skimage import data  # imported late: scikit-image is slow to import

    image = np.asarray(getattr(data, name)())
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3].astype(np.uint8)
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(image[top:top + side, left:left + side])
    return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS))


def load_view(view: str, size: int, seed: int) -> np.ndarray:
    """One view of a content (``"name"`` or ``"name#k"``): view 0 is the centre crop; view k > 0 a
    seeded random square crop, between half and all of the side, of the photo at 3x ``size``."""
    name, _, k = view.partition("#")
    if not k or int(k) == 0:
        return load_content(name, size)
    big = load_content(name, 3 * size)
    rng = np.random.default_rng([seed, _VERSION, CONTENTS.index(name) if name in CONTENTS else 0, int(k)])
    side = int(rng.integers(3 * size // 2, 3 * size + 1))
    top, left = rng.integers(0, 3 * size - side + 1, 2)
    crop = Image.fromarray(big[top:top + side, left:left + side])
    return np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))


def distort(image: np.ndarray, kind: str, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Apply one distortion at one strength (see ``DISTORTIONS``) to a uint8 RGB image."""
    if kind == "noise":
        noisy = image.astype(np.float64) + rng.normal(0.0, strength, image.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if kind == "blur":
        if strength == 0:
            return image.copy()
        return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(strength)))
    if kind == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(strength))
        return np.asarray(Image.open(buffer).convert("RGB"))
    raise ValueError(f"unknown distortion {kind!r}; choose from {sorted(DISTORTIONS)}")


def synthetic_labels(contents: Sequence[str] | None = None, levels: int = 5, seed: int = 0,
                     distortions: Sequence[str] = ("noise",), crops: int = 1) -> list[dict]:
    """The rows of ``dmos.csv`` (without images): MOS falls by level, std drawn in ``STD_RANGE``; each
    row also carries ``kind`` and ``strength`` (not written to the CSV)."""
    kinds = _check(levels, distortions)
    rng = np.random.default_rng([seed, _VERSION])
    steps = np.linspace(0, 4, levels).round().astype(int)  # which of the 5 strengths to use
    rows = []
    for ref in content_ids(contents, crops):
        for kind in kinds:
            code, strengths = DISTORTIONS[kind]
            for level, step in enumerate(steps, start=1):
                mos = np.clip(5.0 - 4.0 * (level - 1) / (levels - 1) + rng.uniform(-JITTER, JITTER), 1, 5)
                std = round(float(rng.uniform(*STD_RANGE)), 3)
                rows.append({"dist_img": f"{ref}_{code:02d}_{level:02d}.png", "ref_img": f"{ref}.png",
                             "dmos": round(float(mos), 2), "var": round(std * std, 6),
                             "kind": kind, "strength": strengths[step]})
    return rows


def write_synthetic_kadid(out: str | Path, size: int = 64, levels: int = 5, seed: int = 0,
                          contents: Sequence[str] | None = None,
                          distortions: Sequence[str] = ("noise",), crops: int = 1) -> Path:
    """Write the synthetic dataset into ``out``, overwriting only files written here before.

    Each file is written atomically; ``synth_files.json`` lists them (written first, so a run cut
    short leaves them removable) and ``synth.json`` comes last, marking the folder complete.

    Args:
        out: Target folder (created).
        size: Side of the square images in pixels.
        levels: Distortion levels per type, 2..5 (5 uses every strength of ``DISTORTIONS``).
        seed: Seeds the MOS jitter, the stds and the noise.
        contents: scikit-image sample names (default ``CONTENTS``); their order gives I01, I02...
        distortions: Any of ``"noise"``, ``"blur"``, ``"jpeg"``.
        crops: Views per content, each its own reference (see ``content_ids``): more views of
            the same photos give a small model more to generalise from.

    Returns ``out`` as a Path, the root to give the KADID-10k reader; raises ``FileExistsError``
    when a file of the dataset's names exists in ``out`` and was not written here.
    """
    out = Path(out)
    if crops < 1:
        raise ValueError(f"crops must be at least 1, got {crops}")
    ids = content_ids(contents, crops)
    rows = synthetic_labels(contents, levels, seed, distortions, crops)
    manifest = _manifest(size, levels, seed, list(contents or CONTENTS), distortions, crops)
    _claim(out, _dataset_files(ids, rows))
    references = {ref: load_view(view, size, seed) for ref, view in ids.items()}
    for ref, image in references.items():
        _save_png(image, out / "images" / f"{ref}.png")
    for i, row in enumerate(rows):
        rng = np.random.default_rng([seed, _VERSION, i])
        _save_png(distort(references[row["ref_img"][:-4]], row["kind"], row["strength"], rng),
                  out / "images" / row["dist_img"])
    with atomic_open(out / "dmos.csv", newline="") as handle:
        writer = csv.DictWriter(handle, ["dist_img", "ref_img", "dmos", "var"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    write_json(out / "contents.json", ids, indent=1)
    write_json(out / "synth.json", manifest, indent=1)
    return out


def _save_png(image: np.ndarray, path: Path) -> None:
    with atomic_path(path) as temp:
        Image.fromarray(image).save(temp)


def main_synth(out: str | Path, size: int = 64, seed: int = 0,
               distortions: Sequence[str] = ("noise",), force: bool = False, levels: int = 5,
               contents: Sequence[str] | None = None, crops: int = 1) -> Path:
    """Create the synthetic dataset unless ``out`` already holds the same one (for the CLI).

    The arguments are ``write_synthetic_kadid``'s, and ``force``: rewrite even if ``out`` holds a
    different synthetic dataset or other files. Only files an earlier ``data synth`` wrote there
    (``synth_files.json``) are removed or overwritten; any other file is left alone, and one in the
    way is an error. Returns ``out`` as a Path.

    Raises:
        FileExistsError: ``out`` is not empty and holds something else, and ``force`` is False;
            or a file in the way was not written by ``data synth``.
    """
    out = Path(out)
    contents = list(contents or CONTENTS)
    wanted = _manifest(size, levels, seed, contents, distortions, crops)
    if _matches(out, wanted, synthetic_labels(contents, levels, seed, distortions, crops)):
        log.info("%s already holds this synthetic dataset; nothing to do", out)
        return out
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} is not empty and does not hold this synthetic dataset; "
                                  "pass force=True (--force) to rewrite it")
        _remove_previous(out)
    write_synthetic_kadid(out, size, levels, seed, contents, distortions, crops)
    log.info("wrote a synthetic KADID-10k-layout dataset to %s", out)
    return out


def _check(levels: int, distortions: Sequence[str]) -> list[str]:
    unknown = set(distortions) - set(DISTORTIONS)
    if unknown or not distortions:
        raise ValueError(f"distortions must be among {sorted(DISTORTIONS)}, got {list(distortions)}")
    if not 2 <= levels <= 5:
        raise ValueError(f"levels must be 2..5, got {levels}")
    return sorted(set(distortions), key=lambda k: DISTORTIONS[k][0])


def _manifest(size, levels, seed, contents, distortions, crops=1) -> dict:
    manifest = {"generator": __name__, "version": _VERSION, "size": size, "levels": levels,
                "seed": seed, "contents": list(contents), "distortions": _check(levels, distortions)}
    return manifest | ({"crops": crops} if crops != 1 else {})  # crops=1 folders keep their manifest


def _matches(out: Path, wanted: dict, rows: list[dict]) -> bool:
    """True when ``out`` was written with these parameters (and label rows) and no listed image is missing."""
    try:
        if json.loads((out / "synth.json").read_text()) != wanted:
            return False
        with (out / "dmos.csv").open(newline="") as handle:
            names = [row["dist_img"] for row in csv.DictReader(handle)]
    except (OSError, ValueError, KeyError):
        return False
    return names == [r["dist_img"] for r in rows] and all((out / "images" / n).is_file() for n in names)


def _owned_files(out: Path) -> set[str]:
    """The files (relative names) an earlier ``data synth`` wrote into ``out``: its manifest; for a
    folder written before manifests, the names its ``synth.json`` parameters give; else none."""
    try:
        return set(json.loads((out / FILES_MANIFEST).read_text()))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError):
        return set()  # an unreadable manifest proves nothing: own nothing
    try:
        old = json.loads((out / "synth.json").read_text())
        if old.get("generator") != __name__:
            return set()
        ids = content_ids(old["contents"], old.get("crops", 1))
        rows = synthetic_labels(old["contents"], old["levels"], old["seed"], old["distortions"], old.get("crops", 1))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()
    return set(_dataset_files(ids, rows))


def _dataset_files(ids: Mapping[str, str], rows: list[dict]) -> list[str]:
    """The files (relative names) of a synthetic dataset with these references and label rows."""
    return ([f"images/{ref}.png" for ref in ids] + [f"images/{row['dist_img']}" for row in rows]
            + ["dmos.csv", "contents.json", "synth.json"])


def _claim(out: Path, names: list[str]) -> None:
    """Refuse names taken by files not written here; record ``names`` in the manifest."""
    owned = _owned_files(out)
    foreign = [name for name in names if (out / name).exists() and name not in owned]
    if foreign:
        raise FileExistsError(f"{out / foreign[0]} was not written by data synth ({len(foreign)} such file(s) "
                              f"in the way); it is never overwritten: choose an empty --out")
    kept = {name for name in owned if (out / name).exists()}
    write_json(out / FILES_MANIFEST, sorted(kept | set(names)), indent=0)


def _remove_previous(out: Path) -> None:
    """Delete what an earlier run wrote (the files it listed, nothing else), before a rewrite."""
    for name in sorted(_owned_files(out)):
        path = out / name
        if Path(name).is_absolute() or ".." in Path(name).parts or not path.is_file():
            continue  # a manifest edited to point elsewhere removes nothing outside `out`
        path.unlink()
