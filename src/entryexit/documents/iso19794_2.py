"""ISO/IEC 19794-2:2005 finger minutiae records (record format, as scanner SDKs send them).

Pure: bytes in, a frozen record out, or :class:`MinutiaeRecordError` (an
:class:`~entryexit.errors.InvalidInputError`, so a 422 at the API) naming the field that is
wrong. Nothing is returned half-parsed. Layout (all integers big-endian)::

    record header (24 bytes)
      format identifier   4  "FMR\\0"
      version             4  " 20\\0"
      record length       4  total bytes, header included
      equipment           2  certification (4 bits) + capture device type (12 bits)
      image width/height  2+2 pixels
      x/y resolution      2+2 pixels per centimetre
      number of views     1
      reserved            1
    per finger view
      finger position     1  0 (unknown) .. 10 (ISO/IEC 19794-2 table 2; ANSI codes agree)
      view number         4 bits, impression type 4 bits (0-3 live/non-live plain/rolled,
                                                          8 swipe, 9 contactless)
      finger quality      1  0..100
      number of minutiae  1
      minutiae            6 each: type (2 bits: 00 other, 01 ridge ending, 10 bifurcation)
                                  + x (14 bits); reserved (2 bits) + y (14 bits);
                                  angle (1 byte, 360/256 degrees, counter-clockwise from
                                  the x axis); quality (1 byte, 0..100)
      extended data       2  total length of the blocks that follow, each
                             type (2) + length (2, header included) + data
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import IntEnum

from entryexit.errors import InvalidInputError

FORMAT_IDENTIFIER = b"FMR\x00"
VERSION_2005 = b" 20\x00"
HEADER_LENGTH = 24
VIEW_HEADER_LENGTH = 4
MINUTIA_LENGTH = 6
# A record of 10 fingers x 255 minutiae is under 16 KiB; refuse anything far larger before
# looking at it.
MAX_RECORD_BYTES = 64 * 1024
# Stated resolutions a fingerprint scanner can have, in pixels per centimetre: the image path's
# 300 to 2000 ppi. A lie outside them (1 px/cm makes a 400-pixel frame 78,740 pixels wide at
# 500 ppi) is refused here, not carried into the engine.
MIN_RESOLUTION = 118
MAX_RESOLUTION = 788
# The frame at 500 ppi is held to the image path's pixel limit.
MAX_FRAME_PIXELS_AT_500_PPI = 4_000_000
IMPRESSION_TYPES = frozenset({0, 1, 2, 3, 8, 9})
ANGLE_UNIT_DEGREES = 360.0 / 256.0


class MinutiaeRecordError(InvalidInputError):
    """The record is truncated or inconsistent; ``field`` names the part that is wrong."""

    code = "invalid-minutiae-record"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"ISO/IEC 19794-2 record: {field}: {problem}")
        self.field = field


class MinutiaType(IntEnum):
    OTHER = 0
    RIDGE_ENDING = 1
    BIFURCATION = 2


@dataclass(frozen=True, slots=True)
class Minutia:
    kind: MinutiaType
    x: int
    y: int
    angle: int  # 0..255, units of 360/256 degrees, counter-clockwise from the x axis
    quality: int  # 0..100 (0: not reported)

    @property
    def angle_radians(self) -> float:
        """The direction counter-clockwise from the x axis (image y pointing down)."""
        return self.angle * 2.0 * math.pi / 256.0


@dataclass(frozen=True, slots=True)
class ExtendedDataBlock:
    type_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class FingerView:
    finger_position: int  # 0 unknown, 1..10
    view_number: int
    impression_type: int
    quality: int
    minutiae: tuple[Minutia, ...]
    extended_data: tuple[ExtendedDataBlock, ...]


@dataclass(frozen=True, slots=True)
class FingerMinutiaeRecord:
    version: str  # "20"
    certification: int
    capture_device_type: int
    width: int
    height: int
    x_resolution: int  # pixels per centimetre
    y_resolution: int
    views: tuple[FingerView, ...]

    @property
    def x_ppi(self) -> float:
        return self.x_resolution * 2.54

    @property
    def y_ppi(self) -> float:
        return self.y_resolution * 2.54


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.offset = 0

    def take(self, size: int, field: str) -> bytes:
        end = self.offset + size
        if end > len(self._data):
            raise MinutiaeRecordError(
                field,
                f"truncated: needs {size} bytes at offset {self.offset}, "
                f"{max(len(self._data) - self.offset, 0)} left",
            )
        chunk = self._data[self.offset : end]
        self.offset = end
        return chunk

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u16(self, field: str) -> int:
        value: int = struct.unpack(">H", self.take(2, field))[0]
        return value

    def u32(self, field: str) -> int:
        value: int = struct.unpack(">I", self.take(4, field))[0]
        return value


def parse_finger_minutiae_record(data: bytes) -> FingerMinutiaeRecord:
    """Parse and validate one ISO/IEC 19794-2:2005 finger minutiae record."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MinutiaeRecordError("record", "expected bytes")
    data = bytes(data)
    if len(data) > MAX_RECORD_BYTES:
        raise MinutiaeRecordError("record_length", f"{len(data)} bytes is over {MAX_RECORD_BYTES}")
    reader = _Reader(data)
    if reader.take(4, "format_identifier") != FORMAT_IDENTIFIER:
        raise MinutiaeRecordError("format_identifier", "not 'FMR\\0'")
    version = reader.take(4, "version")
    if version != VERSION_2005:
        raise MinutiaeRecordError("version", f"{version!r} is not ' 20\\0' (ISO/IEC 19794-2:2005)")
    length = reader.u32("record_length")
    if length != len(data):
        state = "truncated" if length > len(data) else "followed by extra bytes"
        raise MinutiaeRecordError(
            "record_length", f"header says {length} bytes, got {len(data)} ({state})"
        )
    equipment = reader.u16("capture_equipment")
    width = reader.u16("image_width")
    height = reader.u16("image_height")
    x_resolution = reader.u16("x_resolution")
    y_resolution = reader.u16("y_resolution")
    view_count = reader.u8("number_of_views")
    reader.u8("reserved")
    if width == 0 or height == 0:
        raise MinutiaeRecordError("image_size", f"{width} x {height} pixels")
    for axis, resolution in (("x", x_resolution), ("y", y_resolution)):
        if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
            raise MinutiaeRecordError(
                "resolution",
                f"{axis} resolution {resolution} pixels/cm is outside {MIN_RESOLUTION}"
                f" to {MAX_RESOLUTION} (300 to 2000 ppi)",
            )
    frame_at_500_ppi = round(width * 500 / (x_resolution * 2.54)) * round(
        height * 500 / (y_resolution * 2.54)
    )
    if frame_at_500_ppi > MAX_FRAME_PIXELS_AT_500_PPI:
        raise MinutiaeRecordError(
            "image_size",
            f"{width} x {height} pixels at the stated resolution is {frame_at_500_ppi} pixels"
            f" at 500 ppi; at most {MAX_FRAME_PIXELS_AT_500_PPI}",
        )
    if view_count == 0:
        raise MinutiaeRecordError("number_of_views", "0 finger views")
    views: list[FingerView] = []
    seen: set[tuple[int, int]] = set()
    for index in range(view_count):
        view = _parse_view(reader, index, width, height)
        key = (view.finger_position, view.view_number)
        if view.finger_position != 0 and key in seen:
            raise MinutiaeRecordError(
                f"views[{index}].view_number",
                f"finger {view.finger_position} view {view.view_number} appears twice",
            )
        seen.add(key)
        views.append(view)
    if reader.offset != len(data):
        raise MinutiaeRecordError(
            "record_length", f"{len(data) - reader.offset} bytes left after the last view"
        )
    return FingerMinutiaeRecord(
        version="20",
        certification=equipment >> 12,
        capture_device_type=equipment & 0x0FFF,
        width=width,
        height=height,
        x_resolution=x_resolution,
        y_resolution=y_resolution,
        views=tuple(views),
    )


