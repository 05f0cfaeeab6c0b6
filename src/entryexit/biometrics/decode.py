"""Decode untrusted image bytes into a BGR pixel array, with limits per kind of image.

Images arrive from gate cameras, kiosks, phones, document holdings and e-passport chips: any
of them may be truncated, not an image at all, or built to exhaust memory (a decompression
bomb declares a huge size in a tiny file). The byte and pixel limits are checked before any
pixel data is decoded, and they depend on what the image is (:class:`ImageKind`,
:class:`KindLimits`).

Memory. Decoding holds at most about :data:`PEAK_BYTES_PER_PIXEL` bytes per *decoded* pixel
(Pillow's 4-byte RGBX raster plus the 3-byte array taken from it; the BGR array replaces the
latter). A JPEG far larger than its kind needs is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's
reduced DCT, Pillow's ``draft``), so its cost follows the reduced size, not the declared one.
PNG cannot be decoded reduced, so its pixel limit is the memory bound. With at most ``n``
decodes at once (:class:`DecodeSlots`, which the face engine holds from decoding until the
pixels are no longer needed), decoding memory stays under
``n * PEAK_BYTES_PER_PIXEL * max_pixels`` of the largest kind: with the defaults (2 slots,
reference photos of 16 MP) about 256 MiB (:func:`decode_ceiling_bytes`).

Also accepted as real devices send them: MPO files (phones; the first frame, a plain JPEG)
and 16-bit greyscale PNG (scaled to 8 bits, not clipped).
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import TracebackType

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from entryexit.errors import ImageDecodeError, ImageTooLargeError

ALLOWED_FORMATS = frozenset({"JPEG", "PNG"})
# e-passport chips also carry JPEG 2000 (ISO/IEC 19794-5); accepted only where asked for.
CHIP_FORMATS = frozenset({"JPEG", "JPEG2000"})
# Formats read as another: a phone's multi-picture JPEG is its first frame, a JPEG.
_READ_AS = {"MPO": "JPEG"}
# Measured peak of decode_image per decoded pixel (benchmarks/bench_hostile.py), rounded up.
PEAK_BYTES_PER_PIXEL = 8
_MODES_16_BIT = frozenset({"I;16", "I;16B", "I;16L", "I"})


class ImageKind(StrEnum):
    """What an image is, which decides the limits it is decoded under."""

    GATE_FRAME = "gate_frame"
    REFERENCE_PHOTO = "reference_photo"
    CHIP_DG2 = "chip_dg2"
    FINGERPRINT = "fingerprint"
    # A kiosk's preview frame for the quality check (live guidance, several a second).
    PREVIEW = "preview"
    # The document photo a gate sends for a 1:1 verification: a scan of the data page.
    DOCUMENT_PHOTO = "document_photo"


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Upper bounds for an accepted image.

    ``max_pixels`` bounds the pixels held in memory after decoding, so a JPEG decoded at a
    reduced scale counts at that scale. ``working_side``: the long side the pipeline needs;
    a JPEG at least twice as large is decoded at the largest of 1/2, 1/4, 1/8 that keeps its
    long side at or above it (None: always full size).
    """

    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 32
    working_side: int | None = None

    def capped(self, ceiling: DecodeLimits) -> DecodeLimits:
        """These limits, none above ``ceiling``'s (an operator's overall settings)."""
        return replace(
            self,
            max_bytes=min(self.max_bytes, ceiling.max_bytes),
            max_pixels=min(self.max_pixels, ceiling.max_pixels),
            min_side=max(self.min_side, ceiling.min_side),
        )


DEFAULT_DECODE_LIMITS = DecodeLimits()

