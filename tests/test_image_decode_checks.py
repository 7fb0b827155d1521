"""Images that do not decode fail at read time (``check_images``), with one error naming the files;
decoded images are remembered until the file changes."""

from __future__ import annotations

import io
import logging
import re

import numpy as np
import pytest
from PIL import Image

import native_fixtures as nf
from c2s_lightning.data import DatasetError, read_dataset
from c2s_lightning.data import image_checks


NATIVE = list(nf.WRITERS)
WHERE = r"(row|entry|line) \d+"
_FORMATS = {".png": "PNG", ".bmp": "BMP", ".jpg": "JPEG", ".jpeg": "JPEG"}


def tiny(name, tmp_path, **kwargs):
    return nf.WRITERS[name](tmp_path / name, **kwargs)


def write_truncated(path, keep: float = 0.8) -> None:
    """A 64x64 noise image in ``path``'s format, cut after ``keep`` of its bytes (header intact)."""
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, _FORMATS[path.suffix.lower()])
    data = buffer.getvalue()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("name", NATIVE)
def test_image_cut_after_its_header_fails_at_read_time(tmp_path, caplog, name):
    root = tiny(name, tmp_path)
    records = read_dataset(name, root)
    write_truncated(records[1].path)
    assert len(read_dataset(name, root, check_images="header")) == len(records)  # the header is intact
    with pytest.raises(DatasetError) as error:
        read_dataset(name, root)
    message = str(error.value)
    assert "\n" not in message
    assert re.search(f"1 of {len(records)} listed images cannot be read", message)
    assert re.search(WHERE + r"( \(.*\))?: .*" + re.escape(records[1].path.name) + r" \(OSError: image file is truncated",
                     message)
    assert "on_bad_image='skip'" in message
    with caplog.at_level(logging.INFO, logger="c2s_lightning.data.checks"):
        kept = read_dataset(name, root, on_bad_image="skip")
    assert [r.name for r in kept] == [r.name for r in records if r is not records[1]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"1 of {len(records)} listed images cannot be read")
    assert records[1].path.name in warnings[0]


def test_one_error_names_the_first_bad_files_and_counts_the_rest(tmp_path):
    root = tiny("kadid10k", tmp_path, n_refs=4)  # 16 images: decoded by the thread pool
    records = read_dataset("kadid10k", root)
    bad = [records[k] for k in (2, 5, 7, 11, 13)]
    for record in bad[:4]:
        write_truncated(record.path)
    bad[4].path.write_bytes(b"no image at all")
    with pytest.raises(DatasetError) as error:
        read_dataset("kadid10k", root)
    message = str(error.value)
    assert message.startswith(f"5 of {len(records)} listed images cannot be read (check_images='full'): ")
    named = re.findall(r"I\d\d_\d\d_\d\d\.png", message)
    assert named == [r.path.name for r in bad[:3]] and "and 2 more" in message
    assert "dmos.csv, row 4: " in message  # records[2] is on row 4 (header on row 1)
    kept = read_dataset("kadid10k", root, on_bad_image="skip")
    assert {r.name for r in kept} == {r.name for r in records} - {r.name for r in bad}


def test_decoded_images_are_remembered_until_the_file_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("C2S_CACHE_DIR", str(tmp_path / "cache"))
    root = tiny("kadid10k", tmp_path)
    decoded = []
    real_decode = image_checks._decode
    monkeypatch.setattr(image_checks, "_decode", lambda path: decoded.append(path) or real_decode(path))
    records = read_dataset("kadid10k", root)
    assert sorted(decoded) == sorted(r.path for r in records)
    assert len(list((tmp_path / "cache" / "decoded-images").glob("*.json"))) == 1
    decoded.clear()
    assert len(read_dataset("kadid10k", root)) == len(records) and decoded == []  # a rerun only stats
    write_truncated(records[0].path)  # new size and time: decoded again, and caught
    with pytest.raises(DatasetError, match=re.escape(records[0].path.name)):
        read_dataset("kadid10k", root)
    assert decoded == [records[0].path]
    monkeypatch.setenv("C2S_CACHE_DIR", "off")
    decoded.clear()
    read_dataset("kadid10k", root, on_bad_image="skip")
    assert len(decoded) == len(records)


def test_unwritable_or_corrupt_image_check_record_is_ignored(tmp_path, monkeypatch):
    root = tiny("agiqa3k", tmp_path)
    (tmp_path / "cache-file").write_text("a file where the cache folder should be")
    monkeypatch.setenv("C2S_CACHE_DIR", str(tmp_path / "cache-file"))
    assert len(read_dataset("agiqa3k", root)) == 4
    monkeypatch.setenv("C2S_CACHE_DIR", str(tmp_path / "cache"))
    read_dataset("agiqa3k", root)
    for cache in (tmp_path / "cache" / "decoded-images").glob("*.json"):
        cache.write_text("{not json")
    assert len(read_dataset("agiqa3k", root)) == 4


def test_check_images_values(tmp_path):
    root = tiny("agiqa3k", tmp_path)
    records = read_dataset("agiqa3k", root)
    write_truncated(records[0].path)
    for full in (True, "full"):
        with pytest.raises(DatasetError, match="truncated"):
            read_dataset("agiqa3k", root, check_images=full)
    assert len(read_dataset("agiqa3k", root, check_images=False)) == 4
    assert len(read_dataset("agiqa3k", root, check_images="none")) == 4
    with pytest.raises(ValueError, match="check_images"):
        read_dataset("agiqa3k", root, check_images="pixels")
    with pytest.raises(ValueError, match="on_bad_image"):
        read_dataset("agiqa3k", root, on_bad_image="ignore")


def test_nothing_left_after_skipping_is_an_error(tmp_path):
    root = tiny("agiqa3k", tmp_path)
    for record in read_dataset("agiqa3k", root):
        record.path.write_bytes(b"broken")
    with pytest.raises(DatasetError, match=r"none of the 4 listed images is left"):
        read_dataset("agiqa3k", root, on_bad_image="skip")