def _parse_view(reader: _Reader, index: int, width: int, height: int) -> FingerView:
    where = f"views[{index}]"
    position = reader.u8(f"{where}.finger_position")
    if position > 10:
        raise MinutiaeRecordError(
            f"{where}.finger_position", f"{position} is not 0 (unknown) to 10"
        )
    view_byte = reader.u8(f"{where}.view_number")
    impression = view_byte & 0x0F
    if impression not in IMPRESSION_TYPES:
        raise MinutiaeRecordError(f"{where}.impression_type", f"{impression} is not defined")
    quality = reader.u8(f"{where}.finger_quality")
    if quality > 100:
        raise MinutiaeRecordError(f"{where}.finger_quality", f"{quality} is over 100")
    count = reader.u8(f"{where}.number_of_minutiae")
    minutiae = tuple(
        _parse_minutia(reader, f"{where}.minutiae[{i}]", width, height) for i in range(count)
    )
    extended = _parse_extended(reader, f"{where}.extended_data")
    return FingerView(
        finger_position=position,
        view_number=view_byte >> 4,
        impression_type=impression,
        quality=quality,
        minutiae=minutiae,
        extended_data=extended,
    )


def _parse_minutia(reader: _Reader, where: str, width: int, height: int) -> Minutia:
    raw = reader.take(MINUTIA_LENGTH, where)
    first, second = struct.unpack(">HH", raw[:4])
    kind_bits = first >> 14
    if kind_bits == 3:
        raise MinutiaeRecordError(f"{where}.type", "type bits 11 are reserved")
    x = first & 0x3FFF
    y = second & 0x3FFF
    if x >= width:
        raise MinutiaeRecordError(f"{where}.x", f"{x} is outside the image width {width}")
    if y >= height:
        raise MinutiaeRecordError(f"{where}.y", f"{y} is outside the image height {height}")
    quality = raw[5]
    if quality > 100:
        raise MinutiaeRecordError(f"{where}.quality", f"{quality} is over 100")
    return Minutia(kind=MinutiaType(kind_bits), x=x, y=y, angle=raw[4], quality=quality)


def _parse_extended(reader: _Reader, where: str) -> tuple[ExtendedDataBlock, ...]:
    total = reader.u16(f"{where}.length")
    body = reader.take(total, f"{where}.length")
    blocks: list[ExtendedDataBlock] = []
    offset = 0
    while offset < total:
        if total - offset < 4:
            raise MinutiaeRecordError(f"{where}[{len(blocks)}]", "block header truncated")
        type_id, length = struct.unpack(">HH", body[offset : offset + 4])
        if length < 4 or offset + length > total:
            raise MinutiaeRecordError(
                f"{where}[{len(blocks)}].length",
                f"{length} does not fit the {total - offset} bytes left",
            )
        blocks.append(ExtendedDataBlock(type_id=type_id, data=body[offset + 4 : offset + length]))
        offset += length
    return tuple(blocks)
