"""Decode fingerprint images (PNG, TIFF, WSQ) to 8-bit greyscale at 500 ppi, with limits.

The byte limit is checked before parsing, the pixel limit from the header before any
pixel is decoded and again for the size after resampling. WSQ is parsed and decoded only in
a child process (:mod:`._wsq`): its C decoder faults on hostile input. The resolution is the
one the sender states (a scanner knows it; file metadata is often absent or wrong); below
:data:`MIN_PPI` the ridges are too coarsely sampled for minutiae and the image is refused.
Other resolutions are resampled to 500 ppi (area averaging when shrinking, bicubic when
enlarging), the resolution the extractors and the matcher's constants are made for.

A TIFF may hold JPEG-compressed strips or tiles, which libtiff hands to libjpeg; a progressive
JPEG stream is decoded scan by scan, each a pass over its pixels, so each stream is held to
the scan limit of the face decoder (:data:`entryexit.biometrics.decode.MAX_JPEG_SCANS`) before
any pixel is decoded (:func:`_check_tiff_jpeg_scans`).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from entryexit.biometrics.decode import MAX_JPEG_SCANS
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
        _check_tiff_jpeg_scans(image, data)
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


# TIFF compression 6 (old-style) and 7 (JPEG); the tags that locate the JPEG streams: strips,
# tiles, and old-style JPEG's interchange stream (offsets tag, byte counts tag).
_TIFF_JPEG_COMPRESSION = frozenset({6, 7})
_TIFF_STREAM_TAGS = ((273, 279), (324, 325), (513, 514))
_START_OF_SCAN = b"\xff\xda"


def _check_tiff_jpeg_scans(image: Image.Image, data: bytes) -> None:
    """Refuse a JPEG-compressed TIFF any of whose JPEG streams has more scans than any
    encoder writes. Each strip or tile is its own stream, so the limit applies per stream
    (a legitimate file of 200 baseline strips has 200 scans) and bounds the decoding work to
    :data:`MAX_JPEG_SCANS` passes over the pixels, which the pixel limit bounds. Counting
    the start-of-scan marker in a stream's bytes is an upper bound (entropy-coded data stuffs
    every 0xFF byte). libtiff has a limit of its own (100 by default) that an environment
    variable raises; this one does not depend on how the process was started."""
    tags = getattr(image, "tag_v2", None)
    if image.format != "TIFF" or tags is None:
        return
    if tags.get(259) not in _TIFF_JPEG_COMPRESSION:
        return
    streams: list[tuple[int, int]] = []
    located = True
    for offsets_tag, counts_tag in _TIFF_STREAM_TAGS:
        offsets, counts = tags.get(offsets_tag), tags.get(counts_tag)
        if offsets is None or counts is None:
            continue
        offsets = offsets if isinstance(offsets, tuple) else (offsets,)
        counts = counts if isinstance(counts, tuple) else (counts,)
        located = located and len(offsets) == len(counts)
        streams += [
            (int(start), int(start) + int(length))
            for start, length in zip(offsets, counts, strict=False)
        ]
    if not streams or not located:  # streams not located: the whole file is an upper bound
        streams = [(0, len(data))]
    scans = max(data.count(_START_OF_SCAN, start, end) for start, end in streams)
    if scans > MAX_JPEG_SCANS:
        raise ImageDecodeError(
            f"a JPEG stream in the TIFF has {scans} scans; at most {MAX_JPEG_SCANS} are accepted"
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
