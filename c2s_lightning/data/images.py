"""The image pipeline shared by training, evaluation and scoring: decode, 8-bit RGB, pad to square.

A large JPEG is decoded at the smallest DCT scale (PIL's ``Image.draft``, almost free) that still
covers ``reducing_gap`` times the model's input side S: its long side when padded (the square maps to
about S x S), else its short side (conservative for every resize). The margin of 2 (PIL's
``thumbnail`` uses it too) is there because DCT scaling is a box filter whose aliasing the processor's
last resize passes through: a mean difference from full-resolution decoding of 0.010 at gap 1, 0.001
at gap 2 (4000x3000 JPEGs, 448 px model; ``tests/test_images.py`` bounds it). Formats without DCT
scaling are decoded whole. The details: docs/fast_scoring.md.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np
from PIL import Image, ImageStat

from c2s_lightning.data.records import DatasetError
from c2s_lightning.infra.input_files import special_kind

CLIP_MEAN_COLOUR = (122, 116, 104)
"""The paper's padding colour: CLIP's image mean (0.48145466, 0.4578275, 0.40821073) x 255,
truncated as the release's ``expand2square`` call does (122.77, 116.75, 104.09)."""
OWN_MEAN = "image_mean"
"""``pad_colour`` of protocols written before the colour was recorded: each image's own mean."""

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
"""Integer modes read from 16-bit files (PIL scales a PGM's maxval to 0..65535 in mode ``I``)."""


@dataclasses.dataclass(frozen=True)
class ImagePreprocessing:
    """How an image file (or PIL image) becomes the RGB image handed to the model's processor.

    Part of a model's comparison protocol: training, evaluation and ``score`` all load through
    one instance, and ``to_dict``/``from_dict`` store it beside an exported model.

    Args:
        pad_to_square: Pad the short side, centred, with ``pad_colour`` (the paper's
            preprocessing), after decoding.
        decode_size: Side S in pixels of the model's square input (``ComparisonEncoder.image_size``):
            JPEGs are decoded at the smallest DCT scale (1/2, 1/4, 1/8) that covers ``reducing_gap`` x S
            (module docstring). None decodes at full resolution.
        reducing_gap: Margin over S (>= 1): 1 decodes as small as covers S; 2 keeps the result
            within about 0.001 of full-resolution decoding.
        pad_colour: RGB of the padding: the processor's image mean x 255 (``mean_colour``; the
            paper's CLIP mean by default, the same colour for every image), or None for each
            image's own mean colour (what exports made before the colour was recorded trained on).
    """

    pad_to_square: bool = False
    decode_size: int | None = None
    reducing_gap: float = 2.0
    pad_colour: tuple[int, int, int] | None = CLIP_MEAN_COLOUR

    def __post_init__(self) -> None:
        if self.decode_size is not None and (isinstance(self.decode_size, bool) or not
                                             isinstance(self.decode_size, int) or self.decode_size < 1):
            raise ValueError(f"decode_size must be a positive integer or None, got {self.decode_size!r}")
        if not self.reducing_gap >= 1:
            raise ValueError(f"reducing_gap must be >= 1, got {self.reducing_gap!r}")
        colour = self.pad_colour
        if colour is not None and (len(colour) != 3 or any(isinstance(c, bool) or not isinstance(c, int)
                                                           or not 0 <= c <= 255 for c in colour)):
            raise ValueError(f"pad_colour must be three integers in 0..255 or None, got {colour!r}")
        if colour is not None:  # a tuple, so one read from JSON (a list) equals the one written
            object.__setattr__(self, "pad_colour", tuple(colour))

    @classmethod
    def for_encoder(cls, encoder: Any, pad_to_square: bool = False,
                    pad_colour: str | None = None) -> "ImagePreprocessing":
        """The pipeline for a model: its encoder's ``image_size`` (None when it has none) and
        ``pad_colour`` (its processor's image mean; the CLIP mean when it has none), unless
        ``pad_colour`` is ``"image_mean"`` (each image's own, for exports that trained so)."""
        if pad_colour not in (None, OWN_MEAN):
            raise ValueError(f"pad_colour must be None (the processor's mean) or {OWN_MEAN!r}, got {pad_colour!r}")
        colour = None if pad_colour == OWN_MEAN else getattr(encoder, "pad_colour", None) or CLIP_MEAN_COLOUR
        return cls(pad_to_square=pad_to_square, decode_size=getattr(encoder, "image_size", None), pad_colour=colour)

    def to_dict(self) -> dict[str, Any]:
        """The ``image_preprocessing`` of a model's protocol (``compare2score.json``):
        ``pad_to_square``, ``pad_colour`` (``[r, g, b]``, or ``"image_mean"``: each image's own),
        ``image_size`` (None: the processor resizes), and ``decode_size``/``reducing_gap`` only
        when decoding is reduced, so a full-resolution pipeline writes what earlier versions wrote."""
        colour = OWN_MEAN if self.pad_colour is None else list(self.pad_colour)
        out: dict[str, Any] = {"pad_to_square": self.pad_to_square, "pad_colour": colour, "image_size": None}
        if self.decode_size is not None:
            out |= {"decode_size": self.decode_size, "reducing_gap": self.reducing_gap}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ImagePreprocessing":
        """Inverse of ``to_dict``; an earlier protocol's dict (no decode fields) decodes at full
        resolution, and one without a colour (``"image_mean"`` or none) pads with each image's own
        mean, as it was trained. Unknown keys or a fixed ``image_size`` are an error."""
        unknown = set(data) - {"pad_to_square", "pad_colour", "image_size", "decode_size", "reducing_gap"}
        if unknown:
            raise ValueError(f"unknown image preprocessing field(s) {sorted(unknown)}")
        if data.get("image_size") is not None:
            raise ValueError(f"image preprocessing {data} is not supported: the processor does the resizing "
                             "(image_size null)")
        colour = data.get("pad_colour", OWN_MEAN)
        if colour != OWN_MEAN and not isinstance(colour, (list, tuple)):
            raise ValueError(f"pad_colour must be [r, g, b] or {OWN_MEAN!r}, got {colour!r}")
        return cls(pad_to_square=bool(data.get("pad_to_square", False)), decode_size=data.get("decode_size"),
                   reducing_gap=float(data.get("reducing_gap", cls.reducing_gap)),
                   pad_colour=None if colour == OWN_MEAN else tuple(colour))

    def draft_size(self, size: tuple[int, int]) -> tuple[int, int] | None:
        """The smallest (width, height) a decoder may return for an image of ``size``, or None."""
        if self.decode_size is None:
            return None
        w, h = size
        side = max(w, h) if self.pad_to_square else min(w, h)
        target = math.ceil(self.decode_size * self.reducing_gap)
        if side <= target:
            return None
        factor = target / side
        return max(1, math.ceil(w * factor)), max(1, math.ceil(h * factor))

    def load(self, image: str | os.PathLike | Image.Image) -> Image.Image:
        """Decode (at reduced scale where allowed), convert to 8-bit RGB, pad if asked. A PIL image is
        only converted and padded, so loading twice is loading once.

        Raises:
            DatasetError: naming the file when it cannot be read, decoded or converted.
        """
        rgb = to_rgb(image, "<PIL image>") if isinstance(image, Image.Image) else self._decode(image)
        return pad_square(rgb, self.pad_colour) if self.pad_to_square else rgb

    def _decode(self, path: str | os.PathLike) -> Image.Image:
        special = special_kind(path)
        if special:  # opening a FIFO would block for ever, a device never end
            raise DatasetError(f"{path}: cannot read image ({special}, not a regular file)")
        try:
            with Image.open(path) as img:
                request = self.draft_size(img.size)
                if request is not None:
                    img.draft(None, request)  # JPEG: DCT scaling; other formats ignore it
                img.load()
                return to_rgb(img, path)
        except DatasetError:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise DatasetError(f"{path}: cannot read image ({err})") from err


def load_image(path: str | os.PathLike, pad_to_square: bool = False) -> Image.Image:
    """Open an image as 8-bit RGB at full resolution; with ``pad_to_square`` pad it with the CLIP mean
    colour. Raises ``DatasetError`` naming the file when it cannot be read or decoded."""
    return ImagePreprocessing(pad_to_square=pad_to_square).load(path)


def to_rgb(img: Image.Image, source: str | os.PathLike) -> Image.Image:
    """8-bit RGB from any PIL mode; 16-bit and float data are scaled, not clipped. Alpha is dropped
    (the colour channels kept), as ``convert("RGB")`` and the authors' release do; a palette with a
    transparent index goes through RGBA so PIL keeps its colours.

    Raises:
        DatasetError: naming ``source`` for float data outside [0, 1], integers outside the
            file's bit range, or a mode PIL cannot convert.
    """
    if img.mode == "RGB":
        return img
    if img.mode in _SIXTEEN_BIT:
        bits = _declared_bits(img)
        return _gray_to_rgb(np.asarray(img), 2**bits - 1, f"{bits}-bit", source)
    if img.mode == "F":
        return _gray_to_rgb(np.asarray(img), 1.0, "float", source)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    try:
        return img.convert("RGB")
    except ValueError as err:
        raise DatasetError(f"{source}: image mode {img.mode} cannot be converted to RGB ({err})") from err


def _declared_bits(img: Image.Image) -> int:
    """Bits per sample a TIFF declares (12-bit data in 16-bit words), else 16."""
    bits = (getattr(img, "tag_v2", None) or {}).get(258)
    if isinstance(bits, tuple):
        bits = bits[0] if bits else None
    return int(bits) if isinstance(bits, int) and 8 <= bits <= 16 else 16


def _gray_to_rgb(values: np.ndarray, top: float, kind: str, source) -> Image.Image:
    """Gray values in [0, top] -> rounded 8-bit RGB (for 16 bits: value / 257)."""
    values = values.astype(np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or high > top:
        raise DatasetError(f"{source}: {kind} image values span [{low:g}, {high:g}], outside [0, {top:g}]; "
                           "convert it to 8-bit RGB first")
    gray = np.rint(values * (255.0 / top)).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")


def mean_colour(image_mean) -> tuple[int, int, int]:
    """A processor's ``image_mean`` (0..1 per channel) as the 0..255 padding colour, truncated as
    the release does."""
    return tuple(int(value * 255) for value in image_mean)


def pad_square(img: Image.Image, colour: tuple[int, int, int] | None = CLIP_MEAN_COLOUR) -> Image.Image:
    """Pad to a square, centred (the paper's preprocessing), with ``colour``; None: the image's
    own mean colour per channel, rounded (exports made before the colour was recorded)."""
    w, h = img.size
    if w == h:
        return img
    if colour is None:
        colour = tuple(round(c) for c in ImageStat.Stat(img).mean)
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), colour)
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas
