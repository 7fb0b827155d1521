"""Readers for the datasets distributed as MATLAB ``.mat`` label files: LIVE Release 2 and CLIVE."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io

from c2s_lightning.data.readers.checks import LabelRow, require_file, to_float
from c2s_lightning.data.records import DatasetError, IQARecord

LIVE_FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
"""LIVE's distortion folders with their image counts, in the order of the 982 label entries."""

_CLIVE_TRAINING = re.compile(r"t\d+\.\w+", re.IGNORECASE)


def read_live(root: Path, *, realigned: bool = True) -> list[LabelRow]:
    """LIVE Release 2: ``mos = 100 - dmos``, reference entries (``orgs == 1``) dropped.

    Args:
        realigned: Use ``dmos_new`` and ``dmos_std`` from dmos_realigned.mat (the convention of the
            paper's split lists). False: raw ``dmos`` from dmos.mat, with no std.
    """
    total = sum(count for _, count in LIVE_FOLDERS)
    names = [f"{folder}/img{k}.bmp" for folder, count in LIVE_FOLDERS for k in range(1, count + 1)]
    refs = _strings(root / "refnames_all.mat", "refnames_all", total)
    if realigned:
        labels = root / "dmos_realigned.mat"
        dmos, std, orgs = (_vector(labels, key, total) for key in ("dmos_new", "dmos_std", "orgs"))
    else:
        labels = root / "dmos.mat"
        dmos, orgs = (_vector(labels, key, total) for key in ("dmos", "orgs"))
        std = None
    rows = []
    for i, name in enumerate(names):
        where = f"{labels}, entry {i + 1} ({name})"
        if to_float(orgs[i], where, "orgs") == 1:
            continue
        value = to_float(dmos[i], where, "dmos_new" if realigned else "dmos")
        spread = None if std is None else to_float(std[i], where, "dmos_std")
        ref = Path(refs[i]).stem
        record = IQARecord(root / name, 100.0 - value, spread, ref, "live", name)
        rows.append(LabelRow(record, where))
    return rows


def read_clive(root: Path) -> list[LabelRow]:
    """LIVE In the Wild (CLIVE): MOS 0-100 and std from Data/*.mat; training images t1..t7 dropped."""
    data = root / "Data"
    images = _strings(data / "AllImages_release.mat", "AllImages_release")
    count = len(images)
    mos = _vector(data / "AllMOS_release.mat", "AllMOS_release", count)
    std = _vector(data / "AllStdDev_release.mat", "AllStdDev_release", count)
    rows = []
    for i, file_name in enumerate(images):
        # By convention the 7 training images t1..t7 are not part of the 1,162-image benchmark.
        if _CLIVE_TRAINING.fullmatch(file_name):
            continue
        name = f"Images/{file_name}"
        where = f"{data / 'AllMOS_release.mat'}, entry {i + 1} ({file_name})"
        value = to_float(mos[i], where, "AllMOS_release")
        spread = to_float(std[i], f"{data / 'AllStdDev_release.mat'}, entry {i + 1}", "AllStdDev_release")
        rows.append(LabelRow(IQARecord(root / name, value, spread, None, "clive", name), where))
    return rows


def _load(path: Path, key: str) -> np.ndarray:
    require_file(path)
    try:
        content = scipy.io.loadmat(str(path), variable_names=[key])
    except (scipy.io.matlab.MatReadError, ValueError, TypeError, OSError, NotImplementedError) as error:
        raise DatasetError(f"{path}: not a readable .mat file ({error})") from error
    if key not in content:
        raise DatasetError(f"{path}: variable {key!r} missing")
    return np.asarray(content[key])


def _vector(path: Path, key: str, length: int | None = None) -> np.ndarray:
    """A numeric .mat variable as a flat vector of ``length`` entries (shape 1xN or Nx1)."""
    array = _load(path, key)
    if array.dtype == object or array.ndim > 2 or (array.ndim == 2 and min(array.shape) > 1):
        raise DatasetError(f"{path}: variable {key!r} should be a numeric vector, has shape {array.shape}")
    array = array.ravel()
    if length is not None and array.size != length:
        raise DatasetError(f"{path}: variable {key!r} has {array.size} entries, expected {length}")
    return array


def _strings(path: Path, key: str, length: int | None = None) -> list[str]:
    """A .mat cell array of char (1xN or Nx1) as a list of str."""
    cells = _load(path, key).ravel()
    if length is not None and cells.size != length:
        raise DatasetError(f"{path}: variable {key!r} has {cells.size} entries, expected {length}")
    out = []
    for i, cell in enumerate(cells):
        text = np.asarray(cell).ravel()
        if text.size != 1 or not isinstance(text[0], str) or not text[0].strip():
            raise DatasetError(f"{path}: variable {key!r}, entry {i + 1} is not a file name: {cell!r}")
        out.append(text[0].strip())
    return out
