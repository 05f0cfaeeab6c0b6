"""Decoding fingerprint images: formats, resolution, limits before decoding."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

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


CORPUS = Path(__file__).parent / "corpus"


def test_a_wsq_that_faults_the_native_decoder_is_a_clean_error_not_a_crash() -> None:
    # Three bytes changed in a synthetic print's WSQ make NBIS's decoder write out of bounds
    # (SIGSEGV, every time, when decoded in the calling process). Run in a child here so the
    # test reports the crash instead of dying of it.
    script = (
        "import sys\n"
        "from entryexit.biometrics.fingerprints import decode_fingerprint\n"
        "from entryexit.errors import ImageDecodeError\n"
        "try:\n"
        "    decode_fingerprint(sys.stdin.buffer.read(), 500)\n"
        "except ImageDecodeError as exc:\n"
        "    print('refused:', exc)\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script],
        input=(CORPUS / "wsq-segfault.wsq").read_bytes(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, f"the decoder crashed the process ({finished.returncode})"
    assert b"refused: the WSQ image is truncated or corrupt" in finished.stdout


def test_a_wsq_whose_header_breaks_the_codec_parser_is_refused() -> None:
    with pytest.raises(ImageDecodeError, match="WSQ"):
        decode_fingerprint((CORPUS / "wsq-header-error.wsq").read_bytes(), 500)


def test_a_wsq_over_the_pixel_limit_is_refused_without_its_pixels() -> None:
    import wsq  # noqa: F401

    with pytest.raises(ImageTooLargeError, match="pixels"):
        decode_fingerprint(
            encode(ridges(), "WSQ"), 500, FingerprintDecodeLimits(max_pixels=300 * 399)
        )


def test_the_pixel_limit_holds_for_the_copy_resampled_to_500_ppi() -> None:
    # 1,900 x 1,900 at 300 ppi passes the limit as sent (3.6 MP) but is 10 MP at 500 ppi.
    tiled = encode(np.tile(ridges(380, 380), (5, 5)), "PNG")
    with pytest.raises(ImageTooLargeError, match="at 500 ppi"):
        decode_fingerprint(tiled, 300)
    assert decode_fingerprint(tiled, 500).pixels.shape == (1900, 1900)


def _tiff_with_one_jpeg_strip(stream: bytes, side: int) -> bytes:
    """A greyscale TIFF (little-endian, compression 7) whose single strip is ``stream``."""
    entries = [
        (256, 4, side),  # width
        (257, 4, side),  # height
        (258, 3, 8),  # bits per sample
        (259, 3, 7),  # compression: JPEG
        (262, 3, 1),  # photometric: black is zero
        (273, 4, 0),  # strip offset, set below
        (277, 3, 1),  # samples per pixel
        (278, 4, side),  # rows per strip
        (279, 4, len(stream)),  # strip byte count
    ]
    data_offset = 8 + 2 + 12 * len(entries) + 4
    header = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, kind, value in entries:
        value = data_offset if tag == 273 else value
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        header += struct.pack("<HHI", tag, kind, 1) + packed
    return bytes(header + struct.pack("<I", 0)) + stream


def _progressive_jpeg_tiff(copies: int, side: int = 256) -> bytes:
    ramp = np.tile(np.linspace(0, 255, side, dtype=np.uint8), (side, 1))
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, format="JPEG", progressive=True, quality=90)
    jpeg = buffer.getvalue()
    first_scan = jpeg.index(b"\xff\xda")
    return _tiff_with_one_jpeg_strip(
        jpeg[:first_scan] + jpeg[first_scan:-2] * copies + jpeg[-2:], side
    )


def test_a_progressive_jpeg_tiff_as_encoders_write_it_decodes() -> None:
    data = _progressive_jpeg_tiff(copies=1)
    assert 1 < data.count(b"\xff\xda") <= 20
    assert decode_fingerprint(data, 500).pixels.shape == (256, 256)


def test_a_jpeg_tiff_of_many_strips_is_not_mistaken_for_many_scans() -> None:
    buffer = io.BytesIO()
    Image.fromarray(ridges(600, 1600)).save(
        buffer, format="TIFF", compression="jpeg", strip_size=600 * 8
    )
    data = buffer.getvalue()
    assert data.count(b"\xff\xda") > 100  # one baseline scan per strip
    assert decode_fingerprint(data, 500).pixels.shape == (1600, 600)


def test_a_tiff_whose_jpeg_strip_has_hundreds_of_scans_is_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The attacker's TIFF holds one progressive JPEG whose scans repeat: a small file, each
    # scan a pass over the pixels. libtiff stops at 100 scans by default, but an environment
    # variable raises that; this limit is the service's own.
    monkeypatch.setenv("LIBTIFF_JPEG_MAX_ALLOWED_SCAN_NUMBER", "1000000")
    bomb = _progressive_jpeg_tiff(copies=40)
    assert bomb.count(b"\xff\xda") > 200
    assert len(bomb) < 200_000
    with pytest.raises(ImageDecodeError, match="scans; at most"):
        decode_fingerprint(bomb, 500)
