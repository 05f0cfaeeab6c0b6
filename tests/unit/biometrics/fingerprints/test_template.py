"""The versioned template bytes: round trip and refusal of anything else."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entryexit.biometrics.fingerprints import (
    FORMAT_VERSION,
    FingerPosition,
    FingerprintTemplate,
    TemplateFormatError,
    TemplateSource,
)


def sample(n: int = 5) -> FingerprintTemplate:
    rows = np.array(
        [
            (10 + 7 * i, 20 + 5 * i, (i * 8 % 256) * 2 * math.pi / 256, 1 + i % 2, 0.5)
            for i in range(n)
        ],
        dtype=np.float64,
    )
    return FingerprintTemplate(
        TemplateSource.MINDTCT, FingerPosition.LEFT_INDEX, 300, 400, rows, 55
    )


def test_round_trip_keeps_every_field() -> None:
    template = sample()
    blob = template.to_bytes()
    assert blob[:4] == b"EEFP"
    assert blob[4] == FORMAT_VERSION
    back = FingerprintTemplate.from_bytes(blob)
    assert (back.source, back.finger, back.width, back.height, back.quality) == (
        TemplateSource.MINDTCT,
        FingerPosition.LEFT_INDEX,
        300,
        400,
        55,
    )
    np.testing.assert_allclose(back.minutiae, template.minutiae, atol=1e-9)
    assert len(blob) == 14 + 7 * template.count


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:10], "truncated"),
        (lambda b: b"XXXX" + b[4:], "not an EntryExit"),
        (lambda b: b[:4] + bytes([9]) + b[5:], "format 9"),
        (lambda b: b[:-1], "length"),
        (lambda b: b[:6] + bytes([11]) + b[7:], "header"),
        (lambda b: b[:16] + b"\xff\xff" + b[18:], "out of range"),
    ],
)
def test_anything_else_is_refused(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TemplateFormatError, match=message):
        FingerprintTemplate.from_bytes(mutate(sample().to_bytes()))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_the_template_error(data: bytes) -> None:
    with contextlib.suppress(TemplateFormatError):
        FingerprintTemplate.from_bytes(b"EEFP\x01" + data)
