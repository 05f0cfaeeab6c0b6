"""ISO/IEC 19794-2:2005 finger minutiae records: real ones, made-up ones, broken ones."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entryexit.documents.iso19794_2 import (
    MinutiaeRecordError,
    MinutiaType,
    parse_finger_minutiae_record,
)
from entryexit.errors import InvalidInputError

REPO_ROOT = Path(__file__).resolve().parents[3]
ISO_DIR = REPO_ROOT.parent / "shared" / "data" / "fvc2002-b" / "iso19794-2"


def minutia(kind: int, x: int, y: int, angle: int = 10, quality: int = 60) -> bytes:
    return struct.pack(">HHBB", (kind << 14) | x, y, angle, quality)


def view(
    minutiae: list[bytes],
    position: int = 2,
    view_byte: int = 0x00,
    quality: int = 80,
    extended: bytes = b"",
) -> bytes:
    head = bytes([position, view_byte, quality, len(minutiae)])
    return head + b"".join(minutiae) + struct.pack(">H", len(extended)) + extended


def record(
    views: list[bytes],
    width: int = 300,
    height: int = 400,
    resolution: int = 197,
    magic: bytes = b"FMR\x00",
    version: bytes = b" 20\x00",
    length_delta: int = 0,
) -> bytes:
    body = b"".join(views)
    length = 24 + len(body) + length_delta
    header = magic + version + struct.pack(">IHHHHHBB", length, 0x1005, width, height,
                                          resolution, resolution, len(views), 0)  # fmt: skip
    return header + body


GOOD_MINUTIAE = [minutia(1, 10, 20, 0), minutia(2, 299, 399, 255, 100), minutia(0, 0, 0)]
GOOD = record([view(GOOD_MINUTIAE)])


def test_a_well_formed_record_parses_completely() -> None:
    parsed = parse_finger_minutiae_record(GOOD)
    assert (parsed.width, parsed.height, parsed.x_resolution) == (300, 400, 197)
    assert parsed.certification == 1
    assert parsed.capture_device_type == 5
    assert parsed.x_ppi == pytest.approx(500.38)
    (only,) = parsed.views
    assert (only.finger_position, only.quality, only.impression_type) == (2, 80, 0)
    assert [m.kind for m in only.minutiae] == [
        MinutiaType.RIDGE_ENDING,
        MinutiaType.BIFURCATION,
        MinutiaType.OTHER,
    ]
    assert only.minutiae[1].x == 299
    assert only.minutiae[1].y == 399
    assert only.minutiae[1].angle_radians == pytest.approx(255 * 2 * 3.141592653589793 / 256)


def test_two_views_and_extended_data_blocks() -> None:
    block = struct.pack(">HH", 0x0001, 6) + b"ab"
    data = record([view(GOOD_MINUTIAE, 2, extended=block), view(GOOD_MINUTIAE, 7, 0x10)])
    parsed = parse_finger_minutiae_record(data)
    assert [v.finger_position for v in parsed.views] == [2, 7]
    assert parsed.views[0].extended_data[0].data == b"ab"
    assert parsed.views[1].view_number == 1


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "format_identifier"),
        (record([view(GOOD_MINUTIAE)], magic=b"FIR\x00"), "format_identifier"),
        (record([view(GOOD_MINUTIAE)], version=b"030\x00"), "version"),
        (record([view(GOOD_MINUTIAE)], length_delta=1), "record_length"),
        (record([view(GOOD_MINUTIAE)], length_delta=-1), "record_length"),
        (record([view(GOOD_MINUTIAE)], width=0), "image_size"),
        (record([view(GOOD_MINUTIAE)], resolution=0), "resolution"),
        # A resolution lie: 1 px/cm makes the frame 78,740 px wide at 500 ppi (once a 500).
        (record([view(GOOD_MINUTIAE)], resolution=1), "resolution"),
        (record([view(GOOD_MINUTIAE)], resolution=117), "resolution"),
        (record([view(GOOD_MINUTIAE)], resolution=789), "resolution"),
        (record([view(GOOD_MINUTIAE)], width=4000, height=4000, resolution=118), "image_size"),
        (record([]), "number_of_views"),
        (record([view(GOOD_MINUTIAE, position=11)]), "views[0].finger_position"),
        (record([view(GOOD_MINUTIAE, view_byte=0x05)]), "views[0].impression_type"),
        (record([view(GOOD_MINUTIAE, quality=101)]), "views[0].finger_quality"),
        (record([view([minutia(3, 1, 1)])]), "views[0].minutiae[0].type"),
        (record([view([minutia(1, 300, 1)])]), "views[0].minutiae[0].x"),
        (record([view([minutia(1, 1, 1), minutia(1, 1, 400)])]), "views[0].minutiae[1].y"),
        (record([view([minutia(1, 1, 1, quality=101)])]), "views[0].minutiae[0].quality"),
        (
            record([view(GOOD_MINUTIAE, extended=struct.pack(">HH", 1, 9) + b"ab")]),
            "views[0].extended_data[0].length",
        ),
        (record([view(GOOD_MINUTIAE, extended=b"ab")]), "views[0].extended_data[0]"),
        (record([view(GOOD_MINUTIAE), view(GOOD_MINUTIAE)]), "views[1].view_number"),
    ],
)
def test_an_inconsistent_record_names_the_field(data: bytes, field: str) -> None:
    with pytest.raises(MinutiaeRecordError) as caught:
        parse_finger_minutiae_record(data)
    assert caught.value.field == field
    assert field in caught.value.message
    assert isinstance(caught.value, InvalidInputError)  # a 422 at the API


def test_a_view_that_claims_more_minutiae_than_it_has_is_truncated() -> None:
    body = view(GOOD_MINUTIAE)
    lying = bytes([*body[:3], 9]) + body[4:]  # says 9 minutiae, carries 3
    with pytest.raises(MinutiaeRecordError) as caught:
        parse_finger_minutiae_record(record([lying]))
    assert caught.value.field.startswith("views[0].")
    assert "truncated" in caught.value.message


def test_every_truncation_of_a_record_is_refused() -> None:
    for end in range(len(GOOD)):
        with pytest.raises(MinutiaeRecordError):
            parse_finger_minutiae_record(GOOD[:end])


def test_an_oversized_blob_is_refused_before_parsing() -> None:
    with pytest.raises(MinutiaeRecordError) as caught:
        parse_finger_minutiae_record(GOOD + bytes(70_000))
    assert caught.value.field == "record_length"


@pytest.fixture(scope="module")
def real_records() -> list[Path]:
    paths = sorted(ISO_DIR.glob("DB*_B/*.iso"))
    if not paths:
        pytest.skip(f"fvc2002-b ISO records not found at {ISO_DIR} (they live in shared/)")
    return paths


def test_every_record_in_the_data_folder_parses(real_records: list[Path]) -> None:
    counts = []
    for path in real_records:
        parsed = parse_finger_minutiae_record(path.read_bytes())
        assert (parsed.width, parsed.height, parsed.x_resolution) == (300, 400, 197)
        assert len(parsed.views) == 1
        counts.append(len(parsed.views[0].minutiae))
    assert len(counts) == 320
    assert min(counts) >= 6
    assert max(counts) <= 81


def test_truncated_and_corrupted_real_records_are_refused(real_records: list[Path]) -> None:
    data = real_records[0].read_bytes()
    for end in (0, 3, 8, 23, 24, 27, 28, len(data) - 7, len(data) - 1):
        with pytest.raises(MinutiaeRecordError):
            parse_finger_minutiae_record(data[:end])
    corrupted = bytearray(data)
    corrupted[28] = 0xC0  # first minutia's type bits -> 11 (reserved)
    with pytest.raises(MinutiaeRecordError) as caught:
        parse_finger_minutiae_record(bytes(corrupted))
    assert caught.value.field == "views[0].minutiae[0].type"
    corrupted = bytearray(data)
    corrupted[29:30] = b"\xff"  # first minutia's x far outside the 300-pixel width
    corrupted[28] = (corrupted[28] & 0xC0) | 0x3F
    with pytest.raises(MinutiaeRecordError) as caught:
        parse_finger_minutiae_record(bytes(corrupted))
    assert caught.value.field == "views[0].minutiae[0].x"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_the_project_error(data: bytes) -> None:
    with contextlib.suppress(MinutiaeRecordError):
        parse_finger_minutiae_record(data)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), max_size=6),
    st.integers(0, len(GOOD)),
)
def test_mutated_records_raise_only_the_project_error(
    flips: list[tuple[int, int]], end: int
) -> None:
    data = bytearray(GOOD)
    for index, value in flips:
        data[index] = value
    try:
        parsed = parse_finger_minutiae_record(bytes(data[:end]))
    except MinutiaeRecordError:
        return
    for v in parsed.views:
        assert all(m.x < parsed.width and m.y < parsed.height for m in v.minutiae)