# A gate camera sends one frame per capture: e-gate and boarding-gate cameras deliver 1080p
# to 4K frames (1920x1080 to 3840x2160; 12 MP sensors 4000x3000), as JPEG of well under
# 8 MB. Accepted: up to 8 MiB and 4096 x 3072 (12.6 MP) decoded pixels; a JPEG of 5120
# pixels or more on its long side is decoded reduced.
GATE_FRAME_LIMITS = DecodeLimits(
    max_bytes=8 * 1024 * 1024, max_pixels=4096 * 3072, working_side=2560
)
# A reference photo: a passport or visa application photo, a scan, or a phone picture (12 to
# 200 MP; a 48 MP JPEG is read at 1/2, a 200 MP one at 1/4). Up to 15 MiB and 16 MP decoded.
REFERENCE_PHOTO_LIMITS = DecodeLimits(
    max_bytes=15 * 1024 * 1024, max_pixels=16_000_000, working_side=2560
)
# A chip's DG2 face (ISO/IEC 19794-5): typically 480x640, 15-20 kB of JPEG or JPEG 2000.
# Up to 1 MiB and 4 MP.
CHIP_DG2_LIMITS = DecodeLimits(max_bytes=1024 * 1024, max_pixels=4_000_000, working_side=1024)
# A fingerprint image (ISO/IEC 19794-4): a four-finger slap at 1000 ppi is 3200 x 3000.
# Up to 10 MiB and 10 MP, never reduced (ridge detail needs the full resolution).
FINGERPRINT_LIMITS = DecodeLimits(max_bytes=10 * 1024 * 1024, max_pixels=10_000_000)
# A kiosk's preview frame: the kiosk sends 480 pixels on the long side (``scale`` says how
# much smaller than its capture). Up to 256 KiB and 1 MP, never reduced: a larger one is
# refused from its header, before any pixel is decoded (a 4096x3072 JPEG of 212 KB cost the
# detector 0.16-0.19 s of CPU a preview; probe s9 D1).
PREVIEW_LIMITS = DecodeLimits(max_bytes=256 * 1024, max_pixels=1024 * 1024)
# A gate's document photo for a 1:1: the data page's portrait, scanned (an ID-3 page at 300
# dpi is ~1460 x 1040; its portrait a fraction of that) or photographed. Up to 8 MiB and 4 MP
# decoded; a JPEG of 2048 pixels or more on its long side is decoded reduced (a 12 MP phone
# picture at 1/2, a 48 MP one at 1/4). A gate key's 16 MP reference photo cost 1.15 s of CPU
# a 1:1 (probe s9 D1; benchmarks/RESULTS.md, "Session 9, H5").
DOCUMENT_PHOTO_LIMITS = DecodeLimits(
    max_bytes=8 * 1024 * 1024, max_pixels=4_000_000, working_side=1024
)


@dataclass(frozen=True, slots=True)
class KindLimits:
    """The limits of each kind of image (defaults above, each stated where it is defined)."""

    gate_frame: DecodeLimits = GATE_FRAME_LIMITS
    reference_photo: DecodeLimits = REFERENCE_PHOTO_LIMITS
    chip_dg2: DecodeLimits = CHIP_DG2_LIMITS
    fingerprint: DecodeLimits = FINGERPRINT_LIMITS
    preview: DecodeLimits = PREVIEW_LIMITS
    document_photo: DecodeLimits = DOCUMENT_PHOTO_LIMITS

    def for_kind(self, kind: ImageKind) -> DecodeLimits:
        return {
            ImageKind.GATE_FRAME: self.gate_frame,
            ImageKind.REFERENCE_PHOTO: self.reference_photo,
            ImageKind.CHIP_DG2: self.chip_dg2,
            ImageKind.FINGERPRINT: self.fingerprint,
            ImageKind.PREVIEW: self.preview,
            ImageKind.DOCUMENT_PHOTO: self.document_photo,
        }[kind]

    def largest_pixels(self) -> int:
        return max(self.for_kind(kind).max_pixels for kind in ImageKind)


DEFAULT_KIND_LIMITS = KindLimits()
DEFAULT_DECODE_SLOTS = 2


def decode_ceiling_bytes(
    slots: int = DEFAULT_DECODE_SLOTS, kinds: KindLimits = DEFAULT_KIND_LIMITS
) -> int:
    """The most memory ``slots`` concurrent decodes can hold, whatever the mix of kinds."""
    return slots * PEAK_BYTES_PER_PIXEL * kinds.largest_pixels()


