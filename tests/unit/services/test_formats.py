"""Every CSV the product writes (the overstay report, a manifest export) makes a cell that a
spreadsheet would run as a formula plain text."""

from __future__ import annotations

import csv
import io
from dataclasses import make_dataclass
from datetime import date
from typing import Any

import pytest

from entryexit.domain.model import (
    CitizenshipClass,
    DocumentKey,
    DocumentType,
    ManifestTraveler,
    Sex,
)
from entryexit.services.formats import MANIFEST_COLUMNS, manifest_csv, overstay_csv

HOSTILE = ('=HYPERLINK("x")', "+1", "-1+2", "@SUM(A1)", "\tTAB", "\rCR")


def traveler(surname: str, given_names: str = "ANNA") -> ManifestTraveler:
    return ManifestTraveler(
        surname,
        given_names,
        date(1980, 1, 1),
        Sex.FEMALE,
        "XYZ",
        CitizenshipClass.FOREIGN_NATIONAL,
        DocumentType.PASSPORT,
        DocumentKey("XYZ", "E1234567"),
        date(2031, 1, 1),
        booking_reference="=CMD",
    )


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("name", HOSTILE)
def test_a_manifest_export_writes_formula_names_as_text(name: str) -> None:
    header, row = cells(manifest_csv([traveler(name, name)]))
    assert header == list(MANIFEST_COLUMNS)
    values = dict(zip(header, row, strict=True))
    assert values["surname"] == "'" + name
    assert values["given_names"] == "'" + name
    assert values["booking_reference"] == "'=CMD"
    assert values["document_number"] == "E1234567"


def test_an_overstay_report_writes_formula_names_as_text() -> None:
    fields: list[Any] = [
        "traveler_ref",
        "surname",
        "given_names",
        "nationality",
        "document",
        "admission_class",
        "admitted_on",
        "admitted_until",
        "exited_on",
        "days_over",
    ]
    record = make_dataclass("Record", fields)
    row = record("t1", "=1+1", "@X", "XYZ", "-D1", "visitor", None, None, None, 3)
    _, line = cells(overstay_csv({"in_country": [row], "out_of_country": []}))
    assert line[2:6] == ["'=1+1", "'@X", "XYZ", "'-D1"]
    assert line[-1] == "3"
