"""Decode fingerprint images (PNG, TIFF, WSQ) to 8-bit greyscale at 500 ppi, with limits.

The byte limit is checked before parsing, the pixel limit from the header before any
pixel is decoded and again for the size after resampling. WSQ is parsed and decoded only in
a child process (:mod:`._wsq`): its C decoder faults on hostile input. The resolution is the
one the sender states (a scanner knows it; file metadata is often absent or wrong); below
:data:`MIN_PPI` the ridges are too coarsely sampled for minutiae and the image is refused.
Other resolutions are resampled to 500 ppi (area averaging when shrinking, bicubic when
enlarging), the resolution the extractors and the matcher's constants are made for.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from entryexit.biometrics.fingerprints._wsq import decode_wsq, is_wsq
from entryexit.errors import ImageDecodeError, ImageTooLargeError

ENGINE_PPI = 500.0
MIN_PPI = 300.0
MAX_PPI = 2000.0
FORMATS = frozenset({"PNG", "TIFF", "WSQ"})
# Decoded in this process; WSQ never is (see :mod:`._wsq`).
_IN_PROCESS_FORMATS = ("PNG", "TIFF")


class ResolutionError(ImageDecodeError):
    code = "fingerprint-resolution"


@dataclass(frozen=True, slots=True)
class FingerprintDecodeLimits:
    max_bytes: int = 10 * 1024 * 1024
    # A 500 ppi rolled or flat print is under 1000 x 1000; a four-finger slap ~1600 x 1500.
    max_pixels: int = 4_000_000
    # After resampling: smaller than this cannot hold enough ridge area to compare.
    min_side: int = 96


DEFAULT_LIMITS = FingerprintDecodeLimits()


@dataclass(frozen=True, slots=True)
class FingerprintImage:
    """8-bit greyscale pixels at :data:`ENGINE_PPI` and how they arrived."""

    pixels: npt.NDArray[np.uint8]
    source_format: str
    source_ppi: float

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    def to_png(self) -> bytes:
        """The 500 ppi pixels as a PNG, in memory (the frame the template's minutiae are in,
        so a drawing over it lines up)."""
        buffer = io.BytesIO()
        Image.fromarray(self.pixels).save(buffer, format="PNG")
        return buffer.getvalue()


def decode_fingerprint(
    data: bytes, ppi: float, limits: FingerprintDecodeLimits = DEFAULT_LIMITS
) -> FingerprintImage:
    """Decode ``data`` (PNG, TIFF or WSQ) scanned at ``ppi`` into a 500 ppi greyscale image."""
    if not MIN_PPI <= ppi <= MAX_PPI:
        raise ResolutionError(
            f"a fingerprint at {ppi:g} ppi is not accepted; {MIN_PPI:g} to {MAX_PPI:g} ppi"
            f" (500 ppi is the standard)"
        )
    if not data:
        raise ImageDecodeError("the fingerprint image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(
            f"the fingerprint image is {len(data)} bytes; at most {limits.max_bytes} are accepted"
        )
    if is_wsq(data):
        fmt = "WSQ"
        pixels = decode_wsq(data, limits.max_pixels)
    else:
        fmt, pixels = _decode_in_process(data, limits)
    _check_resampled_size(pixels.shape[1], pixels.shape[0], ppi, limits)
    pixels = resample_to_engine_ppi(pixels, ppi)
    if min(pixels.shape) < limits.min_side:
        raise ImageDecodeError(
            f"the fingerprint image is {pixels.shape[1]} x {pixels.shape[0]} pixels at 500 ppi;"
            f" at least {limits.min_side} on each side is needed"
        )
    return FingerprintImage(pixels=pixels, source_format=fmt, source_ppi=float(ppi))


def _decode_in_process(
    data: bytes, limits: FingerprintDecodeLimits
) -> tuple[str, npt.NDArray[np.uint8]]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_IN_PROCESS_FORMATS)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError("the data is not a readable PNG, TIFF or WSQ image") from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError("the image declares more pixels than allowed") from exc
    with image:
        width, height = image.size
        if width * height > limits.max_pixels:
            raise ImageTooLargeError(
                f"the fingerprint image is {width} x {height} pixels;"
                f" at most {limits.max_pixels} pixels are accepted"
            )
        fmt = str(image.format)
        try:
            return fmt, _to_grey(image)
        except Exception as exc:  # Pillow's codecs raise a variety of errors on corrupt data
            raise ImageDecodeError(f"the {fmt} image is truncated or corrupt") from exc


def _check_resampled_size(
    width: int, height: int, ppi: float, limits: FingerprintDecodeLimits
) -> None:
    """A print stated at a low resolution grows when resampled to 500 ppi (300 ppi: 2.8x the
    pixels), so the pixel limit holds for the engine's copy too, before it is made."""
    scale = ENGINE_PPI / float(ppi)
    resampled = round(width * scale) * round(height * scale)
    if scale > 1.0 and resampled > limits.max_pixels:
        raise ImageTooLargeError(
            f"the fingerprint image is {width} x {height} pixels at {ppi:g} ppi, which is"
            f" {resampled} pixels at 500 ppi; at most {limits.max_pixels} are accepted"
        )


def _to_grey(image: Image.Image) -> npt.NDArray[np.uint8]:
    image.load()
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(image, dtype=np.float64)
        top = float(wide.max()) or 1.0
        return np.ascontiguousarray(np.clip(wide * 255.0 / top, 0, 255).astype(np.uint8))
    if image.mode != "L":
        image = image.convert("L")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def resample_to_engine_ppi(pixels: npt.NDArray[np.uint8], ppi: float) -> npt.NDArray[np.uint8]:
    """``pixels`` scanned at ``ppi`` resampled to 500 ppi (unchanged within 0.5%)."""
    scale = ENGINE_PPI / float(ppi)
    if abs(scale - 1.0) <= 0.005:
        return pixels
    height, width = pixels.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(pixels, size, interpolation=interpolation))
