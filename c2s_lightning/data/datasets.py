"""The dataset table and :func:`read_dataset`, the one entry point to the native readers.

Every dataset is read as its authors distribute it (folder layouts: docs/data.md) and
returned as :class:`IQARecord` with higher-is-better ``mos`` and ``std`` on the same scale:

==========  =====================================================  ===========================
name        mos                                                    std
==========  =====================================================  ===========================
live        ``100 - dmos_new`` (dmos_realigned.mat; may pass 100)  ``dmos_std``
csiq        ``1 - dmos`` (csiq.DMOS.xlsx)                          ``dmos_std``
kadid10k    ``dmos`` (a 1-5 MOS despite its name)                  ``sqrt(var)``
bid         MOS, column B of DatabaseGrades.xlsx                   LIQE's per-image list (shipped)
clive       ``AllMOS_release``                                     ``AllStdDev_release``
koniq10k    ``MOS`` (1-5), or ``MOS_zscore`` with scale="zscore"   ``SD`` (x slope for zscore)
tid2013     mos_with_names.txt                                     mos_std.txt
spaq        ``MOS``                                                None
agiqa3k     ``mos_quality``                                        ``std_quality``
==========  =====================================================  ===========================

These formulas reproduce LIQE's ``*_all.txt`` lists and the Compare2Score split lists exactly.
LIVE drops its 203 reference entries (``orgs == 1``); CLIVE drops its training images t1..t7.

Names: ``record.name`` is the image's path relative to the dataset root as distributed, with
``/`` separators and the file's case as the label file spells it (``jp2k/img39.bmp``,
``images/I01_01_01.png``, ``distorted_images/i01_01_2.bmp``, ``AttnGAN_normal_000.jpg``);
``record.path`` is ``root / name`` (or the file on disk when only its letter case differs). LIQE's
``<dataset>_all.txt`` paths equal these names; :mod:`~c2s_lightning.data.splits` says how the
paper's split lists match them.

The options common to every dataset (``check_images``, ``on_missing``, ``on_bad_image``: see
:func:`read_dataset`) decide each image's fate before any training. Whatever the options, a label
file may not list an image twice, name a path outside the dataset root (``..`` or absolute; a
``list`` file may allow absolute paths) or give a negative std (docs/data.md lists every check).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from c2s_lightning.data.readers import lists, mat, sheet, text
from c2s_lightning.data.readers.checks import LabelRow, finish
from c2s_lightning.data.readers.text import koniq_official_sets
from c2s_lightning.data.records import IQARecord

__all__ = ["DATASETS", "DatasetInfo", "koniq_official_sets", "read_dataset"]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """One row of the dataset table.

    Attributes:
        reader: ``reader(root: Path, **options) -> list[LabelRow]``.
        higher_better: Whether the distributed score is higher-is-better (False: a DMOS, flipped).
        scale: Nominal ``(lo, hi)`` of the returned ``mos`` (None for user lists).
        has_std: Whether the distributed labels carry a per-image std.
        has_ref: Whether records carry a reference-content id (synthetic distortions).
        description: One line for listings and ``--help``.
        layout: The files the reader expects under ``root``, as one line.
    """

    reader: Callable[..., list[LabelRow]]
    higher_better: bool
    scale: tuple[float, float] | None
    has_std: bool
    has_ref: bool
    description: str
    layout: str = ""


DATASETS: dict[str, DatasetInfo] = {
    "live": DatasetInfo(mat.read_live, False, (0.0, 100.0), True, True,
                       "LIVE Release 2: 779 synthetic distortions of 29 references, realigned DMOS",
                       "live/  dmos.mat  dmos_realigned.mat  refnames_all.mat  jp2k/ jpeg/ wn/ gblur/ fastfading/ refimgs/"),
    "csiq": DatasetInfo(sheet.read_csiq, False, (0.0, 1.0), True, True,
                       "CSIQ: 866 synthetic distortions of 30 references, DMOS 0-1",
                       "csiq/  csiq.DMOS.xlsx  dst_imgs/{awgn,blur,contrast,fnoise,jpeg,jpeg2000}/<image>.<TOKEN>.<level>.png  src_imgs/"),
    "kadid10k": DatasetInfo(text.read_kadid, True, (1.0, 5.0), True, True,
                           "KADID-10k: 10,125 synthetic distortions of 81 references, MOS 1-5",
                           "kadid10k/  dmos.csv (dist_img, ref_img, dmos, var)  images/I01_01_01.png ..."),
    "bid": DatasetInfo(sheet.read_bid, True, (0.0, 5.0), True, False,
                      "BID: 586 blurred camera photos, MOS 0-5 (std from LIQE's list, shipped)",
                      "bid/  DatabaseGrades.xlsx  ImageDatabase/DatabaseImage0001.JPG ..."),
    "clive": DatasetInfo(mat.read_clive, True, (0.0, 100.0), True, False,
                        "LIVE In the Wild: 1,162 camera photos, MOS 0-100",
                        "clive/  Data/AllImages_release.mat  Data/AllMOS_release.mat  Data/AllStdDev_release.mat  Images/"),
    "koniq10k": DatasetInfo(text.read_koniq, True, (1.0, 5.0), True, False,
                           "KonIQ-10k: 10,073 web photos, MOS 1-5 (or z-score 0-100)",
                           "koniq10k/  koniq10k_scores_and_distributions.csv  koniq10k_distributions_sets.csv  1024x768/<id>.jpg"),
    "tid2013": DatasetInfo(text.read_tid2013, True, (0.0, 9.0), True, True,
                          "TID2013: 3,000 synthetic distortions of 25 references, MOS 0-9",
                          "tid2013/  mos_with_names.txt  mos_std.txt  distorted_images/I01_01_1.bmp ...  reference_images/"),
    "spaq": DatasetInfo(sheet.read_spaq, True, (0.0, 100.0), False, False,
                       "SPAQ: 11,125 smartphone photos, MOS 0-100",
                       "spaq/  Annotations/MOS and Image attribute scores.xlsx  TestImage/00001.jpg ..."),
    "agiqa3k": DatasetInfo(text.read_agiqa, True, (0.0, 5.0), True, False,
                          "AGIQA-3K: 2,982 AI-generated images, perceptual quality MOS ~0-5",
                          "agiqa3k/  data.csv (name, ..., mos_quality, std_quality)  AttnGAN_normal_000.jpg ..."),
    "list": DatasetInfo(lists.read_list, True, None, False, False,
                       "A CSV/TSV/JSON list of path, score[, std[, ref]] (your own data)",
                       "labels.csv (path,score[,std[,ref]] rows; or .tsv/.txt/.json/.jsonl) with paths relative to its folder"),
}


def read_dataset(name: str, root: str | os.PathLike, *, check_images: bool | str = "full", on_missing: str = "error",
                 on_bad_image: str = "error", **options) -> list[IQARecord]:
    """Read a dataset from its native files.

    Args:
        name: A key of :data:`DATASETS`.
        root: The dataset folder as unpacked; for ``"list"``, the list file.
        check_images: ``"full"`` (default, or True): each listed image must exist and decode
            completely; decoding runs in parallel and images that decoded once are remembered
            by (path, size, modification time), so reruns only stat the files. ``"header"``:
            PIL must read each header (fast, but a file cut short after its header passes).
            False (or ``"none"``): no look at the images.
        on_missing: ``"error"`` (default) raises on a listed image missing on disk; ``"skip"``
            leaves it out, counting and logging it.
        on_bad_image: ``"error"`` (default) raises one error naming the images that cannot be
            read (the first few, with the reason); ``"skip"`` leaves them out with a warning
            giving their number.
        **options: Reader options, e.g. ``realigned`` (live), ``std_file`` (bid), ``scale`` and
            ``image_dir`` (koniq10k), ``image_dir`` (spaq, agiqa3k), ``image_root`` and
            ``allow_absolute`` (list).

    Returns:
        The records in label-file order.

    Raises:
        DatasetError: A label file is missing or malformed (a bad value, an image listed twice,
            a path outside the root, a negative std), or an image is missing or unreadable; the
            message names the file and the row or field.
        ValueError: An unknown dataset name or option value.
    """
    if name not in DATASETS:
        from c2s_lightning.infra.user_errors import unknown_name

        raise ValueError(unknown_name("dataset", name, DATASETS))
    root = Path(root).expanduser().resolve()
    rows = DATASETS[name].reader(root, **options)
    return finish(rows, check_images=check_images, on_missing=on_missing, on_bad_image=on_bad_image,
                  source=root)
