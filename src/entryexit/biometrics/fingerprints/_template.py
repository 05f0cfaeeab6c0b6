"""Fingerprint templates and their versioned byte format.

A template is the minutiae of one finger at 500 ppi. Bytes, format 1 (big-endian)::

    magic            4  b"EEFP"
    format version   1  1
    source           1  1 = mindtct on an image, 2 = ISO/IEC 19794-2 record, 3 = LEADER
    finger position  1  0 (unknown) .. 10 (ISO/IEC 19794-2 / ANSI/NIST codes)
    quality          1  NFIQ 2 score 0..100, 255 = not measured
    width, height    2+2  the 500 ppi frame the minutiae live in (pixels)
    count            2  number of minutiae (at most 255)
    minutiae         7 each: x (2), y (2), angle (1), kind (1), reliability (1)

``angle`` is in units of 360/256 degrees, measured from the image's x axis towards its y
axis (y points down), so the direction of a minutia is ``(cos a, sin a)`` in pixel
coordinates; ``kind`` is 0 other, 1 ridge ending, 2 bifurcation (as in ISO/IEC 19794-2);
``reliability`` is 0..100. Anything else in a blob (another magic, version, a count that
does not match the length, a minutia outside the frame) raises
:class:`TemplateFormatError`, never a partial template.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from entryexit.errors import BiometricError

MAGIC = b"EEFP"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">4sBBBBHHH")
_MINUTIA = struct.Struct(">HHBBB")
MAX_MINUTIAE = 255
QUALITY_UNKNOWN = 255


class TemplateFormatError(BiometricError):
    code = "fingerprint-template-invalid"


class TemplateSource(IntEnum):
    MINDTCT = 1
    ISO19794_2 = 2
    LEADER = 3


class FingerPosition(IntEnum):
    """ISO/IEC 19794-2 and ANSI/NIST-ITL finger position codes."""

    UNKNOWN = 0
    RIGHT_THUMB = 1
    RIGHT_INDEX = 2
    RIGHT_MIDDLE = 3
    RIGHT_RING = 4
    RIGHT_LITTLE = 5
    LEFT_THUMB = 6
    LEFT_INDEX = 7
    LEFT_MIDDLE = 8
    LEFT_RING = 9
    LEFT_LITTLE = 10


@dataclass(frozen=True, slots=True, eq=False)
class FingerprintTemplate:
    """Minutiae of one finger at 500 ppi: ``minutiae`` is (n, 5) float64 with columns
    x, y, angle (radians, y down), kind (0/1/2), reliability (0..1)."""

    source: TemplateSource
    finger: FingerPosition
    width: int
    height: int
    minutiae: npt.NDArray[np.float64] = field(repr=False)
    quality: int = QUALITY_UNKNOWN

    @property
    def count(self) -> int:
        return int(self.minutiae.shape[0])

    def to_bytes(self) -> bytes:
        m = self.minutiae
        if m.shape[0] > MAX_MINUTIAE:
            raise TemplateFormatError(f"{m.shape[0]} minutiae is over {MAX_MINUTIAE}")
        parts = [
            _HEADER.pack(
                MAGIC,
                FORMAT_VERSION,
                int(self.source),
                int(self.finger),
                int(self.quality),
                self.width,
                self.height,
                m.shape[0],
            )
        ]
        for x, y, angle, kind, reliability in m:
            parts.append(
                _MINUTIA.pack(
                    min(max(round(x), 0), self.width - 1),
                    min(max(round(y), 0), self.height - 1),
                    round(angle * 256.0 / (2.0 * math.pi)) % 256,
                    int(kind),
                    min(max(round(reliability * 100.0), 0), 100),
                )
            )
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, blob: bytes) -> FingerprintTemplate:
        if len(blob) < _HEADER.size:
            raise TemplateFormatError("fingerprint template truncated (header)")
        magic, version, source, finger, quality, width, height, count = _HEADER.unpack_from(blob)
        if magic != MAGIC:
            raise TemplateFormatError("not an EntryExit fingerprint template")
        if version != FORMAT_VERSION:
            raise TemplateFormatError(f"fingerprint template format {version} is not supported")
        if len(blob) != _HEADER.size + count * _MINUTIA.size:
            raise TemplateFormatError("fingerprint template length does not match its count")
        try:
            src, pos = TemplateSource(source), FingerPosition(finger)
        except ValueError as exc:
            raise TemplateFormatError("fingerprint template header is invalid") from exc
        if width == 0 or height == 0 or (quality > 100 and quality != QUALITY_UNKNOWN):
            raise TemplateFormatError("fingerprint template header is invalid")
        rows = np.array(list(_MINUTIA.iter_unpack(blob[_HEADER.size :])), dtype=np.float64).reshape(
            -1, 5
        )
        if count and (
            (rows[:, 0] >= width).any()
            or (rows[:, 1] >= height).any()
            or (rows[:, 3] > 2).any()
            or (rows[:, 4] > 100).any()
        ):
            raise TemplateFormatError("fingerprint template minutia out of range")
        rows[:, 2] *= 2.0 * math.pi / 256.0
        rows[:, 4] /= 100.0
        return cls(src, pos, width, height, rows, quality)
