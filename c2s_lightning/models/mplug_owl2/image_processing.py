"""Image preprocessing of the mPLUG-Owl2 release, with PIL and numpy only.

Pad to a square with the CLIP mean colour (image centred), resize bicubic to the model's image
size, scale to [0, 1], normalise with the CLIP mean and std.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from c2s_lightning.data.images import mean_colour, pad_square

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclasses.dataclass(eq=False)  # hashable and compared by identity, like any processor
class MPLUGOwl2ImageProcessor:
    """PIL images -> ``pixel_values`` ``(N, 3, size, size)`` float32.

    Args:
        image_size: Output side in pixels (448 for the released model).
        image_mean: Per-channel mean; its 0-255 integer version is the padding colour, as released.
        image_std: Per-channel std.
    """

    image_size: int = 448
    image_mean: Sequence[float] = CLIP_MEAN
    image_std: Sequence[float] = CLIP_STD

    @property
    def fill_colour(self) -> tuple[int, int, int]:
        """Padding colour: ``int(mean * 255)`` per channel (truncated, as released)."""
        return mean_colour(self.image_mean)

    def preprocess_one(self, image: Image.Image) -> torch.Tensor:
        """One image -> ``(3, size, size)``."""
        image = pad_square(image.convert("RGB"), self.fill_colour)
        image = image.resize((self.image_size, self.image_size), Image.Resampling.BICUBIC)
        # Scale in float64 then cast, the order CLIPImageProcessor uses.
        array = (np.asarray(image, dtype=np.float64) * (1 / 255)).astype(np.float32)
        mean = np.asarray(self.image_mean, dtype=np.float32)
        std = np.asarray(self.image_std, dtype=np.float32)
        return torch.from_numpy(((array - mean) / std).transpose(2, 0, 1).copy())

    def __call__(self, images: Image.Image | Sequence[Image.Image]) -> torch.Tensor:
        """Images -> ``(N, 3, size, size)`` (N = 1 for a single image)."""
        if isinstance(images, Image.Image):
            images = [images]
        if not images:
            raise ValueError("No images given")
        return torch.stack([self.preprocess_one(image) for image in images])
