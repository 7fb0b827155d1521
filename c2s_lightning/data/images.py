"""Image loading for training and scoring: RGB, optional pad-to-square with the mean colour."""

from __future__ import annotations

import os

from PIL import Image, ImageStat

from c2s_lightning.data.records import DatasetError


def load_image(path: str | os.PathLike, pad_to_square: bool = False) -> Image.Image:
    """Open an image as RGB; with ``pad_to_square`` pad the short side with the image's mean colour.

    Raises:
        DatasetError: naming the file when it cannot be read or decoded.
    """
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DatasetError(f"{path}: cannot read image ({err})") from err
    return pad_square(img) if pad_to_square else img


def pad_square(img: Image.Image) -> Image.Image:
    """Pad to a square, centred, with the image's own mean colour (the paper's preprocessing)."""
    w, h = img.size
    if w == h:
        return img
    mean = tuple(round(c) for c in ImageStat.Stat(img).mean)
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), mean)
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas
