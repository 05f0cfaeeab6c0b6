from __future__ import annotations

from datetime import date

import pytest

from entryexit.documents.identity import identify_document, mrz_lines
from entryexit.domain.model import DocumentKey
from entryexit.errors import InvalidInputError

TODAY = date(2026, 11, 23)
HOME = "UTO"  # the home state (ENTRYEXIT_HOME_STATE)
TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\r\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"


def test_by_mrz_by_state_and_number_or_not_at_all() -> None:
    key, mrz = identify_document(mrz_lines(TD3), None, None, TODAY)
    assert key == DocumentKey("UTO", "L898902C3")
    assert mrz is not None
    assert mrz.primary_identifier == "ERIKSSON"
    assert identify_document(None, "uto", "l898902c3", TODAY) == (
        DocumentKey("UTO", "L898902C3"),
        None,
    )
    assert identify_document(None, None, None, TODAY) == (None, None)


def test_half_a_name_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="both"):
        identify_document(None, "UTO", None, TODAY)


def _german_td3() -> list[str]:
    from entryexit.documents.mrz import check_digit

    number, birth, expiry, personal = "C01X00T47", "640812", "310331", "<" * 14
    line2 = (
        f"{number}{check_digit(number)}D<<{birth}{check_digit(birth)}F"
        f"{expiry}{check_digit(expiry)}{personal}<"
    )
    composite = line2[0:10] + line2[13:20] + line2[21:43]
    return ["P<D<<MUSTERMANN<<ERIKA<<<<<<<<<<<<<<<<<<<<<<", line2 + check_digit(composite)]


def test_a_german_document_has_one_key_on_every_path() -> None:
    """MRZ, chip DG1, URL/form, JSON and CSV manifests and PAXLST all say ``D``."""
    import json

    from entryexit.documents.emrtd import parse_dg1
    from entryexit.documents.manifest import parse_csv_manifest, parse_json_manifest
    from entryexit.documents.paxlst import parse_paxlst
    from tests.chip_builder import dg1

    lines = _german_td3()
    expected = DocumentKey("D", "C01X00T47")
    by_mrz, mrz = identify_document(lines, None, None, TODAY)
    assert by_mrz == expected
    assert mrz is not None
    assert mrz.nationality == "D"
    assert parse_dg1(dg1(lines), TODAY).issuing_state == "D"
    assert identify_document(None, "D<<", "c01x00t47", TODAY)[0] == expected
    assert identify_document(None, "d", "C01X00T47", TODAY)[0] == expected
    row = {
        "surname": "MUSTERMANN",
        "given_names": "ERIKA",
        "date_of_birth": "1964-08-12",
        "sex": "F",
        "nationality": "D<<",
        "citizenship_class": "foreign_national",
        "document_type": "passport",
        "document_number": "C01X00T47",
        "issuing_state": "D<<",
        "document_expiry": "2031-03-31",
    }
    assert parse_json_manifest(json.dumps([row]).encode(), TODAY, HOME)[0].document == expected
    csv = f"{','.join(row)}\n{','.join(row.values())}\n".encode()
    assert parse_csv_manifest(csv, TODAY, HOME)[0].document == expected
    paxlst = (
        "UNH+1+PAXLST:D:05B:UN'NAD+FL+++MUSTERMANN:ERIKA'DTM+329:640812'NAT+2+D<<'"
        "DOC+P+C01X00T47'DTM+36:310331'LOC+91+D<<'UNT+8+1'"
    )
    (traveler,) = parse_paxlst(paxlst.encode(), TODAY, "UTO").travelers
    assert traveler.document == expected
    assert traveler.nationality == "D"


def test_a_huge_mrz_is_refused_without_being_echoed() -> None:
    with pytest.raises(InvalidInputError) as error:
        identify_document(mrz_lines("P<" * 500_000), None, None, TODAY)
    assert len(error.value.message) < 200
    with pytest.raises(InvalidInputError) as error:
        identify_document(mrz_lines("P\n" * 500_000), None, None, TODAY)
    assert len(error.value.message) < 200
