"""Builds real e-passport chip files for tests: DG1, DG2, EF.COM and a signed EF.SOD, with a
test CSCA and document signer generated on the spot."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from entryexit.documents.emrtd import LDS_SECURITY_OBJECT_OID, LdsSecurityObject


def tlv(tag: int, value: bytes) -> bytes:
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    length = len(value)
    if length < 0x80:
        encoded = bytes([length])
    else:
        size = (length.bit_length() + 7) // 8
        encoded = bytes([0x80 | size]) + length.to_bytes(size, "big")
    return tag_bytes + encoded + value


def dg1(lines: list[str]) -> bytes:
    return tlv(0x61, tlv(0x5F1F, "".join(lines).encode("ascii")))


def dg2(image: bytes, jpeg2000: bool, width: int, height: int) -> bytes:
    information = (
        bytes([0, 0])  # no feature points
        + bytes([1, 0, 0])
        + bytes(3)
        + bytes(2)
        + bytes(3)
        + bytes(3)  # gender.. uncertainty
    )
    image_info = (
        bytes([1, 1 if jpeg2000 else 0])
        + width.to_bytes(2, "big")
        + height.to_bytes(2, "big")
        + bytes(6)
    )
    block = information + image_info + image
    block = (len(block) + 4).to_bytes(4, "big") + block
    record_body = b"010\x00"
    total = 4 + len(record_body) + 4 + 2 + len(block)
    record = b"FAC\x00" + record_body + total.to_bytes(4, "big") + (1).to_bytes(2, "big") + block
    template = tlv(0x7F60, tlv(0xA1, tlv(0x80, b"\x01\x01")) + tlv(0x5F2E, record))
    return tlv(0x75, tlv(0x7F61, tlv(0x02, b"\x01") + template))


def ef_com(groups: list[int]) -> bytes:
    tags = {1: 0x61, 2: 0x75}
    return tlv(
        0x60,
        tlv(0x5F01, b"0107") + tlv(0x5F36, b"040000") + tlv(0x5C, bytes(tags[g] for g in groups)),
    )


@dataclass
class Pki:
    csca_key: ec.EllipticCurvePrivateKey
    csca: x509.Certificate
    signer_key: ec.EllipticCurvePrivateKey
    signer: x509.Certificate


def _certificate(
    subject: str,
    issuer: str,
    key: ec.EllipticCurvePrivateKey,
    signing_key: ec.EllipticCurvePrivateKey,
    ca: bool,
) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "UT"),
                    x509.NameAttribute(NameOID.COMMON_NAME, subject),
                ]
            )
        )
        .issuer_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "UT"),
                    x509.NameAttribute(NameOID.COMMON_NAME, issuer),
                ]
            )
        )
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .sign(signing_key, hashes.SHA256())
    )


def make_pki() -> Pki:
    csca_key = ec.generate_private_key(ec.SECP256R1())
    signer_key = ec.generate_private_key(ec.SECP256R1())
    csca = _certificate("Utopia CSCA", "Utopia CSCA", csca_key, csca_key, ca=True)
    signer = _certificate("Utopia DS 1", "Utopia CSCA", signer_key, csca_key, ca=False)
    return Pki(csca_key, csca, signer_key, signer)


def sod(groups: dict[int, bytes], pki: Pki, *, empty_message_digest: bool = False) -> bytes:
    lds = LdsSecurityObject(
        {
            "version": 0,
            "hash_algorithm": {"algorithm": "sha256"},
            "data_group_hash_values": [
                {
                    "data_group_number": number,
                    "data_group_hash_value": hashlib.sha256(content).digest(),
                }
                for number, content in sorted(groups.items())
            ],
        }
    ).dump()
    attributes = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": [LDS_SECURITY_OBJECT_OID]}),
            cms.CMSAttribute(
                {
                    "type": "message_digest",
                    "values": [] if empty_message_digest else [hashlib.sha256(lds).digest()],
                }
            ),
        ]
    )
    signature = pki.signer_key.sign(attributes.dump(), ec.ECDSA(hashes.SHA256()))
    certificate = asn1_x509.Certificate.load(pki.signer.public_bytes(serialization.Encoding.DER))
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": certificate.issuer, "serial_number": certificate.serial_number}
                    )
                }
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": attributes,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": signature,
        }
    )
    signed = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {
                "content_type": LDS_SECURITY_OBJECT_OID,
                "content": core.ParsableOctetString(lds),
            },
            "certificates": [certificate],
            "signer_infos": [signer_info],
        }
    )
    return tlv(0x77, cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())
