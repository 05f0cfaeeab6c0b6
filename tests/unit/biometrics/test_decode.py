from __future__ import annotations

import io
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from entryexit.biometrics.decode import (
    CHIP_DG2_LIMITS,
    DEFAULT_KIND_LIMITS,
    GATE_FRAME_LIMITS,
    PEAK_BYTES_PER_PIXEL,
    REFERENCE_PHOTO_LIMITS,
    DecodeLimits,
    DecodeSlots,
    ImageKind,
    decode_ceiling_bytes,
    decode_image,
)
from entryexit.errors import ImageDecodeError, ImageTooLargeError


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def test_jpeg_decodes_to_bgr_pixels() -> None:
    data = encode(Image.new("RGB", (64, 48), (255, 0, 0)), "JPEG", quality=95)
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == (64, 48)
    assert decoded.source_format == "JPEG"
    blue, green, red = decoded.pixels[24, 32]
    assert red > 240
    assert green < 15
    assert blue < 15


def test_png_with_alpha_and_greyscale_become_three_channels() -> None:
    for image in (Image.new("RGBA", (40, 40), (0, 0, 255, 128)), Image.new("L", (40, 40), 90)):
        decoded = decode_image(encode(image, "PNG"))
        assert decoded.pixels.shape == (40, 40, 3)
        assert decoded.pixels.dtype == np.uint8


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(Image.new("RGB", (80, 40), (0, 128, 0)), "JPEG", exif=exif.tobytes())
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == (40, 80)


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, this is text", b"\xff\xd8\xff\xe0" + b"\x00" * 20, b"GIF89a" + b"\x00" * 50],
)
def test_non_images_raise_decode_error(data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        decode_image(data)


def test_truncated_jpeg_raises_decode_error() -> None:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
    data = encode(noise, "JPEG", quality=90)
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2])


def test_other_formats_are_refused() -> None:
    data = encode(Image.new("RGB", (64, 64)), "BMP")
    with pytest.raises(ImageDecodeError, match="not a readable JPEG or PNG image"):
        decode_image(data)


def test_no_other_pillow_plugin_parses_a_gate_frame() -> None:
    """A plugin registered for another purpose (WSQ, for fingerprints) never sees the bytes of
    a face image: before, arbitrary bytes reached its parser, which crashed (UnboundLocalError)
    instead of refusing them."""
    import wsq  # type: ignore[import-untyped]  # noqa: F401 - registers the WSQ plugin with Pillow, as fingerprint code does

    seen: list[str] = []
    original = Image.open

    def spy(fp: object, mode: str = "r", formats: object = None) -> object:
        seen.append(repr(formats))
        return original(fp, mode, formats)  # type: ignore[arg-type]

    Image.open = spy  # type: ignore[assignment]
    try:
        with pytest.raises(ImageDecodeError):
            decode_image(b"\xff\xa0" + bytes(200))  # a WSQ start-of-image marker
    finally:
        Image.open = original
    assert seen
    assert "WSQ" not in seen[0]
    assert "JPEG" in seen[0]


def test_too_many_bytes_is_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match="at most 100 bytes"):
        decode_image(b"\x89PNG" + b"\x00" * 200, DecodeLimits(max_bytes=100))


def test_decompression_bomb_is_refused() -> None:
    # 12,000 x 5,000 black pixels compress to a few tens of kilobytes.
    bomb = encode(Image.new("L", (12_000, 5_000)), "PNG")
    assert len(bomb) < 200_000
    with pytest.raises(ImageTooLargeError, match="pixels"):
        decode_image(bomb, DecodeLimits(max_pixels=40_000_000))


def test_tiny_images_are_refused() -> None:
    with pytest.raises(ImageDecodeError, match="at least 32"):
        decode_image(encode(Image.new("RGB", (10, 200)), "PNG"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_either_decode_or_raise_the_typed_error(data: bytes) -> None:
    try:
        decoded = decode_image(data)
    except ImageDecodeError:
        return
    assert decoded.pixels.ndim == 3


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=2000), st.data())
def test_corrupted_real_jpegs_never_escape_as_other_errors(cut: int, data: st.DataObject) -> None:
    rng = np.random.default_rng(3)
    original = encode(Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)), "JPEG")
    position = data.draw(st.integers(min_value=0, max_value=len(original) - 1))
    damaged = bytearray(original[: max(cut, 10)] if cut < len(original) else original)
    if position < len(damaged):
        damaged[position] ^= 0xFF
    try:
        decoded = decode_image(bytes(damaged))
    except ImageDecodeError:
        return
    # Damage a decoder tolerates still yields the declared image, never something else.
    assert decoded.pixels.shape == (96, 96, 3)


# --- what real devices send, and per-kind limits ----------------------------------------------


def test_mpo_from_a_phone_is_read_by_its_first_frame() -> None:
    first = Image.new("RGB", (64, 48), (250, 0, 0))
    second = Image.new("RGB", (64, 48), (0, 250, 0))
    data = encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    decoded = decode_image(data)
    assert decoded.source_format == "JPEG"
    blue, green, red = (int(v) for v in decoded.pixels[24, 32])
    assert red > 230
    assert green < 20
    assert blue < 20


