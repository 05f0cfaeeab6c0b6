"""Trusted country signing CA (CSCA) certificates, from a directory of PEM or DER files."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from entryexit.errors import ConfigurationError

SUFFIXES = (".pem", ".crt", ".cer", ".der")


def load_trusted_cscas(directory: Path | None) -> list[x509.Certificate]:
    if directory is None:
        return []
    if not directory.is_dir():
        raise ConfigurationError(f"the CSCA directory {directory} does not exist")
    certificates = []
    for path in sorted(p for p in directory.iterdir() if p.suffix.lower() in SUFFIXES):
        data = path.read_bytes()
        try:
            if b"-----BEGIN CERTIFICATE-----" in data:
                certificates.extend(x509.load_pem_x509_certificates(data))
            else:
                certificates.append(x509.load_der_x509_certificate(data))
        except ValueError:
            raise ConfigurationError(f"{path} is not a PEM or DER certificate") from None
    return certificates
