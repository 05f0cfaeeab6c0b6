from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entryexit.documents.paxlst import PaxlstError, export_paxlst, parse_paxlst, split_segments
from entryexit.domain.model import (
    CitizenshipClass,
    DocumentKey,
    DocumentType,
    ManifestTraveler,
    Sex,
)

DATA = Path(__file__).parent / "data"
TODAY = date(2026, 11, 23)


def test_d05b_passengers_crew_and_a_traveler_without_a_document() -> None:
    message = parse_paxlst((DATA / "paxlst-d05b.edi").read_bytes(), TODAY, "UTO")
    assert (message.carrier, message.flight_number) == ("XY", "123")
    assert (message.departure_port, message.arrival_port) == ("JFK", "LHR")
    first, crew = message.travelers
    assert first.surname == "O'BRIEN"  # the release character kept the apostrophe
    assert first.given_names == "SEAN PATRICK"
    assert first.date_of_birth == date(1980, 1, 1)
    assert first.document == DocumentKey("IRL", "X1234567")
    assert first.document_expiry == date(2030, 12, 31)
    assert first.citizenship_class is CitizenshipClass.FOREIGN_NATIONAL
    assert crew.citizenship_class is CitizenshipClass.CITIZEN
    assert message.roles == ("FL", "FM")
    (flagged,) = message.flagged
    assert flagged.position == 19
    assert "no travel document" in flagged.reason


def test_d02b_in_two_parts_with_custom_separators() -> None:
    message = parse_paxlst((DATA / "paxlst-d02b-two-parts.edi").read_bytes(), TODAY, "UTO")
    assert message.messages == 2
    assert [t.surname for t in message.travelers] == ["DUPONT", "NGUYEN", "KOWALSKI"]
    dupont, nguyen, kowalski = message.travelers
    assert dupont.given_names == "JEAN LUC"  # a released space inside a component
    assert dupont.document.number == "FR|12345"
    assert nguyen.citizenship_class is CitizenshipClass.CITIZEN
    assert nguyen.date_of_birth == date(1990, 11, 5)
    assert nguyen.document_expiry == date(2033, 12, 31)
    assert kowalski.document_type is DocumentType.PERMANENT_RESIDENT_CARD
    assert kowalski.citizenship_class is CitizenshipClass.PERMANENT_RESIDENT
    assert message.roles == ("FM", "FL", "FL")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "UNH+1+PAXLST:D:05B:UN'BGM+745'UNT+4+1'",
            r"segment 3 \(UNT\): declares 4 segments, the message has 3",
        ),
        ("UNH+1+CUSCAR:D:05B:UN'UNT+2+1'", "is not PAXLST"),
        ("UNH+1+PAXLST:D:96A:UN'UNT+2+1'", "not D:02B or D:05B"),
        ("UNH+1+PAXLST:D:05B:UN'BGM+745'", "no UNT trailer"),
        ("UNH+1+PAXLST:D:05B:UN'bgm+745'UNT+3+1'", r"segment 2: 'bgm' is not a segment tag"),
        ("UNH+1+PAXLST:D:05B:UN'UNT+2+9'", "reference does not match"),
        ("BGM+745'", r"segment 1 \(BGM\): outside any message"),
        ("UNH+1+PAXLST:D:05B:UN'UNT+2+1", "no terminator"),
        ("UNA:+", "cut short"),
        ("UNH+1+PAXLST:D:05B:UN'NAD+FL+++A?", "release character"),
        ("", "empty"),
        ("UNB+UNOA:4+A+B+1:1+1'UNZ+0+1'", "no PAXLST message"),
    ],
)
def test_malformed_messages_name_the_segment(text: str, message: str) -> None:
    with pytest.raises(PaxlstError, match=message):
        parse_paxlst(text.encode(), TODAY, "UTO")


def test_a_bad_date_flags_the_traveler_rather_than_failing_the_list() -> None:
    text = (
        "UNH+1+PAXLST:D:05B:UN'NAD+FL+++DOE:JANE'DTM+329:19801340'NAT+2+UTO'"
        "DOC+P+A1'DTM+36:20300101'UNT+7+1'"
    )
    message = parse_paxlst(text.encode(), TODAY, "UTO")
    assert message.travelers == ()
    assert "not a date" in message.flagged[0].reason


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("UNHABGMDTNAD+:'?*#|0123456789 \n"), max_size=300))
def test_no_input_crashes_the_parser_with_anything_but_its_error(text: str) -> None:
    try:
        message = parse_paxlst(text.encode(), TODAY, "UTO")
    except PaxlstError:
        return
    assert message.messages >= 1


NAME = st.text(alphabet=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ'?+:-"), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    surnames=st.lists(NAME, min_size=1, max_size=6),
    given=st.lists(NAME, min_size=0, max_size=3),
    numbers=st.lists(
        st.text(alphabet="ABCDEFGH0123456789", min_size=5, max_size=9),
        min_size=6,
        max_size=6,
        unique=True,
    ),
)
def test_export_and_parse_round_trip(
    surnames: list[str], given: list[str], numbers: list[str]
) -> None:
    travelers = [
        ManifestTraveler(
            surname=surname,
            given_names=" ".join(given),
            date_of_birth=date(1960 + index, 1 + index, 10),
            sex=Sex.FEMALE if index % 2 else Sex.MALE,
            nationality="UTO" if index % 2 else "FRA",
            citizenship_class=CitizenshipClass.CITIZEN
            if index % 2
            else CitizenshipClass.FOREIGN_NATIONAL,
            document_type=DocumentType.PASSPORT,
            document=DocumentKey("UTO" if index % 2 else "FRA", numbers[index]),
            document_expiry=date(2031, 1, 1 + index),
        )
        for index, surname in enumerate(surnames)
    ]
    text = export_paxlst("XY", "42", "JFK", "UTO", date(2026, 11, 23), travelers)
    message = parse_paxlst(text.encode(), TODAY, "UTO")
    assert list(message.travelers) == travelers
    assert (message.carrier, message.flight_number) == ("XY", "42")


def test_release_characters_split_correctly() -> None:
    (segment,) = split_segments("NAD+FL+++O?'NEIL?:X:ANN?+MARIE'")
    assert segment.elements[3] == ("O'NEIL:X", "ANN+MARIE")