def test_16_bit_greyscale_png_is_scaled_not_clipped() -> None:
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (40, 1))
    image = Image.fromarray(ramp)
    assert image.mode == "I;16"
    decoded = decode_image(encode(image, "PNG"))
    row = decoded.pixels[0, :, 0].astype(int)
    assert row[0] == 0
    assert row[-1] == 255
    assert 120 <= row[32] <= 135  # mid-grey, not white
    assert (np.diff(row) >= 0).all()
    assert (decoded.pixels[..., 0] == decoded.pixels[..., 2]).all()


def test_a_jpeg_far_larger_than_needed_is_decoded_reduced() -> None:
    rng = np.random.default_rng(1)
    small = Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    data = encode(small.resize((6000, 4500)), "JPEG", quality=50)
    limits = DecodeLimits(max_pixels=8_000_000, working_side=1500)
    decoded = decode_image(data, limits)
    # 1/4 keeps the long side >= 1500; 27 MP declared, 1.7 MP decoded.
    assert (decoded.width, decoded.height) == (1500, 1125)
    with pytest.raises(ImageTooLargeError, match="6000x4500"):
        decode_image(data, DecodeLimits(max_pixels=8_000_000))
    # Less than twice the working side: decoded at full size.
    assert decode_image(data, DecodeLimits(working_side=4000)).width == 6000


def test_a_png_just_over_the_gate_limit_is_refused_before_decoding() -> None:
    bomb = encode(Image.new("L", (4100, 3100)), "PNG")
    with pytest.raises(ImageTooLargeError, match="4100x3100"):
        decode_image(bomb, GATE_FRAME_LIMITS)
    assert decode_image(bomb, REFERENCE_PHOTO_LIMITS).width == 4100


def test_each_kind_has_its_limits_and_the_ceiling_is_stated() -> None:
    assert DEFAULT_KIND_LIMITS.for_kind(ImageKind.GATE_FRAME) == GATE_FRAME_LIMITS
    assert DEFAULT_KIND_LIMITS.for_kind(ImageKind.CHIP_DG2) == CHIP_DG2_LIMITS
    fingerprint = DEFAULT_KIND_LIMITS.for_kind(ImageKind.FINGERPRINT)
    assert fingerprint.working_side is None
    assert GATE_FRAME_LIMITS.max_pixels == 4096 * 3072
    capped = REFERENCE_PHOTO_LIMITS.capped(DecodeLimits(max_bytes=1000, max_pixels=10**9))
    assert (capped.max_bytes, capped.max_pixels) == (1000, REFERENCE_PHOTO_LIMITS.max_pixels)
    assert decode_ceiling_bytes(2) == 2 * PEAK_BYTES_PER_PIXEL * 16_000_000
    with pytest.raises(ImageTooLargeError, match="at most 1048576 bytes"):
        decode_image(b"\xff\xd8" + b"\x00" * (1024 * 1024), CHIP_DG2_LIMITS)


def test_decode_slots_bound_concurrency() -> None:
    import threading
    import time

    slots = DecodeSlots(2)
    inside = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with slots:
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.02)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2
    with pytest.raises(ValueError, match="at least one"):
        DecodeSlots(0)


def _progressive_jpeg() -> bytes:
    ramp = np.linspace(0, 255, 320, dtype=np.uint8)
    pixels = np.stack([np.tile(ramp, (240, 1))] * 3, axis=-1)
    return encode(Image.fromarray(pixels), "JPEG", progressive=True, quality=90)


def test_a_progressive_jpeg_as_cameras_write_it_decodes() -> None:
    data = _progressive_jpeg()
    assert 1 < data.count(b"\xff\xda") <= 20
    assert decode_image(data).pixels.shape == (240, 320, 3)


def test_a_jpeg_of_thousands_of_scans_is_refused_before_decoding() -> None:
    # An attacker's 165 KB JPEG of 2,000 scans held a decode slot for minutes, and two of
    # them stalled every gate. Its scans repeated: a small file, each scan a pass over it all.
    data = _progressive_jpeg()
    first_scan = data.index(b"\xff\xda")
    scans = data[first_scan:-2]
    bomb = data[:first_scan] + scans * 200 + data[-2:]
    assert len(bomb) < 1_000_000
    with pytest.raises(ImageDecodeError, match="scans; at most"):
        decode_image(bomb)


