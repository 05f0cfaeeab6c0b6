from __future__ import annotations

import dataclasses
import json
from datetime import date

import pytest

from entryexit.documents.manifest import parse_csv_manifest, parse_json_manifest
from entryexit.domain.model import CitizenshipClass, DocumentKey, Sex
from entryexit.errors import InvalidInputError

TODAY = date(2026, 11, 23)
HOME = "UTO"  # the home state (ENTRYEXIT_HOME_STATE)
ROW = {
    "surname": "ERIKSSON",
    "given_names": "ANNA MARIA",
    "date_of_birth": "1974-08-12",
    "sex": "F",
    "nationality": "XYZ",
    "citizenship_class": "foreign_national",
    "document_type": "passport",
    "document_number": "L898902C3",
    "issuing_state": "XYZ",
    "document_expiry": "2030-04-15",
}


def test_json_manifest_with_travelers_key_or_bare_list() -> None:
    for body in ({"travelers": [ROW]}, [ROW]):
        (traveler,) = parse_json_manifest(json.dumps(body).encode(), TODAY, HOME)
        assert traveler.document == DocumentKey("XYZ", "L898902C3")
        assert traveler.sex is Sex.FEMALE
        assert traveler.citizenship_class is CitizenshipClass.FOREIGN_NATIONAL


def test_csv_manifest() -> None:
    header = ",".join(ROW)
    line = ",".join(ROW.values())
    other = line.replace("L898902C3", "X1234567")
    travelers = parse_csv_manifest(f"{header}\n{line}\n{other}\n".encode(), TODAY, HOME)
    assert [t.document.number for t in travelers] == ["L898902C3", "X1234567"]


def test_lower_case_codes_are_normalised() -> None:
    row = {**ROW, "issuing_state": "xyz", "document_number": "l898902c3", "sex": "f"}
    (traveler,) = parse_json_manifest(json.dumps([row]).encode(), TODAY, HOME)
    assert traveler.document == DocumentKey("XYZ", "L898902C3")


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
        parse_json_manifest(json.dumps([ROW, {**ROW, **change}]).encode(), TODAY, HOME)
    assert "traveler 2" in error.value.message


def test_duplicate_documents_and_bad_documents_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="twice"):
        parse_json_manifest(json.dumps([ROW, ROW]).encode(), TODAY, HOME)
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        parse_json_manifest(b"{not json", TODAY, HOME)
    with pytest.raises(InvalidInputError, match="list of travelers"):
        parse_json_manifest(b'{"people": []}', TODAY, HOME)
    with pytest.raises(InvalidInputError, match="header lacks"):
        parse_csv_manifest(b"surname,given_names\nA,B\n", TODAY, HOME)
    with pytest.raises(InvalidInputError, match="UTF-8"):
        parse_csv_manifest(b"\xff\xfe\x00", TODAY, HOME)


def test_traveler_row_is_what_the_parser_reads() -> None:
    from entryexit.documents.manifest import traveler_row

    (traveler,) = parse_json_manifest(json.dumps([ROW]).encode(), TODAY, HOME)
    assert traveler_row(traveler) == ROW


def _csv(rows: list[dict[str, str]], newline: str = "\n") -> bytes:
    lines = [",".join(ROW), *(",".join(row.values()) for row in rows)]
    return (newline.join(lines) + newline).encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"surname": "\ud800"}, r"'surname' has control characters .* U\+D800"),
        ({"given_names": "ANNA\u202eMARIA"}, r"U\+202E"),
        ({"surname": "ERIK\u200bSSON"}, r"U\+200B"),
        ({"surname": "\ufeffERIKSSON"}, r"U\+FEFF"),
        ({"given_names": {"a": 1}}, "'given_names' must be a string, not dict"),
        ({"given_names": ["A"]}, "'given_names' must be a string, not list"),
        ({"surname": 12}, "'surname' must be a string, not int"),
        ({"document_number": "A" * 51}, "letters or digits"),
        ({"issuing_state": "X"}, "issuing_state"),
        ({"nationality": "12345678"}, "nationality"),
        ({"date_of_birth": "2099-01-01"}, "future"),
        ({"date_of_birth": "1700-01-01"}, "130 years"),
        ({"date_of_birth": "20260101"}, "YYYY-MM-DD"),
        ({"document_expiry": "9999-12-31"}, "50 years"),
        ({"document_expiry": "1960-01-01"}, "before 'date_of_birth'"),
        ({"surname": "A" * 1_000_000}, "1000000 characters long"),
    ],
)
def test_hostile_fields_refuse_the_whole_manifest_naming_the_row(
    change: dict[str, object], message: str
) -> None:
    body = json.dumps([ROW, {**ROW, **change}], ensure_ascii=True).encode()
    with pytest.raises(InvalidInputError, match=message) as error:
        parse_json_manifest(body, TODAY, HOME)
    assert error.value.message.startswith("traveler 2: ")
    assert len(error.value.message) < 200


def test_german_filler_is_one_code_in_json_and_csv() -> None:
    row = {**ROW, "issuing_state": "D<<", "nationality": "d"}
    (from_json,) = parse_json_manifest(json.dumps([row]).encode(), TODAY, HOME)
    (from_csv,) = parse_csv_manifest(_csv([row]), TODAY, HOME)
    assert from_json.document == from_csv.document == DocumentKey("D", "L898902C3")
    assert from_json.nationality == from_csv.nationality == "D"


def test_json_nested_100000_deep_is_refused_clearly() -> None:
    with pytest.raises(InvalidInputError, match="nested more than"):
        parse_json_manifest(b"[" * 100_000 + b"]" * 100_000, TODAY, HOME)
    with pytest.raises(InvalidInputError, match="nested more than"):
        parse_json_manifest(b'{"travelers": ' + b"[" * 100_000, TODAY, HOME)


def test_more_travelers_than_the_cap_are_refused_before_parsing_them() -> None:
    from entryexit.documents.text import MAX_TRAVELERS

    with pytest.raises(InvalidInputError, match=f"at most {MAX_TRAVELERS}"):
        parse_json_manifest(json.dumps([{}] * (MAX_TRAVELERS + 1)).encode(), TODAY, HOME)
    rows = [{**ROW, "document_number": f"N{index}"} for index in range(MAX_TRAVELERS + 1)]
    with pytest.raises(InvalidInputError, match=f"at most {MAX_TRAVELERS}"):
        parse_csv_manifest(_csv(rows), TODAY, HOME)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_csv_line_endings_of_every_platform(newline: str) -> None:
    other = {**ROW, "document_number": "X1234567"}
    travelers = parse_csv_manifest(_csv([ROW, other], newline), TODAY, HOME)
    assert [t.document.number for t in travelers] == ["L898902C3", "X1234567"]


def test_csv_hostile_shapes_are_invalid_input() -> None:
    header = ",".join(ROW).encode()
    cases = {
        b"A" * 131_073 + b"," + header + b"\n": "malformed|field of",
        b'"' + b"A" * 200_000 + b'"\n': "malformed|field of",
        header + b"\n" + ",".join(ROW.values()).encode() + b',"unterminated\n': "malformed",
        header + b"\n" + b"x," * 100 + b"\n": "columns",
        b"": "empty",
        header + b"\n" + b'ERIKSSON,"AN"NA"\n': "malformed|row",
    }
    for data, message in cases.items():
        with pytest.raises(InvalidInputError, match=message) as error:
            parse_csv_manifest(data, TODAY, HOME)
        assert len(error.value.message) < 200


def test_csv_short_rows_and_blank_lines() -> None:
    header = ",".join(ROW)
    line = ",".join(ROW.values())
    (traveler,) = parse_csv_manifest(f"{header}\n\n{line}\n\n".encode(), TODAY, HOME)
    assert traveler.surname == "ERIKSSON"
    with pytest.raises(InvalidInputError, match="row 2: 'document_expiry' is missing"):
        parse_csv_manifest(f"{header}\n{line.rsplit(',', 1)[0]}\n".encode(), TODAY, HOME)


def test_check_traveler_is_the_one_validation_and_normalises() -> None:
    from entryexit.documents.manifest import check_traveler

    (traveler,) = parse_json_manifest(json.dumps([ROW]).encode(), TODAY, HOME)
    messy = dataclasses.replace(
        traveler, surname="  ERIKSSON ", document=DocumentKey("d<<", "l 898902c3")
    )
    clean = check_traveler(messy, TODAY)
    assert clean.surname == "ERIKSSON"
    assert clean.document == DocumentKey("D", "L898902C3")


def test_a_booking_reference_is_optional_in_json_and_csv_and_checked() -> None:
    (with_booking,) = parse_json_manifest(
        json.dumps([{**ROW, "booking_reference": " xy12ab "}]).encode(), TODAY, HOME
    )
    assert with_booking.booking_reference == "XY12AB"
    (without,) = parse_json_manifest(json.dumps([ROW]).encode(), TODAY, HOME)
    assert without.booking_reference is None
    header = ",".join([*ROW, "booking_reference"])
    line = ",".join([*ROW.values(), "PNR001"])
    (from_csv,) = parse_csv_manifest(f"{header}\n{line}\n".encode(), TODAY, HOME)
    assert from_csv.booking_reference == "PNR001"
    for bad in ("AB CD", "X" * 36, "AB\u202eCD", 12345, ["A"]):
        with pytest.raises(InvalidInputError, match="traveler 1: 'booking_reference'"):
            parse_json_manifest(
                json.dumps([{**ROW, "booking_reference": bad}]).encode(), TODAY, HOME
            )


def test_a_repeated_key_or_column_is_refused_not_read_last_wins() -> None:
    # A gateway that validated the first "travelers" (one traveler) must not have approved an
    # upload that empties the flight, nor the first surname of a traveler another surname.
    traveler = json.dumps(ROW)
    emptied = f'{{"travelers": [{traveler}], "travelers": []}}'.encode()
    with pytest.raises(InvalidInputError, match=r"travelers.* twice"):
        parse_json_manifest(emptied, TODAY, HOME)
    renamed = traveler.replace('"surname": "ERIKSSON"', '"surname": "ERIKSSON", "surname": "X"')
    with pytest.raises(InvalidInputError, match=r"surname.* twice"):
        parse_json_manifest(f"[{renamed}]".encode(), TODAY, HOME)
    header = ",".join([*ROW, "surname"])
    line = ",".join([*ROW.values(), "X"])
    with pytest.raises(InvalidInputError, match=r"column twice: .surname."):
        parse_csv_manifest(f"{header}\n{line}\n".encode(), TODAY, HOME)


@pytest.mark.parametrize(
    "change",
    [
        # The home state's national on a foreign passport.
        {"nationality": HOME},
        # A foreign national by nationality, on the home state's passport (a dual national).
        {"issuing_state": HOME},
        # Both: the probe's citizen.
        {"nationality": HOME, "issuing_state": HOME},
        # Lower case and padded codes are the same states.
        {"nationality": " uto ", "issuing_state": "uto"},
    ],
)
@pytest.mark.parametrize("declared", ["foreign_national", "permanent_resident"])
def test_a_home_state_citizen_declared_anything_else_refuses_the_manifest(
    change: dict[str, str], declared: str
) -> None:
    """A carrier's declared class cannot turn a citizen into someone whose prints are taken:
    the whole manifest is refused, naming the traveler and the field, in JSON and in CSV."""
    row = {**ROW, **change, "citizenship_class": declared, "document_number": "C12345678"}
    with pytest.raises(InvalidInputError, match="citizenship_class") as error:
        parse_json_manifest(json.dumps([ROW, row]).encode(), TODAY, HOME)
    assert error.value.message.startswith("traveler 2: ")
    assert "UTO" in error.value.message
    with pytest.raises(InvalidInputError, match="citizenship_class") as error:
        parse_csv_manifest(_csv([ROW, row]), TODAY, HOME)
    assert error.value.message.startswith("row 3: ")


def test_the_home_state_is_the_deployments_and_its_citizens_load() -> None:
    citizen = {**ROW, "nationality": HOME, "issuing_state": HOME, "citizenship_class": "citizen"}
    (traveler,) = parse_json_manifest(json.dumps([citizen]).encode(), TODAY, HOME)
    assert traveler.citizenship_class is CitizenshipClass.CITIZEN
    # Another deployment's home state: UTO is a foreign state there.
    foreign = {**citizen, "citizenship_class": "foreign_national"}
    (traveler,) = parse_json_manifest(json.dumps([foreign]).encode(), TODAY, "XYZ")
    assert traveler.citizenship_class is CitizenshipClass.FOREIGN_NATIONAL
    # A home-state visa or residence card held by a foreign national is not a passport.
    for document_type in ("visa", "permanent_resident_card"):
        holder = {**ROW, "issuing_state": HOME, "document_type": document_type}
        (traveler,) = parse_json_manifest(json.dumps([holder]).encode(), TODAY, HOME)
        assert traveler.citizenship_class is CitizenshipClass.FOREIGN_NATIONAL


def test_a_home_state_identity_card_declared_foreign_is_contradictory_and_refused() -> None:
    """Review L1: an identity card is issued by a state to its nationals (ICAO 9303), so a
    home-state ``id_card`` with a foreign nationality is contradictory data: the manifest is
    refused naming the row and the field, in JSON and in CSV, whatever class is declared."""
    for declared in ("foreign_national", "citizen", "permanent_resident"):
        row = {
            **ROW,
            "issuing_state": HOME,
            "document_type": "id_card",
            "nationality": "FRA",
            "citizenship_class": declared,
            "document_number": "C1111111",
        }
        with pytest.raises(InvalidInputError, match="'nationality' must be UTO") as error:
            parse_json_manifest(json.dumps([ROW, row]).encode(), TODAY, HOME)
        assert error.value.message.startswith("traveler 2: ")
        with pytest.raises(InvalidInputError, match="'nationality' must be UTO") as error:
            parse_csv_manifest(_csv([ROW, row]), TODAY, HOME)
        assert error.value.message.startswith("row 3: ")


def test_a_home_state_identity_card_makes_its_holder_a_citizen_as_a_passport_does() -> None:
    """The upload's citizen rule is the stored one (``CITIZENSHIP_EVIDENCE``): a home-state
    national on a home-state identity card declared anything but a citizen is refused, and
    a foreign state's identity card makes no one a home-state citizen."""
    from entryexit.adapters.storage.repositories.travelers import CITIZENSHIP_EVIDENCE
    from entryexit.documents.manifest import CITIZENSHIP_DOCUMENTS, home_state_citizen

    assert set(CITIZENSHIP_EVIDENCE) == {d.value for d in CITIZENSHIP_DOCUMENTS}
    assert home_state_citizen("FRA", "id_card", HOME, HOME)
    assert not home_state_citizen("FRA", "id_card", "FRA", HOME)
    card = {**ROW, "issuing_state": HOME, "nationality": HOME, "document_type": "id_card"}
    with pytest.raises(InvalidInputError, match="citizenship_class"):
        parse_json_manifest(json.dumps([card]).encode(), TODAY, HOME)
    (traveler,) = parse_json_manifest(
        json.dumps([{**card, "citizenship_class": "citizen"}]).encode(), TODAY, HOME
    )
    assert traveler.citizenship_class is CitizenshipClass.CITIZEN
    foreign_card = {**ROW, "document_type": "id_card"}
    (traveler,) = parse_json_manifest(json.dumps([foreign_card]).encode(), TODAY, HOME)
    assert traveler.citizenship_class is CitizenshipClass.FOREIGN_NATIONAL
