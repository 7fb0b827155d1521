"""Stable content hashes for the comparison cache: of a comparison protocol and of an image.

BLAKE2b with a 16-byte digest (32 hex characters): fast (16 ms for a decoded 1024x768 RGB photo on
a busy 2-core CPU, paid once per test image) with collisions out of reach (about 2^-64 after 2^32
images). Each kind has its own personalisation string, so a file hash never equals a pixel hash or
a protocol key. ``pixel_digest`` hashes the pixels exactly as a comparator sees them (comparators
get PIL images: ``CachingComparator`` uses it); ``file_digest`` the file's bytes, cheaper but blind
to preprocessing after loading, so a caller keying on it puts that preprocessing into the protocol.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from PIL import Image

from c2s_lightning.infra.input_files import hash_file

DIGEST_SIZE = 16
"""Bytes per digest; hex strings are twice as long."""


def protocol_key(protocol: Mapping[str, Any]) -> str:
    """A stable key of a comparison protocol (anything ``json.dumps`` takes): the hash of its
    canonical JSON (sorted keys, no whitespace, ASCII), so equal dicts give equal keys whatever
    their key order (tuples count as lists, as in JSON).

    Raises:
        TypeError: a value JSON cannot hold, or a protocol that is not a mapping.
        ValueError: NaN or infinity in the protocol.
    """
    if not isinstance(protocol, Mapping):
        raise TypeError(f"a comparison protocol is a mapping, got {type(protocol).__name__}")
    try:
        text = json.dumps(protocol, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except TypeError as err:
        raise TypeError(f"the comparison protocol is not JSON-able: {err}") from err
    except ValueError as err:
        raise ValueError(f"the comparison protocol holds NaN or infinity: {err}") from err
    return hashlib.blake2b(text.encode(), digest_size=DIGEST_SIZE, person=b"c2s-protocol").hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """Hash of a file's bytes (not decoded; when to use it: the module docstring). An unreadable
    file is an ``OSError`` naming it."""
    try:
        return hash_file(path, hashlib.blake2b(digest_size=DIGEST_SIZE, person=b"c2s-file")).hexdigest()
    except OSError as err:
        raise OSError(f"{path}: cannot read the image file to hash it ({err})") from err


def pixel_digest(image: Image.Image) -> str:
    """Hash of a PIL image's decoded pixels, mode and size (and palette, for palette modes): not its
    metadata (EXIF, ICC profile, file format), which comparators never see."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"pixel_digest takes a PIL image, got {type(image).__name__}")
    h = hashlib.blake2b(digest_size=DIGEST_SIZE, person=b"c2s-pixels")
    h.update(f"{image.mode} {image.size[0]}x{image.size[1]};".encode())
    if image.mode in ("P", "PA"):  # the index bytes mean nothing without the palette
        h.update(bytes(image.getpalette() or ()))
    h.update(image.tobytes())
    return h.hexdigest()