def test_a_freed_decode_slot_goes_to_the_owner_holding_fewest() -> None:
    """One gate key with many of the largest frames queued cannot make another key's capture
    wait behind all of them (probe P5): the next free slot is the other key's."""
    import threading
    import time

    from entryexit.biometrics.decode import slot_owner

    slots = DecodeSlots(2)
    order: list[str] = []
    release = {name: threading.Event() for name in ("a1", "a2", "a3", "a4", "b1")}
    lock = threading.Lock()

    def work(owner: str, name: str) -> None:
        with slot_owner(owner), slots:
            with lock:
                order.append(name)
            release[name].wait(5)

    def start(owner: str, name: str) -> threading.Thread:
        thread = threading.Thread(target=work, args=(owner, name))
        thread.start()
        return thread

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 5
        while len(order) < count:
            assert time.monotonic() < deadline, order
            time.sleep(0.005)

    threads = [start("flood", "a1"), start("flood", "a2")]
    wait_for(2)
    threads += [start("flood", "a3"), start("flood", "a4")]
    time.sleep(0.05)  # both queued before the other key asks
    threads.append(start("victim", "b1"))
    time.sleep(0.05)
    release["a1"].set()
    wait_for(3)
    assert order[2] == "b1"
    for event in release.values():
        event.set()
    for thread in threads:
        thread.join(5)
    assert sorted(order) == ["a1", "a2", "a3", "a4", "b1"]


def test_a_wait_for_a_decode_slot_that_is_interrupted_leaves_no_one_stuck() -> None:
    """An exception while waiting (an interrupt) must take the waiter out of the queue:
    left there it would be next for ever and every later request would wait (review L5)."""
    import threading

    class InterruptedOnce(threading.Condition):
        interrupted = False

        def wait(self, timeout: float | None = None) -> bool:
            if not self.interrupted and threading.current_thread().name == "interrupted":
                InterruptedOnce.interrupted = True
                raise RuntimeError("interrupted")
            return super().wait(timeout)

    slots = DecodeSlots(1)
    object.__setattr__(slots, "_changed", InterruptedOnce())
    errors: list[BaseException] = []

    def interrupted() -> None:
        try:
            with slots:
                pass
        except RuntimeError as exc:
            errors.append(exc)

    with slots:
        waiter = threading.Thread(target=interrupted, name="interrupted")
        waiter.start()
        waiter.join(5)
    assert len(errors) == 1
    served = threading.Event()

    def later() -> None:
        with slots:
            served.set()

    threading.Thread(target=later, daemon=True).start()
    assert served.wait(5)


def test_a_bounded_wait_for_a_decode_slot_gives_up_and_leaves_no_ticket_behind() -> None:
    """The fingerprint slots wait a bounded time (``acquire(timeout)``): a wait that runs out
    holds nothing and leaves no ticket queued, which would be next for ever (review L5)."""
    slots = DecodeSlots(1)
    with slots:
        started = time.monotonic()
        assert not slots.acquire(0.05)
        assert time.monotonic() - started >= 0.05
    assert slots._queue == []
    assert slots.acquire(0.05)
    slots.release()
    assert slots._free == 1


def test_a_kiosk_preview_larger_than_one_megapixel_is_refused_from_its_header() -> None:
    """Probe s9 D1: a 4096x3072 JPEG at quality 10 fits the preview's 256 KiB and was run
    through the detector at full size (0.16-0.19 s of CPU a preview). As a preview it is
    refused before any pixel is decoded; the kiosk's 480-pixel frames pass."""
    from entryexit.biometrics.decode import PREVIEW_LIMITS

    large = encode(Image.new("RGB", (4096, 3072), (90, 90, 90)), "JPEG", quality=10)
    assert len(large) <= PREVIEW_LIMITS.max_bytes
    assert DEFAULT_KIND_LIMITS.for_kind(ImageKind.PREVIEW) == PREVIEW_LIMITS
    with pytest.raises(ImageTooLargeError, match="pixels"):
        decode_image(large, PREVIEW_LIMITS)
    decode_image(large, GATE_FRAME_LIMITS)  # as a gate frame, it was accepted
    small = encode(Image.new("RGB", (480, 360), (90, 90, 90)), "JPEG", quality=80)
    assert decode_image(small, PREVIEW_LIMITS).width == 480


def test_a_gates_document_photo_is_at_most_four_megapixels_a_large_jpeg_read_reduced() -> None:
    from entryexit.biometrics.decode import DOCUMENT_PHOTO_LIMITS

    assert DEFAULT_KIND_LIMITS.for_kind(ImageKind.DOCUMENT_PHOTO) == DOCUMENT_PHOTO_LIMITS
    big_png = encode(Image.new("RGB", (4000, 4000), (90, 90, 90)), "PNG")
    with pytest.raises(ImageTooLargeError):
        decode_image(big_png, DOCUMENT_PHOTO_LIMITS)
    decode_image(big_png, REFERENCE_PHOTO_LIMITS)  # as a reference photo: accepted
    scan = encode(Image.new("RGB", (1460, 1040), (90, 90, 90)), "PNG")  # an ID-3 page, 300 dpi
    assert decode_image(scan, DOCUMENT_PHOTO_LIMITS).width == 1460
    for side, reduced in ((4000, 2000), (8000, 2000)):  # 12 MP at 1/2, 48 MP at 1/4
        phone = encode(Image.new("RGB", (side, side * 3 // 4), (90, 90, 90)), "JPEG")
        assert decode_image(phone, DOCUMENT_PHOTO_LIMITS).width == reduced
