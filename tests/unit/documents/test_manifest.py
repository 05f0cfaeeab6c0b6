from __future__ import annotations

import json
from datetime import date

import pytest

from entryexit.documents.manifest import parse_csv_manifest, parse_json_manifest
from entryexit.domain.model import CitizenshipClass, DocumentKey, Sex
from entryexit.errors import InvalidInputError

TODAY = date(2026, 11, 23)
ROW = {
    "surname": "ERIKSSON",
    "given_names": "ANNA MARIA",
    "date_of_birth": "1974-08-12",
    "sex": "F",
    "nationality": "UTO",
    "citizenship_class": "foreign_national",
    "document_type": "passport",
    "document_number": "L898902C3",
    "issuing_state": "UTO",
    "document_expiry": "2030-04-15",
}


def test_json_manifest_with_travelers_key_or_bare_list() -> None:
    for body in ({"travelers": [ROW]}, [ROW]):
        (traveler,) = parse_json_manifest(json.dumps(body).encode(), TODAY)
        assert traveler.document == DocumentKey("UTO", "L898902C3")
        assert traveler.sex is Sex.FEMALE
        assert traveler.citizenship_class is CitizenshipClass.FOREIGN_NATIONAL


def test_csv_manifest() -> None:
    header = ",".join(ROW)
    line = ",".join(ROW.values())
    other = line.replace("L898902C3", "X1234567")
    travelers = parse_csv_manifest(f"{header}\n{line}\n{other}\n".encode(), TODAY)
    assert [t.document.number for t in travelers] == ["L898902C3", "X1234567"]


def test_lower_case_codes_are_normalised() -> None:
    row = {**ROW, "issuing_state": "uto", "document_number": "l898902c3", "sex": "f"}
    (traveler,) = parse_json_manifest(json.dumps([row]).encode(), TODAY)
    assert traveler.document == DocumentKey("UTO", "L898902C3")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"date_of_birth": "12/08/1974"}, "date_of_birth"),
        ({"date_of_birth": "2030-01-01"}, "future"),
        ({"sex": "Q"}, "sex"),
        ({"citizenship_class": "tourist"}, "citizenship_class"),
        ({"issuing_state": "UTOPIA"}, "ICAO"),
        ({"document_number": "L89-89"}, "letters or digits"),
        ({"surname": ""}, "surname"),
        ({"surname": "A\x00B"}, "control characters"),
        ({"document_type": 7}, "document_type"),
    ],
)
def test_invalid_rows_are_named(change: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as error:
        parse_json_manifest(json.dumps([ROW, {**ROW, **change}]).encode(), TODAY)
    assert "traveler 2" in error.value.message


def test_duplicate_documents_and_bad_documents_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="twice"):
        parse_json_manifest(json.dumps([ROW, ROW]).encode(), TODAY)
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        parse_json_manifest(b"{not json", TODAY)
    with pytest.raises(InvalidInputError, match="list of travelers"):
        parse_json_manifest(b'{"people": []}', TODAY)
    with pytest.raises(InvalidInputError, match="header lacks"):
        parse_csv_manifest(b"surname,given_names\nA,B\n", TODAY)
    with pytest.raises(InvalidInputError, match="UTF-8"):
        parse_csv_manifest(b"\xff\xfe\x00", TODAY)


def test_traveler_row_is_what_the_parser_reads() -> None:
    from entryexit.documents.manifest import traveler_row

    (traveler,) = parse_json_manifest(json.dumps([ROW]).encode(), TODAY)
    assert traveler_row(traveler) == ROW