# Who is asking for a decode slot (a capture's API key); see :class:`DecodeSlots`.
_SLOT_OWNER: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "decode_slot_owner", default=None
)


@contextlib.contextmanager
def slot_owner(owner: str | None) -> Iterator[None]:
    """Decode slots taken in this block are taken for ``owner`` (e.g. an API key's id)."""
    token = _SLOT_OWNER.set(owner)
    try:
        yield
    finally:
        _SLOT_OWNER.reset(token)


def current_slot_owner() -> str | None:
    """Whom decode slots taken here are taken for (:func:`slot_owner`)."""
    return _SLOT_OWNER.get()


@dataclass(slots=True)
class DecodeSlots:
    """At most ``count`` images decoded and held at once (``with slots: ...``), shared fairly
    between their owners (:func:`slot_owner`).

    The face engine takes a slot before decoding and gives it back once the pixels are no
    longer needed, so the memory all requests hold for pixels stays under
    :func:`decode_ceiling_bytes`. Other requests wait their turn, and a freed slot goes to the
    waiting owner that holds the fewest slots (first come first served between equals): one
    gate key sending the largest frames it may, many at once, cannot queue another carrier's
    gates behind all of them (session 8 probe, P5), only behind the frames it is decoding.
    Requests without an owner share one.
    """

    count: int = DEFAULT_DECODE_SLOTS
    _free: int = field(init=False, repr=False)
    _held: Counter[str | None] = field(init=False, repr=False)
    _queue: list[tuple[str | None, object]] = field(init=False, repr=False)
    _changed: threading.Condition = field(init=False, repr=False)
    _owners: threading.local = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("at least one decode slot is needed")
        self._free = self.count
        self._held = Counter()
        self._queue = []
        self._changed = threading.Condition()
        self._owners = threading.local()

    def __enter__(self) -> DecodeSlots:
        self.acquire()
        return self

    def acquire(self, timeout: float | None = None) -> bool:
        """Take a slot as ``with slots:`` does, waiting at most ``timeout`` seconds (None: as
        long as it takes); False, holding nothing, when none came in time. A slot taken here
        is given back by :meth:`release`."""
        owner = current_slot_owner()
        ticket = object()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            self._queue.append((owner, ticket))
            try:
                while not (self._free > 0 and self._next() is ticket):
                    if deadline is None:
                        self._changed.wait()
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._changed.wait(left)
            finally:
                # Served, timed out or interrupted (an exception in the wait): never left in
                # the queue, where it would be next for ever and hold every later request
                # back. Others may be next now (another slot free, or this one not waiting).
                self._queue.remove((owner, ticket))
                self._changed.notify_all()
            self._free -= 1
            self._held[owner] += 1
        stack = getattr(self._owners, "stack", None)
        if stack is None:
            stack = self._owners.stack = []
        stack.append(owner)
        return True

    def _next(self) -> object:
        """The ticket served next: the first waiter among the owners holding fewest slots."""
        fewest = min(self._held[owner] for owner, _ in self._queue)
        return next(ticket for owner, ticket in self._queue if self._held[owner] == fewest)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        """Give back the slot this thread took last."""
        owner = self._owners.stack.pop()
        with self._changed:
            self._free += 1
            self._held[owner] -= 1
            if self._held[owner] <= 0:
                del self._held[owner]
            self._changed.notify_all()


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
            # Only the parsers of the formats accepted here ever see the bytes: any other
            # plugin registered with Pillow (WSQ for fingerprints, say) stays out of the gate's
            # path, with whatever bugs it has.
            # (Pillow's JPEG reader also opens MPO, a phone's JPEG with extra frames.)
            if any(name not in Image.OPEN for name in formats):
                Image.init()  # Pillow loads its less common readers (JPEG 2000) lazily
            image = Image.open(io.BytesIO(data), formats=sorted(formats))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        accepted = " or ".join(sorted(formats))
        raise ImageDecodeError(f"the data is not a readable {accepted} image") from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError("the image declares more pixels than allowed") from exc

    with image:
        source_format = _READ_AS.get(image.format or "", image.format or "unknown")
        if source_format not in formats:
            raise ImageDecodeError(
                f"image format {image.format or 'unknown'} is not accepted here;"
                f" send {' or '.join(sorted(formats))}"
            )
        width, height = image.size
        if min(width, height) < limits.min_side:
            raise ImageDecodeError(
                f"the image is {width}x{height} pixels; each side must be at least"
                f" {limits.min_side}"
            )
        if source_format == "JPEG":
            _check_scans(data)
            _reduce(image, limits)
        decoded_width, decoded_height = image.size
        if decoded_width * decoded_height > limits.max_pixels:
            raise ImageTooLargeError(
                f"the image is {width}x{height} pixels; at most {limits.max_pixels} pixels"
                " are accepted"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image.load()
                ImageOps.exif_transpose(image, in_place=True)
                channels, code = _eight_bit(image)
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError("the image declares more pixels than allowed") from exc
        except (OSError, ValueError, SyntaxError) as exc:
            # Truncated JPEG/PNG streams raise OSError from load(); corrupt EXIF raises
            # ValueError or SyntaxError from the metadata parser.
            raise ImageDecodeError("the image data is truncated or corrupt") from exc
    # Pillow's raster is released: only the array taken from it and the BGR result coexist.
    bgr = cv2.cvtColor(channels, code)
    del channels
    return DecodedImage(
        pixels=np.ascontiguousarray(bgr, dtype=np.uint8), source_format=source_format
    )


# A progressive JPEG is decoded scan by scan, each pass over the whole image: a small file of
# thousands of scans holds a decode slot for minutes. Encoders write about ten scans a frame
# (libjpeg's progressive script), a phone's MPO a few frames, an EXIF thumbnail a few more.
MAX_JPEG_SCANS = 100
_START_OF_SCAN = b"\xff\xda"


def _check_scans(data: bytes) -> None:
    """Refuse a JPEG with more scans than any camera writes. Counting the start-of-scan
    marker over the whole file is an upper bound (entropy-coded data stuffs every 0xFF byte,
    so the marker appears there only as a marker) that costs one pass over the bytes."""
    scans = data.count(_START_OF_SCAN)
    if scans > MAX_JPEG_SCANS:
        raise ImageDecodeError(f"the JPEG has {scans} scans; at most {MAX_JPEG_SCANS} are accepted")


def _reduce(image: Image.Image, limits: DecodeLimits) -> None:
    """Ask libjpeg for a reduced-DCT decode when the image is at least twice ``working_side``
    on its long side (no pixel is decoded here)."""
    if limits.working_side is None:
        return
    width, height = image.size
    scale = max(width, height) / limits.working_side
    if scale < 2:
        return
    requested = (max(1, int(width / scale)), max(1, int(height / scale)))
    mode = "RGB" if image.mode in ("RGB", "YCbCr") else image.mode
    image.draft(mode, requested)


def _eight_bit(image: Image.Image) -> tuple[NDArray[np.uint8], int]:
    """The image's 8-bit pixels and the OpenCV conversion that makes them BGR, taking as
    few copies of the raster as the mode allows."""
    if image.mode in _MODES_16_BIT:
        # 16-bit greyscale: keep the high byte (0..65535 -> 0..255); convert("RGB") would
        # clip every value above 255 to white.
        wide = np.asarray(image)
        if image.mode == "I":
            wide = np.clip(wide, 0, 65535)
        return (wide >> 8).astype(np.uint8), cv2.COLOR_GRAY2BGR
    if image.mode == "L":
        return np.asarray(image, dtype=np.uint8), cv2.COLOR_GRAY2BGR
    if image.mode == "RGBA":
        return np.asarray(image, dtype=np.uint8), cv2.COLOR_RGBA2BGR
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.asarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR
