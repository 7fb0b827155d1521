"""The synthetic dataset: KADID-10k's native layout, labels that follow the distortion level."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from c2s_lightning.data import split_records
from c2s_lightning.data.synth import (CONTENTS, content_ids, held_out_refs, main_synth,
                                      write_synthetic_kadid)

ALL = ("noise", "blur", "jpeg")


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return write_synthetic_kadid(tmp_path_factory.mktemp("synth") / "kadid", distortions=ALL)


def read_rows(root: Path) -> tuple[list[str], list[dict]]:
    with (root / "dmos.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def pixels(root: Path, name: str) -> np.ndarray:
    return np.asarray(Image.open(root / "images" / name), dtype=np.float64)


def test_layout_and_columns_are_kadids(synth):
    header, rows = read_rows(synth)
    assert header == ["dist_img", "ref_img", "dmos", "var"]
    assert len(rows) == len(CONTENTS) * len(ALL) * 5
    for row in rows:
        assert re.fullmatch(r"I\d\d_(01|10|11)_0[1-5]\.png", row["dist_img"])
        assert row["ref_img"] == row["dist_img"][:3] + ".png"
    listed = {r["dist_img"] for r in rows} | {r["ref_img"] for r in rows}
    assert {p.name for p in (synth / "images").iterdir()} == listed
    image = Image.open(synth / "images" / "I01_11_03.png")
    assert image.mode == "RGB" and image.size == (64, 64)


def test_mos_falls_with_level_and_var_is_a_variance(synth):
    _, rows = read_rows(synth)
    by_series: dict[str, list[float]] = {}
    for row in rows:
        by_series.setdefault(row["dist_img"][:6], []).append(float(row["dmos"]))
        std = math.sqrt(float(row["var"]))
        assert 0.3 <= std <= 0.5 and std == pytest.approx(round(std, 3), abs=1e-6)
    for series in by_series.values():
        assert len(series) == 5 and all(a > b for a, b in zip(series, series[1:]))
        assert series[0] >= 4.85 and series[-1] <= 1.15
        assert all(abs(m - (5 - i)) <= 0.15 + 1e-9 for i, m in enumerate(series))


@pytest.mark.parametrize("code", ["01", "10", "11"])
def test_images_degrade_with_level(synth, code):
    reference = pixels(synth, "I03.png")
    errors = [np.abs(pixels(synth, f"I03_{code}_0{level}.png") - reference).mean()
              for level in range(1, 6)]
    assert all(a < b for a, b in zip(errors, errors[1:]))
    if code != "10":  # noise and blur start from the pristine image
        assert errors[0] == 0


def test_contents_json_maps_ids_to_skimage_names(synth):
    mapping = json.loads((synth / "contents.json").read_text())
    assert mapping == content_ids() and mapping["I01"] == "astronaut"
    assert held_out_refs() == ["I04", "I05", "I06", "I07", "I08"]
    assert [mapping[r] for r in held_out_refs()] == ["chelsea", "moon", "gravel", "clock", "page"]


def test_deterministic_per_seed(tmp_path):
    kwargs = dict(size=32, contents=("coins", "camera"), distortions=("noise",))
    a = write_synthetic_kadid(tmp_path / "a", seed=5, **kwargs)
    b = write_synthetic_kadid(tmp_path / "b", seed=5, **kwargs)
    c = write_synthetic_kadid(tmp_path / "c", seed=6, **kwargs)
    for path in sorted((a / "images").iterdir()):
        assert path.read_bytes() == (b / "images" / path.name).read_bytes()
    assert (a / "dmos.csv").read_text() == (b / "dmos.csv").read_text()
    assert (a / "dmos.csv").read_text() != (c / "dmos.csv").read_text()
    assert (a / "images" / "I01_11_03.png").read_bytes() != (c / "images" / "I01_11_03.png").read_bytes()
    assert json.loads((a / "contents.json").read_text()) == {"I01": "coins", "I02": "camera"}


def test_main_synth_is_idempotent_and_guards_other_content(tmp_path):
    out = tmp_path / "synth"
    main_synth(out, size=16, contents=("coins", "moon"))
    stamp = (out / "dmos.csv").stat().st_mtime_ns
    main_synth(out, size=16, contents=("coins", "moon"))
    assert (out / "dmos.csv").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="force"):
        main_synth(out, size=16, contents=("coins", "moon"), levels=3)
    main_synth(out, size=16, contents=("coins", "moon"), levels=3, force=True)
    names = {p.name for p in (out / "images").iterdir()}
    assert "I01_11_03.png" in names and "I01_11_05.png" not in names  # stale level 5 removed
    (out / "images" / "I02_11_02.png").unlink()  # a damaged folder no longer matches
    with pytest.raises(FileExistsError):
        main_synth(out, size=16, contents=("coins", "moon"), levels=3)


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="levels"):
        write_synthetic_kadid(tmp_path, levels=6)
    with pytest.raises(ValueError, match="distortions"):
        write_synthetic_kadid(tmp_path, distortions=("rain",))


def test_reads_back_through_the_kadid_reader_and_holds_out_contents(synth):
    read_dataset = pytest.importorskip("c2s_lightning.data.datasets").read_dataset
    records = read_dataset("kadid10k", synth)
    _, rows = read_rows(synth)
    assert [r.name for r in records] == [f"images/{row['dist_img']}" for row in rows]
    assert [r.mos for r in records] == [float(row["dmos"]) for row in rows]
    assert records[0].std == pytest.approx(math.sqrt(float(rows[0]["var"])))
    assert {r.ref for r in records} == set(content_ids())
    split = split_records(records, "random", test_refs=held_out_refs())
    assert {r.ref for r in split.test} == {"I04", "I05", "I06", "I07", "I08"}
    assert len({r.ref for r in split.val}) == 1 and len(split.train) == 10 * 15


def test_crops_give_distinct_views_and_hold_out_every_view(tmp_path):
    from c2s_lightning.data.datasets import read_dataset

    root = write_synthetic_kadid(tmp_path / "c", size=16, crops=3, contents=["camera", "moon", "coins"])
    ids = json.loads((root / "contents.json").read_text())
    assert ids == {"I01": "camera#0", "I02": "camera#1", "I03": "camera#2", "I04": "moon#0", "I05": "moon#1",
                   "I06": "moon#2", "I07": "coins#0", "I08": "coins#1", "I09": "coins#2"}
    views = [np.asarray(Image.open(root / "images" / f"I0{k}.png")) for k in (1, 2, 3)]
    assert not np.array_equal(views[0], views[1]) and not np.array_equal(views[1], views[2])
    assert held_out_refs(["moon"], contents=["camera", "moon", "coins"], crops=3) == ["I04", "I05", "I06"]
    records = read_dataset("kadid10k", root)
    assert len(records) == 9 * 5 and {r.ref for r in records} == set(ids)


def test_main_synth_with_crops_is_idempotent(tmp_path):
    out = main_synth(tmp_path / "d", size=8, crops=2)
    stamp = (out / "dmos.csv").stat().st_mtime_ns
    assert main_synth(out, size=8, crops=2) == out
    assert (out / "dmos.csv").stat().st_mtime_ns == stamp  # nothing rewritten
    with pytest.raises(FileExistsError, match="force"):
        main_synth(out, size=8, crops=3)


def kadid_like(root: Path) -> dict[str, bytes]:
    """A folder holding files named as the real KADID-10k names them, which synth did not write."""
    files = {"dmos.csv": b"dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.496\n",
             "images/I01.png": b"real reference", "images/I01_01_01.png": b"real blur level 1",
             "images/I01_11_02.png": b"real white noise level 2"}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def test_force_never_touches_files_synth_did_not_write(tmp_path):
    real = tmp_path / "kadid10k"
    files = kadid_like(real)
    with pytest.raises(FileExistsError, match="not written by data synth"):
        main_synth(real, size=8, contents=("coins", "moon"), levels=2, force=True)
    assert {name: (real / name).read_bytes() for name in files} == files
    assert sorted(p.name for p in real.rglob("*")) == sorted(["images", *(Path(n).name for n in files)])

    out = tmp_path / "synth"
    main_synth(out, size=8, contents=("coins", "moon"), levels=2, distortions=("blur",))
    assert (out / "images" / "I01_01_01.png").is_file()  # synth's own blur image, a KADID name
    (out / "images" / "I02_05_01.png").write_bytes(b"added by hand")  # a KADID name synth never wrote
    main_synth(out, size=8, contents=("coins", "moon"), levels=2, distortions=("noise",), force=True)
    names = {p.name for p in (out / "images").iterdir()}
    assert "I01_01_01.png" not in names and "I01_11_02.png" in names  # its old files go, new ones come
    assert (out / "images" / "I02_05_01.png").read_bytes() == b"added by hand"
    listed = json.loads((out / "synth_files.json").read_text())
    assert "images/I02_05_01.png" not in listed and "images/I01_11_02.png" in listed


def test_force_on_a_folder_written_before_manifests_removes_only_its_files(tmp_path):
    out = main_synth(tmp_path / "old", size=8, contents=("coins", "moon"), levels=2)
    (out / "synth_files.json").unlink()  # as a folder written by an earlier version
    (out / "images" / "I01_01_01.png").write_bytes(b"not synth's")
    main_synth(out, size=8, contents=("coins", "moon"), levels=3, force=True)
    assert (out / "images" / "I01_01_01.png").read_bytes() == b"not synth's"
    assert (out / "images" / "I01_11_03.png").is_file()
