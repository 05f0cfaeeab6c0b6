"""The e-passport chip (ICAO Doc 9303 part 10 and 11): EF.COM, DG1, DG2 and EF.SOD.

Data groups arrive as the bytes a reader delivers. DG1 holds the MRZ, DG2 the face image
inside an ISO/IEC 19794-5 record, EF.SOD a CMS SignedData over the hashes of the data groups.
:func:`verify_security_object` says exactly which check passed and which failed.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import ClassVar

from asn1crypto import algos, cms, core
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning

from entryexit.documents.mrz import Mrz, parse_mrz
from entryexit.errors import InvalidInputError

LDS_SECURITY_OBJECT_OID = "2.23.136.1.1.1"
_MAX_DEPTH = 8


class ChipDataError(InvalidInputError):
    code = "invalid-chip-data"


# --- BER-TLV ------------------------------------------------------------------------------


def read_tlv(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """One BER-TLV element at ``offset``: (tag, value, offset after it)."""
    try:
        first = data[offset]
        tag, index = first, offset + 1
        if first & 0x1F == 0x1F:  # multi-byte tag
            while True:
                byte = data[index]
                tag = (tag << 8) | byte
                index += 1
                if not byte & 0x80:
                    break
                if index - offset > 4:
                    raise ChipDataError(f"tag at offset {offset} is too long")
        length_byte = data[index]
        index += 1
        if length_byte < 0x80:
            length = length_byte
        elif 0x81 <= length_byte <= 0x84:
            count = length_byte - 0x80
            length = int.from_bytes(data[index : index + count], "big")
            if len(data[index : index + count]) != count:
                raise ChipDataError(f"length at offset {offset} is cut short")
            index += count
        else:
            raise ChipDataError(
                f"length form 0x{length_byte:02x} at offset {offset} is not allowed"
            )
    except IndexError:
        raise ChipDataError(f"element at offset {offset} is cut short") from None
    end = index + length
    if end > len(data):
        raise ChipDataError(
            f"element 0x{tag:X} at offset {offset} declares {length} bytes;"
            f" {len(data) - index} remain"
        )
    return tag, data[index:end], end


def children(value: bytes) -> list[tuple[int, bytes]]:
    items, offset = [], 0
    while offset < len(value):
        tag, inner, offset = read_tlv(value, offset)
        items.append((tag, inner))
    return items


def _only(data: bytes, tag: int, what: str) -> bytes:
    found, value, end = read_tlv(data)
    if found != tag:
        raise ChipDataError(f"{what}: expected tag 0x{tag:X}, found 0x{found:X}")
    if end != len(data):
        raise ChipDataError(f"{what}: {len(data) - end} stray bytes after the data group")
    return value


def _child(value: bytes, tag: int, what: str) -> bytes:
    for found, inner in children(value):
        if found == tag:
            return inner
    raise ChipDataError(f"{what}: element 0x{tag:X} is missing")


# --- EF.COM, DG1, DG2 ----------------------------------------------------------------------

_DATA_GROUP_TAGS = {
    0x61: 1,
    0x75: 2,
    0x63: 3,
    0x76: 4,
    0x65: 5,
    0x66: 6,
    0x67: 7,
    0x68: 8,
    0x69: 9,
    0x6A: 10,
    0x6B: 11,
    0x6C: 12,
    0x6D: 13,
    0x6E: 14,
    0x6F: 15,
    0x70: 16,
}


@dataclass(frozen=True, slots=True)
class EfCom:
    lds_version: str
    unicode_version: str
    data_groups: tuple[int, ...]


def parse_ef_com(data: bytes) -> EfCom:
    value = _only(data, 0x60, "EF.COM")
    tag_list = _child(value, 0x5C, "EF.COM")
    unknown = [t for t in tag_list if t not in _DATA_GROUP_TAGS]
    if unknown:
        raise ChipDataError(f"EF.COM: unknown data group tag 0x{unknown[0]:02X}")
    return EfCom(
        lds_version=_child(value, 0x5F01, "EF.COM").decode("ascii", "replace"),
        unicode_version=_child(value, 0x5F36, "EF.COM").decode("ascii", "replace"),
        data_groups=tuple(_DATA_GROUP_TAGS[t] for t in tag_list),
    )


_MRZ_SHAPES = {90: (30, 3), 72: (36, 2), 88: (44, 2)}


def parse_dg1(data: bytes, today: date) -> Mrz:
    mrz = _child(_only(data, 0x61, "DG1"), 0x5F1F, "DG1")
    try:
        text = mrz.decode("ascii")
    except UnicodeDecodeError:
        raise ChipDataError("DG1: the MRZ is not ASCII") from None
    if len(text) not in _MRZ_SHAPES:
        raise ChipDataError(f"DG1: an MRZ of {len(text)} characters is not TD1, TD2 or TD3")
    width, count = _MRZ_SHAPES[len(text)]
    return parse_mrz([text[i * width : (i + 1) * width] for i in range(count)], today)


class ImageFormat(StrEnum):
    JPEG = "JPEG"
    JPEG2000 = "JPEG2000"


@dataclass(frozen=True, slots=True)
class FaceImage:
    format: ImageFormat
    width: int
    height: int
    data: bytes


def parse_dg2(data: bytes) -> FaceImage:
    """The first face image of DG2 (biometric information group template, ISO/IEC 19794-5)."""
    group = _child(_only(data, 0x75, "DG2"), 0x7F61, "DG2")
    template = _child(group, 0x7F60, "DG2 biometric information template")
    for tag, block in children(template):
        if tag in (0x5F2E, 0x7F2E):
            return parse_facial_record(block)
    raise ChipDataError("DG2: no biometric data block (5F2E or 7F2E)")


def parse_facial_record(record: bytes) -> FaceImage:
    """ISO/IEC 19794-5:2005 facial record: general header, then the first image."""
    if len(record) < 14 or record[:4] != b"FAC\x00":
        raise ChipDataError("DG2: the facial record does not start with 'FAC'")
    if record[4:8] != b"010\x00":
        raise ChipDataError(f"DG2: facial record version {record[4:7]!r} is not supported")
    if int.from_bytes(record[8:12], "big") != len(record):
        raise ChipDataError("DG2: the facial record's length does not match its data")
    if int.from_bytes(record[12:14], "big") < 1:
        raise ChipDataError("DG2: the facial record holds no image")
    block = 14
    if len(record) < block + 32:
        raise ChipDataError("DG2: the facial information block is cut short")
    block_length = int.from_bytes(record[block : block + 4], "big")
    feature_points = int.from_bytes(record[block + 4 : block + 6], "big")
    image_info = block + 20 + 8 * feature_points
    image_start = image_info + 12
    image_end = block + block_length
    if image_end > len(record) or image_start >= image_end:
        raise ChipDataError("DG2: the facial image block's lengths are inconsistent")
    data_type = record[image_info + 1]
    if data_type not in (0, 1):
        raise ChipDataError(
            f"DG2: image data type {data_type} is neither JPEG (0) nor JPEG 2000 (1)"
        )
    return FaceImage(
        format=ImageFormat.JPEG if data_type == 0 else ImageFormat.JPEG2000,
        width=int.from_bytes(record[image_info + 2 : image_info + 4], "big"),
        height=int.from_bytes(record[image_info + 4 : image_info + 6], "big"),
        data=record[image_start:image_end],
    )


# --- EF.SOD ----------------------------------------------------------------------------------


class DataGroupHash(core.Sequence):
    _fields: ClassVar = [
        ("data_group_number", core.Integer),
        ("data_group_hash_value", core.OctetString),
    ]


class DataGroupHashValues(core.SequenceOf):
    _child_spec = DataGroupHash


class LdsSecurityObject(core.Sequence):
    _fields: ClassVar = [
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashValues),
    ]


class CheckResult(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_CHECKED = "not_checked"


@dataclass(frozen=True, slots=True)
class SecurityObjectReport:
    """Each check by name, with why it failed where it did."""

    checks: dict[str, CheckResult] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(result is not CheckResult.FAILED for result in self.checks.values())


_HASHES = {
    "sha1": hashlib.sha1,
    "sha224": hashlib.sha224,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
_CRYPTO_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _digest(algorithm: str, data: bytes) -> bytes:
    try:
        return _HASHES[algorithm](data).digest()
    except KeyError:
        raise ChipDataError(f"EF.SOD: hash algorithm {algorithm} is not supported") from None


def verify_security_object(
    sod: bytes,
    data_groups: dict[int, bytes],
    trusted_cscas: list[x509.Certificate] | None = None,
) -> SecurityObjectReport:
    """Check the hashes of the data groups received against EF.SOD, the document signer's
    signature over them, and (with trusted CSCA certificates) the signer's certificate chain."""
    checks: dict[str, CheckResult] = {}
    reasons: dict[str, str] = {}
    try:
        content_info = cms.ContentInfo.load(_only(sod, 0x77, "EF.SOD"))
        signed = content_info["content"]
        if content_info["content_type"].native != "signed_data":
            raise ChipDataError("EF.SOD: not a CMS SignedData")
        encapsulated = signed["encap_content_info"]
        if encapsulated["content_type"].dotted != LDS_SECURITY_OBJECT_OID:
            raise ChipDataError("EF.SOD: the signed content is not an LDS security object")
        econtent = encapsulated["content"].contents
        lds = LdsSecurityObject.load(econtent)
        hash_name = lds["hash_algorithm"]["algorithm"].native
        expected = {
            int(item["data_group_number"].native): bytes(item["data_group_hash_value"].native)
            for item in lds["data_group_hash_values"]
        }
    except (ValueError, TypeError, KeyError) as exc:
        raise ChipDataError(
            f"EF.SOD: not a readable security object ({type(exc).__name__})"
        ) from None

    for number, content in sorted(data_groups.items()):
        name = f"dg{number}_hash"
        if number not in expected:
            checks[name], reasons[name] = (
                CheckResult.FAILED,
                "the security object has no hash for it",
            )
        elif _digest(hash_name, content) == expected[number]:
            checks[name] = CheckResult.PASSED
        else:
            checks[name], reasons[name] = CheckResult.FAILED, "its hash differs (altered data)"

    try:
        # asn1crypto parses lazily, and the signer's certificate is parsed here: a junk
        # certificate or signer info surfaces now, as the chip data error it is.
        signer_certificate = _signer_certificate(signed)
        _check_signature(signed, econtent, signer_certificate, checks, reasons)
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        CryptographyDeprecationWarning,
        x509.InvalidVersion,  # a certificate version byte hit by the damage: not ValueError
    ) as exc:
        raise ChipDataError(
            f"EF.SOD: the document signer's certificate or signer information is not readable"
            f" ({type(exc).__name__})"
        ) from None
    if not trusted_cscas:
        checks["csca_chain"] = CheckResult.NOT_CHECKED
    elif signer_certificate is None:
        checks["csca_chain"], reasons["csca_chain"] = CheckResult.FAILED, "no signer certificate"
    else:
        for csca in trusted_cscas:
            try:
                signer_certificate.verify_directly_issued_by(csca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            checks["csca_chain"] = CheckResult.PASSED
            break
        else:
            checks["csca_chain"] = CheckResult.FAILED
            reasons["csca_chain"] = "no trusted CSCA issued the document signer certificate"
    return SecurityObjectReport(checks, reasons)


def _signer_certificate(signed: cms.SignedData) -> x509.Certificate | None:
    certificates = signed["certificates"]
    if not certificates:
        return None
    with warnings.catch_warnings():
        # A certificate cryptography only warns about today (a serial number that is not
        # positive, which RFC 5280 forbids) will be refused by its next releases: refuse it
        # now, as the unreadable chip data it is.
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        return x509.load_der_x509_certificate(certificates[0].chosen.dump())


def _check_signature(
    signed: cms.SignedData,
    econtent: bytes,
    certificate: x509.Certificate | None,
    checks: dict[str, CheckResult],
    reasons: dict[str, str],
) -> None:
    if certificate is None or not len(signed["signer_infos"]):
        checks["signature"], reasons["signature"] = CheckResult.FAILED, "no signer certificate"
        return
    signer = signed["signer_infos"][0]
    digest_name = signer["digest_algorithm"]["algorithm"].native
    signed_attributes = signer["signed_attrs"]
    if signed_attributes.native is None:
        message = econtent
    else:
        # An attribute is a SET of values, which a hostile chip may leave empty.
        digests = [
            a["values"][0].native
            for a in signed_attributes
            if a["type"].native == "message_digest" and len(a["values"])
        ]
        if not digests or digests[0] != _digest(digest_name, econtent):
            checks["signature"] = CheckResult.FAILED
            reasons["signature"] = "the signed message digest does not match the security object"
            return
        # Signed attributes are signed as a SET, though stored with an implicit [0] tag.
        encoded = signed_attributes.dump()
        message = b"\x31" + encoded[1:]
    signature = signer["signature"].native
    algorithm = signer["signature_algorithm"]
    try:
        hash_algorithm = _CRYPTO_HASHES[digest_name]()
        key = certificate.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hash_algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            if algorithm["algorithm"].native == "rsassa_pss":
                pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=padding.PSS.AUTO)
                key.verify(signature, message, pss, hash_algorithm)
            else:
                key.verify(signature, message, padding.PKCS1v15(), hash_algorithm)
        else:
            raise InvalidSignature
    except (InvalidSignature, UnsupportedAlgorithm, KeyError, ValueError):
        # UnsupportedAlgorithm: a key of a type or curve no document signer uses.
        checks["signature"] = CheckResult.FAILED
        reasons["signature"] = "the document signer's signature does not verify"
        return
    checks["signature"] = CheckResult.PASSED


def data_group_number(data: bytes) -> int:
    """Which data group a file is, from its outer tag."""
    tag, _, _ = read_tlv(data)
    if tag not in _DATA_GROUP_TAGS:
        raise ChipDataError(f"tag 0x{tag:X} is not a data group")
    return _DATA_GROUP_TAGS[tag]
