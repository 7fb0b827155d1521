"""Loading images ahead of the model: an ordered prefetching map and a bounded memo of decoded images.

Threads, not processes (docs/fast_scoring.md): PIL releases the GIL while it decodes, and decoded
images need no pickling to reach the main thread.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from PIL import Image, ImageFile

from c2s_lightning.data.images import ImagePreprocessing

T = TypeVar("T")
R = TypeVar("R")


def image_suffixes() -> set[str]:
    """The file name endings of every image format the installed Pillow can open and decode (what a
    folder given to ``score`` or a metric contributes); stub formats, which need a handler of their
    own, and MPEG, a video, are left out."""
    def decodable(name: str) -> bool:
        opener = Image.OPEN.get(name, (None,))[0]  # a class, or a factory function (JPEG's)
        stub = isinstance(opener, type) and issubclass(opener, ImageFile.StubImageFile)
        return opener is not None and not stub and name != "MPEG"

    return {suffix for suffix, name in Image.registered_extensions().items() if decodable(name)}


def expand_image_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; each folder replaced by the images under it (recursively, sorted; a
    ``ValueError`` if there are none)."""
    out: list[Path] = []
    suffixes = image_suffixes()
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes)
            if not found:
                raise ValueError(f"{path}: no images in this folder (no file ending in an image format Pillow "
                                 "reads, e.g. .jpg, .png, .webp, .avif)")
            out += found
        else:
            out.append(path)
    return out


def prefetch(load: Callable[[T], R], items: Iterable[T], workers: int = 0, ahead: int | None = None) -> Iterator[R]:
    """``load(item)`` for every item, in order, computed ahead of the consumer by worker threads.

    Args:
        load: The work per item (decoding an image); its exception is raised when the consumer
            reaches that item, as without workers.
        workers: Threads; 0 loads each item in the caller's thread when it is asked for.
        ahead: Items submitted ahead of the consumer (default ``2 * workers``): the bound on
            the memory held by loaded but unconsumed results.
    """
    if workers <= 0:
        yield from map(load, items)
        return
    ahead = max(1, ahead if ahead is not None else 2 * workers)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="c2s-load")
    pending: deque[Future] = deque()
    try:
        for item in items:
            oldest = pending.popleft() if len(pending) == ahead else None
            pending.append(pool.submit(load, item))  # the window stays full while the consumer works
            if oldest is not None:
                yield oldest.result()
        while pending:
            yield pending.popleft().result()
    finally:  # the consumer stopped early or an item failed: drop what is not started
        pool.shutdown(wait=True, cancel_futures=True)


class ImageMemo:
    """Images loaded through ``pipeline``, kept by path up to ``max_bytes`` of decoded pixels (width x
    height x bands), for the evaluator's images read in the same order at every validation.

    Once full it admits nothing new: on a repeated scan larger than the memo, least-recently-used
    eviction would always evict the image needed next, while keeping the first images serves that
    many hits on every pass. Thread-safe, decoding outside the lock; the images returned are shared,
    not to be modified in place.
    """

    def __init__(self, pipeline: ImagePreprocessing, max_bytes: int):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.pipeline, self.max_bytes = pipeline, max_bytes
        self.bytes, self.hits, self.misses = 0, 0, 0
        self._images: dict[str, Image.Image] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._images)

    def __call__(self, image: str | os.PathLike | Image.Image) -> Image.Image:
        """``pipeline.load(image)``, from the memo when a path was loaded before."""
        if isinstance(image, Image.Image):
            return self.pipeline.load(image)
        key = os.fspath(image)
        with self._lock:
            cached = self._images.get(key)
            self.hits += cached is not None
        if cached is not None:
            return cached
        loaded = self.pipeline.load(image)
        size = loaded.width * loaded.height * len(loaded.getbands())
        with self._lock:
            self.misses += 1
            if key not in self._images and self.bytes + size <= self.max_bytes:
                self._images[key] = loaded
                self.bytes += size
        return loaded
