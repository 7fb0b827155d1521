"""Loading ahead of the model: the image feed (ordered prefetching), the bounded image memo, scores with workers."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from c2s_lightning.data.images import ImagePreprocessing
from c2s_lightning.scoring.image_feed import ImageMemo, prefetch
from c2s_lightning.scoring.scorer import Compare2Scorer

from test_scorer import RowComparator, bank  # noqa: F401  (fixture)


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_prefetch_keeps_the_order_of_the_items(workers):
    def slow_square(x):
        time.sleep(0.002 * (7 - x % 7))  # later items finish first
        return x * x

    assert list(prefetch(slow_square, range(20), workers, ahead=5)) == [x * x for x in range(20)]


def test_prefetch_loads_ahead_in_other_threads_within_its_window():
    started: list[int] = []
    threads: set[str] = set()

    def load(x):
        started.append(x)
        threads.add(threading.current_thread().name)
        return x

    loaded = prefetch(load, range(100), workers=2, ahead=4)
    assert next(loaded) == 0
    time.sleep(0.05)  # while the consumer works, the window stays full
    assert sorted(started) == [0, 1, 2, 3, 4]
    loaded.close()  # the consumer stops: nothing more is loaded
    assert len(started) == 5 and threading.main_thread().name not in threads


def test_prefetch_raises_a_failed_item_where_it_stands():
    def load(x):
        if x == 3:
            raise ValueError("item 3")
        return x

    got = []
    with pytest.raises(ValueError, match="item 3"):
        for x in prefetch(load, range(10), workers=2):
            got.append(x)
    assert got == [0, 1, 2]


def test_image_memo_serves_repeats_and_stays_within_its_bound(tmp_path):
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (10, 5), (i, i, i)).save(paths[-1])
    pipeline = ImagePreprocessing(pad_to_square=True)
    cache = ImageMemo(pipeline, max_bytes=2 * 10 * 10 * 3)  # two padded 10x10 RGB images
    first = [cache(p) for p in paths]
    assert len(cache) == 2 and cache.bytes == 600 and (cache.hits, cache.misses) == (0, 4)
    again = [cache(p) for p in paths]
    assert again[0] is first[0] and again[1] is first[1]  # kept: served without decoding
    assert again[2] is not first[2] and (cache.hits, cache.misses) == (2, 6)
    assert all(a.tobytes() == pipeline.load(p).tobytes() for a, p in zip(again, paths))
    with pytest.raises(ValueError, match="max_bytes"):
        ImageMemo(pipeline, max_bytes=-1)


def test_scores_are_identical_with_and_without_workers_and_memo(bank, tmp_path):  # noqa: F811
    paths = []
    rng = np.random.default_rng(0)
    for i in range(9):
        paths.append(tmp_path / f"t{i}.jpg")
        Image.fromarray(rng.integers(0, 256, (30 + i, 50, 3), dtype=np.uint8)).save(paths[-1])
    pipeline = ImagePreprocessing(pad_to_square=True, decode_size=8)
    expected = Compare2Scorer(RowComparator(), bank, batch_size=10, pipeline=pipeline).score(paths)
    cache = ImageMemo(pipeline, max_bytes=10**6)
    for workers in (1, 3):
        scorer = Compare2Scorer(RowComparator(), bank, batch_size=10, workers=workers, memo=cache)
        assert torch.equal(scorer.score(paths), expected)
    assert cache.hits == len(paths) + len(bank.anchors)  # the second scorer found every image cached
    with pytest.raises(ValueError, match="memo loads with"):
        Compare2Scorer(RowComparator(), bank, pipeline=ImagePreprocessing(), memo=cache)


def test_folders_contribute_every_format_pillow_decodes_and_no_stub_format(tmp_path):
    from PIL import features

    from c2s_lightning.scoring.image_feed import expand_image_paths, image_suffixes

    suffixes = image_suffixes()
    # JPEG opens through a factory function, PNG through a class: both count
    assert {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".gif"} <= suffixes
    assert (".webp" in suffixes) == features.check("webp") and (".avif" in suffixes) == features.check("avif")
    assert not {".grib", ".bufr", ".h5", ".wmf", ".mpg"} & suffixes  # stubs need a handler; MPEG is a video
    for name in ("a.JPG", "b.jpeg", "c.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in expand_image_paths([tmp_path])] == ["a.JPG", "b.jpeg", "c.png"]
