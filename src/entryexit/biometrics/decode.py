"""Decode untrusted image bytes into a BGR pixel array, with limits.

Images arrive from gate cameras, kiosks and document holdings: any of them may be truncated,
not an image at all, or built to exhaust memory (a decompression bomb declares a huge size in
a tiny file). The byte and pixel limits are checked before any pixel data is decoded.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from entryexit.errors import ImageDecodeError, ImageTooLargeError

ALLOWED_FORMATS = frozenset({"JPEG", "PNG"})
# e-passport chips also carry JPEG 2000 (ISO/IEC 19794-5); accepted only where asked for.
CHIP_FORMATS = frozenset({"JPEG", "JPEG2000"})


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Upper bounds for an accepted image."""

    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 32


DEFAULT_DECODE_LIMITS = DecodeLimits()


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """Pixels in OpenCV's BGR order (H x W x 3, uint8), EXIF orientation already applied."""

    pixels: NDArray[np.uint8]
    source_format: str

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def decode_image(
    data: bytes,
    limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
    formats: frozenset[str] = ALLOWED_FORMATS,
) -> DecodedImage:
    """Decode JPEG or PNG bytes (or ``formats``); raise :class:`ImageDecodeError` otherwise."""
    if not data:
        raise ImageDecodeError("the image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(
            f"the image is {len(data)} bytes; at most {limits.max_bytes} bytes are accepted"
        )
    try:
        with warnings.catch_warnings():
            # Pillow warns (rather than raises) on moderately large images; our own pixel
            # limit below is the one that applies.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageDecodeError("the data is not a readable JPEG or PNG image") from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError("the image declares more pixels than allowed") from exc

    with image:
        if image.format not in formats:
            raise ImageDecodeError(
                f"image format {image.format or 'unknown'} is not accepted here;"
                f" send {' or '.join(sorted(formats))}"
            )
        width, height = image.size
        if width * height > limits.max_pixels:
            raise ImageTooLargeError(
                f"the image is {width}x{height} pixels; at most {limits.max_pixels} pixels"
                " are accepted"
            )
        if min(width, height) < limits.min_side:
            raise ImageDecodeError(
                f"the image is {width}x{height} pixels; each side must be at least"
                f" {limits.min_side}"
            )
        source_format = image.format
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image.load()
                oriented = ImageOps.exif_transpose(image)
                rgb = oriented.convert("RGB")
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError("the image declares more pixels than allowed") from exc
        except (OSError, ValueError, SyntaxError) as exc:
            # Truncated JPEG/PNG streams raise OSError from load(); corrupt EXIF raises
            # ValueError or SyntaxError from the metadata parser.
            raise ImageDecodeError("the image data is truncated or corrupt") from exc

    rgb_array = np.asarray(rgb, dtype=np.uint8)
    bgr = np.ascontiguousarray(rgb_array[:, :, ::-1])
    return DecodedImage(pixels=bgr, source_format=source_format)
