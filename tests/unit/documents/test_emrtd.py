from __future__ import annotations

import io
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from entryexit.documents.emrtd import (
    CheckResult,
    ChipDataError,
    ImageFormat,
    data_group_number,
    parse_dg1,
    parse_dg2,
    parse_ef_com,
    read_tlv,
    verify_security_object,
)
from entryexit.documents.mrz import MrzError
from tests import chip_builder

TODAY = date(2026, 11, 23)
TD3 = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
]


def face(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 80), (120, 90, 70)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def pki() -> chip_builder.Pki:
    return chip_builder.make_pki()


def test_tlv_lengths_short_and_long_form() -> None:
    assert read_tlv(bytes([0x5F, 0x1F, 0x02, 0x41, 0x42])) == (0x5F1F, b"AB", 5)
    long = chip_builder.tlv(0x75, b"x" * 300)
    assert long[1:4] == bytes([0x82, 0x01, 0x2C])
    assert read_tlv(long)[1] == b"x" * 300
    for broken in (b"", b"\x61", b"\x61\x05AB", b"\x61\x80AB", b"\x5f"):
        with pytest.raises(ChipDataError):
            read_tlv(broken)


def test_ef_com_and_dg1() -> None:
    com = parse_ef_com(chip_builder.ef_com([1, 2]))
    assert com.data_groups == (1, 2)
    assert com.lds_version == "0107"
    mrz = parse_dg1(chip_builder.dg1(TD3), TODAY)
    assert mrz.document_number == "L898902C3"
    assert data_group_number(chip_builder.dg1(TD3)) == 1
    with pytest.raises(ChipDataError, match="not TD1, TD2 or TD3"):
        parse_dg1(chip_builder.tlv(0x61, chip_builder.tlv(0x5F1F, b"P<UTO")), TODAY)


@pytest.mark.parametrize(
    ("fmt", "expected"), [("JPEG", ImageFormat.JPEG), ("JPEG2000", ImageFormat.JPEG2000)]
)
def test_dg2_face_image_in_both_encodings(fmt: str, expected: ImageFormat) -> None:
    image = face(fmt)
    parsed = parse_dg2(chip_builder.dg2(image, fmt == "JPEG2000", 60, 80))
    assert parsed.format is expected
    assert (parsed.width, parsed.height) == (60, 80)
    assert parsed.data == image
    assert Image.open(io.BytesIO(parsed.data)).size == (60, 80)


def test_dg2_errors() -> None:
    with pytest.raises(ChipDataError, match="expected tag 0x75"):
        parse_dg2(chip_builder.dg1(TD3))
    bad_record = chip_builder.tlv(
        0x75,
        chip_builder.tlv(
            0x7F61, chip_builder.tlv(0x7F60, chip_builder.tlv(0x5F2E, b"XYZ\x00" + bytes(40)))
        ),
    )
    with pytest.raises(ChipDataError, match="FAC"):
        parse_dg2(bad_record)


def test_an_intact_chip_passes_every_check(pki: chip_builder.Pki) -> None:
    groups = {1: chip_builder.dg1(TD3), 2: chip_builder.dg2(face("JPEG"), False, 60, 80)}
    report = verify_security_object(chip_builder.sod(groups, pki), groups, [pki.csca])
    assert report.passed
    assert report.checks == {
        "dg1_hash": CheckResult.PASSED,
        "dg2_hash": CheckResult.PASSED,
        "signature": CheckResult.PASSED,
        "csca_chain": CheckResult.PASSED,
    }


def test_a_tampered_dg2_is_caught_and_named(pki: chip_builder.Pki) -> None:
    groups = {1: chip_builder.dg1(TD3), 2: chip_builder.dg2(face("JPEG"), False, 60, 80)}
    sod = chip_builder.sod(groups, pki)
    swapped = {1: groups[1], 2: chip_builder.dg2(face("JPEG2000"), True, 60, 80)}
    report = verify_security_object(sod, swapped, [pki.csca])
    assert not report.passed
    assert report.checks["dg2_hash"] is CheckResult.FAILED
    assert report.checks["dg1_hash"] is CheckResult.PASSED
    assert "altered" in report.reasons["dg2_hash"]


def test_a_forged_security_object_fails_the_signature_or_the_chain(pki: chip_builder.Pki) -> None:
    groups = {2: chip_builder.dg2(face("JPEG"), False, 60, 80)}
    forger = chip_builder.make_pki()
    forged = chip_builder.sod(groups, forger)
    report = verify_security_object(forged, groups, [pki.csca])
    assert report.checks["signature"] is CheckResult.PASSED  # self-consistent...
    assert report.checks["csca_chain"] is CheckResult.FAILED  # ...but not from our CSCA
    untrusted = verify_security_object(forged, groups)
    assert untrusted.checks["csca_chain"] is CheckResult.NOT_CHECKED
    sod = bytearray(chip_builder.sod(groups, pki))
    sod[-5] ^= 0x01  # inside the signature
    broken = verify_security_object(bytes(sod), groups, [pki.csca])
    assert broken.checks["signature"] is CheckResult.FAILED


def test_a_signed_message_digest_attribute_without_a_value_fails_the_signature(
    pki: chip_builder.Pki,
) -> None:
    # A hostile chip (or a gate's upload) whose message_digest attribute holds an empty set:
    # once an IndexError and a 500.
    groups = {1: chip_builder.dg1(TD3), 2: chip_builder.dg2(face("JPEG"), False, 60, 80)}
    sod = chip_builder.sod(groups, pki, empty_message_digest=True)
    report = verify_security_object(sod, groups, [pki.csca])
    assert report.checks["signature"] is CheckResult.FAILED
    assert not report.passed


def test_a_data_group_missing_from_the_security_object(pki: chip_builder.Pki) -> None:
    groups = {2: chip_builder.dg2(face("JPEG"), False, 60, 80)}
    sod = chip_builder.sod(groups, pki)
    report = verify_security_object(sod, {**groups, 1: chip_builder.dg1(TD3)}, [pki.csca])
    assert report.checks["dg1_hash"] is CheckResult.FAILED


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_raise_the_typed_error(data: bytes) -> None:
    for parse in (
        lambda: parse_dg2(data),
        lambda: parse_dg1(data, TODAY),
        lambda: parse_ef_com(data),
    ):
        try:
            parse()
        except (ChipDataError, MrzError):
            continue
        except Exception as exc:  # any other exception is the failure
            pytest.fail(f"{type(exc).__name__}: {exc}")
    with pytest.raises(ChipDataError):
        verify_security_object(data, {})
