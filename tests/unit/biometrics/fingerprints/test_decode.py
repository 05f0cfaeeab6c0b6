"""Decoding fingerprint images: formats, resolution, limits before decoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from entryexit.biometrics.fingerprints import (
    FingerprintDecodeLimits,
    ResolutionError,
    decode_fingerprint,
)
from entryexit.errors import ImageDecodeError, ImageTooLargeError


def ridges(width: int = 300, height: int = 400) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    image: np.ndarray = (127 + 100 * np.sin((x + 0.3 * y) * 2 * np.pi / 9)).astype(np.uint8)
    return image


def encode(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WSQ"])
def test_png_tiff_and_wsq_decode_to_greyscale(fmt: str) -> None:
    import wsq  # type: ignore[import-untyped]  # noqa: F401 - registers the WSQ encoder for this test

    image = decode_fingerprint(encode(ridges(), fmt), 500)
    assert image.pixels.dtype == np.uint8
    assert image.pixels.shape == (400, 300)
    assert image.source_format == fmt
    if fmt != "WSQ":  # WSQ is lossy
        np.testing.assert_array_equal(image.pixels, ridges())


def test_other_resolutions_are_resampled_to_500_ppi() -> None:
    image = decode_fingerprint(encode(ridges(296, 560), "TIFF"), 569)
    assert image.pixels.shape == (492, 260)
    assert image.source_ppi == 569


@pytest.mark.parametrize("ppi", [299, 250, 2001])
def test_resolutions_outside_the_range_are_refused(ppi: float) -> None:
    with pytest.raises(ResolutionError, match="ppi"):
        decode_fingerprint(encode(ridges(), "PNG"), ppi)


def test_colour_images_become_greyscale() -> None:
    rgb = np.stack([ridges()] * 3, axis=2)
    assert decode_fingerprint(encode(rgb, "PNG"), 500).pixels.ndim == 2


def test_limits_apply_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match="bytes"):
        decode_fingerprint(encode(ridges(), "PNG"), 500, FingerprintDecodeLimits(max_bytes=100))
    big = encode(np.zeros((3000, 3000), dtype=np.uint8), "PNG")  # compresses to a few KB
    with pytest.raises(ImageTooLargeError, match="pixels"):
        decode_fingerprint(big, 500)


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", encode(ridges(), "JPEG")],
    ids=["empty", "garbage", "jpeg"],
)
def test_other_data_is_refused(data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        decode_fingerprint(data, 500)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WSQ"])
def test_truncated_images_are_refused(fmt: str) -> None:
    import wsq  # noqa: F401

    data = encode(ridges(), fmt)
    with pytest.raises(ImageDecodeError):
        decode_fingerprint(data[: len(data) // 3], 500)


def test_too_small_a_print_is_refused() -> None:
    with pytest.raises(ImageDecodeError, match="at least"):
        decode_fingerprint(encode(ridges(60, 60), "PNG"), 500)
