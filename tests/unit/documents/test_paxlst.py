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
    assert dupont.document.number == "FR12345"
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
        (
            "UNH+1+PAXLST:D:96A:UN'UNT+2+1'",
            "D:96A. is not supported; supported: D:02B, D:03B, D:05B",
        ),
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
            booking_reference=f"BK{index // 2}" if index % 3 else None,
        )
        for index, surname in enumerate(surnames)
    ]
    text = export_paxlst("XY", "42", "JFK", "UTO", date(2026, 11, 23), travelers)
    message = parse_paxlst(text.encode(), TODAY, "UTO")
    assert list(message.travelers) == travelers
    assert (message.carrier, message.flight_number) == ("XY", "42")


@pytest.mark.parametrize(
    ("nationality", "document", "issued_by", "expected"),
    [
        # A foreign national on the home state's passport (a dual national): a citizen.
        ("XYZ", "P", "UTO", CitizenshipClass.CITIZEN),
        ("UTO", "P", "XYZ", CitizenshipClass.CITIZEN),
        ("XYZ", "P", "XYZ", CitizenshipClass.FOREIGN_NATIONAL),
        # A home-state visa makes no one a citizen.
        ("XYZ", "V", "UTO", CitizenshipClass.FOREIGN_NATIONAL),
    ],
)
def test_a_home_state_passport_holder_is_a_citizen(
    nationality: str, document: str, issued_by: str, expected: CitizenshipClass
) -> None:
    text = (
        "UNH+1+PAXLST:D:05B:UN'NAD+FL+++MUSTERMANN:ERIKA'DTM+329:640812'"
        f"NAT+2+{nationality}'DOC+{document}+C01X00T47'DTM+36:310331'LOC+91+{issued_by}'UNT+8+1'"
    )
    (traveler,) = parse_paxlst(text.encode(), TODAY, "UTO").travelers
    assert traveler.citizenship_class is expected


def test_release_characters_split_correctly() -> None:
    (segment,) = split_segments("NAD+FL+++O?'NEIL?:X:ANN?+MARIE'")
    assert segment.elements[3] == ("O'NEIL:X", "ANN+MARIE")


# --- hostile input ---------------------------------------------------------------------------


def _person(
    surname: str = "DOE",
    number: str = "A1234567",
    state: str = "FRA",
    nationality: str = "FRA",
    birth: str = "19800101",
    expiry: str = "20300101",
) -> list[str]:
    return [
        f"NAD+FL+++{surname}:JANE",
        "ATT+2++F",
        f"DTM+329:{birth}",
        f"NAT+2+{nationality}",
        f"DOC+P:110:111+{number}",
        f"DTM+36:{expiry}",
        f"LOC+91+{state}",
    ]


def _message(people: list[list[str]], directory: str = "D:05B", line_end: str = "") -> bytes:
    body = [f"UNH+1+PAXLST:{directory}:UN:IATA", "BGM+745", "TDT+20+XY123+++XY"]
    body += [segment for person in people for segment in person]
    body.append(f"UNT+{len(body) + 1}+1")
    return "".join(f"{segment}'{line_end}" for segment in body).encode()


def test_invalid_fields_flag_the_traveler_and_keep_the_others() -> None:
    people = [
        _person(number="GOOD1"),
        _person(number="A" * 51),
        _person(number="B2", state="X"),
        _person(number="B3", nationality="12345678", state=""),
        _person(surname="DO\x00E", number="B4"),
        _person(surname="DO\x1bE", number="B5"),
        _person(number="B6", birth="20990101"),
        _person(number="B7", expiry="99991231"),
        _person(number="B?'8"),
        _person(number="GOOD2", state="D<<", nationality="D"),
    ]
    message = parse_paxlst(_message(people), TODAY, "UTO")
    assert [t.document.number for t in message.travelers] == ["GOOD1", "GOOD2"]
    assert message.travelers[1].document == DocumentKey("D", "GOOD2")
    assert message.travelers[1].nationality == "D"
    reasons = [f.reason for f in message.flagged]
    assert len(reasons) == 8
    expected = [
        "letters or digits",
        "issuing_state",
        "nationality",
        "control characters",
        "control characters",
        "future",
        "50 years",
        "letters or digits",
    ]
    for reason, word in zip(reasons, expected, strict=True):
        assert word in reason


def test_a_document_twice_in_one_interchange_is_flagged_not_stored_twice() -> None:
    message = parse_paxlst(
        _message([_person(), _person(surname="ROE"), _person(number="OTHER")]), TODAY, "UTO"
    )
    assert [t.surname for t in message.travelers] == ["DOE", "DOE"]
    (flagged,) = message.flagged
    assert flagged.reason == "the same travel document as the traveler at segment 4"


def test_an_expired_passport_is_flagged() -> None:
    message = parse_paxlst(_message([_person(expiry="20251231")]), TODAY, "UTO")
    assert message.travelers == ()
    assert message.flagged[0].reason == "the travel document expired on 2025-12-31"


def test_unt_counts_of_any_length_are_our_error() -> None:
    for digits, message in ((5_000, "longer than 512"), (500, "is not a segment count")):
        text = "UNH+1+PAXLST:D:05B:UN'UNT+" + "9" * digits + "+1'"
        with pytest.raises(PaxlstError, match=message) as error:
            parse_paxlst(text.encode(), TODAY, "UTO")
        assert len(error.value.message) < 200
    with pytest.raises(PaxlstError, match="is not a segment count"):
        parse_paxlst("UNH+1+PAXLST:D:05B:UN'UNT+²+1'".encode(), TODAY, "UTO")


def test_a_one_megabyte_field_is_refused_at_once() -> None:
    text = "UNH+1+PAXLST:D:05B:UN'NAD+FL+++" + "A" * 1_000_000 + "'UNT+3+1'"
    with pytest.raises(PaxlstError, match="longer than 512") as error:
        parse_paxlst(text.encode(), TODAY, "UTO")
    assert len(error.value.message) < 100


def test_more_travelers_than_the_cap_are_refused() -> None:
    from entryexit.documents.text import MAX_TRAVELERS

    people = [_person(number=f"N{index}") for index in range(MAX_TRAVELERS + 1)]
    with pytest.raises(PaxlstError, match=f"at most {MAX_TRAVELERS} travelers"):
        parse_paxlst(_message(people), TODAY, "UTO")
    many = b"UNH+1+PAXLST:D:05B:UN'" + b"BGM+745'" * 300_000
    with pytest.raises(PaxlstError, match="more than 251000 segments"):
        parse_paxlst(many, TODAY, "UTO")


def test_segment_shape_is_bounded() -> None:
    with pytest.raises(PaxlstError, match="more than 99 elements"):
        split_segments("NAD" + "+" * 200 + "'")
    with pytest.raises(PaxlstError, match="more than 99 components"):
        split_segments("NAD+" + ":" * 200 + "'")


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r\n\r\n", "\r"])
def test_line_breaks_between_segments_as_cbp_sends_them(line_end: str) -> None:
    data = b"UNA:+.? '" + line_end.encode() + _message([_person()], line_end=line_end)
    (traveler,) = parse_paxlst(data, TODAY, "UTO").travelers
    assert traveler.document == DocumentKey("FRA", "A1234567")


def test_a_segment_wrapped_over_two_lines_reads_as_one() -> None:
    data = _message([_person()]).replace(b"NAD+FL+++DOE:JANE", b"NAD+FL+++D\r\nOE:JANE")
    (traveler,) = parse_paxlst(data, TODAY, "UTO").travelers
    assert traveler.surname == "DOE"


def test_a_line_break_can_be_the_declared_terminator() -> None:
    data = b"UNA:+.? \n" + _message([_person()]).replace(b"'", b"\n")
    (traveler,) = parse_paxlst(data, TODAY, "UTO").travelers
    assert traveler.surname == "DOE"


def test_directory_d03b_is_read_as_d02b() -> None:
    (traveler,) = parse_paxlst(_message([_person()], directory="D:03B"), TODAY, "UTO").travelers
    assert traveler.document.number == "A1234567"
    with pytest.raises(PaxlstError, match="supported: D:02B, D:03B, D:05B"):
        parse_paxlst(_message([_person()], directory="D:12A"), TODAY, "UTO")


def test_the_reservation_reference_relates_travelers_and_is_checked() -> None:
    """RFF+AVF in a traveler's group is their booking reference (normalised like any code);
    a malformed one flags that traveler only, and a message-level RFF is no one's."""
    message = parse_paxlst(
        _message(
            [
                ["RFF+TN:BATCH-7"],
                [*_person(number="ONE1"), "RFF+AVF:abc123"],
                [*_person(number="TWO2"), "RFF+AVF:ABC123"],
                [*_person(number="BAD3"), "RFF+AVF:NOT VALID!"],
                _person(number="NONE4"),
            ]
        ),
        TODAY,
        "UTO",
    )
    assert [(t.document.number, t.booking_reference) for t in message.travelers] == [
        ("ONE1", "ABC123"),
        ("TWO2", "ABC123"),
        ("NONE4", None),
    ]
    (flagged,) = message.flagged
    assert "booking_reference" in flagged.reason


# --- the character set UNB declares (review L2) ------------------------------------------------
def _interchange(syntax: str, names: list[tuple[str, str]]) -> str:
    segments = ["UNH+1+PAXLST:D:05B:UN:IATA", "BGM+745", "TDT+20+XX101+++XX"]
    for i, (surname, given_name) in enumerate(names):
        segments += [
            f"NAD+FL+++{surname}:{given_name}",
            "ATT+2++M",
            "DTM+329:19800101",
            "NAT+2+FRA",
            f"DOC+P:110:111+X{i}234567",
            "DTM+36:20300101",
            "LOC+91+FRA",
        ]
    segments.append(f"UNT+{len(segments) + 1}+1")
    envelope = [f"UNB+{syntax}:4+X+Y+261201:0000+1", *segments, "UNZ+1+1"]
    return "".join(f"{segment}'\n" for segment in envelope)


NAMES = [("RENÉ", "ZOË"), ("MÜLLER", "JÜRGEN"), ("SMITH", "X")]


@pytest.mark.parametrize(
    ("syntax", "encoding"), [("UNOW", "utf-8"), ("UNOY", "utf-8"), ("UNOC", "latin-1")]
)
def test_names_are_read_in_the_declared_character_set(syntax: str, encoding: str) -> None:
    data = _interchange(syntax, NAMES).encode(encoding)
    manifest = parse_paxlst(data, TODAY, "UTO")
    assert [(t.surname, t.given_names) for t in manifest.travelers] == NAMES
    assert manifest.flagged == ()


def test_one_invalid_byte_refuses_the_interchange_naming_its_offset() -> None:
    """The probe's paxlst-mojibake.py: an overlong '/' (C0 AF) in traveler 3's name. Before,
    everything was re-read as Latin-1 (the others' names stored as mojibake, or flagged)."""
    data = _interchange("UNOW", NAMES).encode().replace(b"SMITH", b"SMI\xc0\xafTH")
    offset = data.index(b"\xc0")
    with pytest.raises(PaxlstError, match=f"byte {offset}: 0xC0 is not valid UNOW"):
        parse_paxlst(data, TODAY, "UTO")


def test_utf8_under_a_declared_ascii_or_latin1_set_is_refused() -> None:
    utf8 = _interchange("UNOA", NAMES).encode()
    offset = utf8.index(b"\xc3")
    with pytest.raises(PaxlstError, match=f"byte {offset}: 0xC3 is not valid UNOA"):
        parse_paxlst(utf8, TODAY, "UTO")
    # UTF-8's É (C3 89) under UNOC: 0x89 is no ISO 8859-1 character.
    latin = _interchange("UNOC", NAMES).encode()
    offset = latin.index(b"\x89")
    with pytest.raises(PaxlstError, match=f"byte {offset}: 0x89 is no character"):
        parse_paxlst(latin, TODAY, "UTO")


def test_an_unknown_syntax_identifier_is_refused() -> None:
    with pytest.raises(PaxlstError, match="syntax identifier 'UNOX' is not supported"):
        parse_paxlst(_interchange("UNOX", NAMES).encode(), TODAY, "UTO")


def test_the_declared_set_is_found_after_custom_separators_and_a_bom() -> None:
    text = _interchange("UNOC", NAMES)
    custom = "UNA*#.? |" + text.replace("'", "|").replace(":", "*").replace("+", "#")
    manifest = parse_paxlst(custom.encode("latin-1"), TODAY, "UTO")
    assert [t.surname for t in manifest.travelers] == [s for s, _ in NAMES]
    bom = b"\xef\xbb\xbf" + _interchange("UNOW", NAMES).encode()
    assert parse_paxlst(bom, TODAY, "UTO").travelers[0].surname == "RENÉ"


def test_an_export_with_accented_names_declares_utf8_and_reads_back() -> None:
    data = _interchange("UNOW", NAMES).encode()
    travelers = list(parse_paxlst(data, TODAY, "UTO").travelers)
    exported = export_paxlst("XX", "101", "UTO", "LHR", TODAY, travelers)
    assert "UNB+UNOW:4" in exported
    again = parse_paxlst(exported.encode(), TODAY, "UTO").travelers
    assert [(t.surname, t.given_names) for t in again] == NAMES


# --- the first travel document stays the traveler's (review L3) ------------------------------
def _two_docs(first: list[str], second: list[str]) -> bytes:
    person = ["NAD+FL+++DOE:JOHN", "ATT+2++M", "DTM+329:19800101", "NAT+2+FRA"]
    return _message([person + first + second])


PASSPORT = ["DOC+P:110:111+X1234567", "DTM+36:20300101", "LOC+91+FRA"]
VISA = ["DOC+V:110:111+V998877", "DTM+36:20270101", "LOC+91+UTO"]
ID_CARD = ["DOC+I:110:111+I555555", "DTM+36:20290101", "LOC+91+DEU"]


@pytest.mark.parametrize(
    ("first", "second"), [(PASSPORT, VISA), (VISA, PASSPORT), (PASSPORT, ID_CARD)]
)
def test_a_visa_or_second_document_does_not_replace_the_travel_document(
    first: list[str], second: list[str]
) -> None:
    """The probe's paxlst-visa-doc.py (a passport DOC, then a UTO visa DOC), both orders, and
    a second travel document: the traveler is keyed on the (first) passport, its expiry and
    issuer."""
    (traveler,) = parse_paxlst(_two_docs(first, second), TODAY, "UTO").travelers
    assert traveler.document == DocumentKey("FRA", "X1234567")
    assert traveler.document_type is DocumentType.PASSPORT
    assert traveler.document_expiry == date(2030, 1, 1)


def test_a_visa_alone_is_still_the_document_read() -> None:
    (traveler,) = parse_paxlst(_two_docs(VISA, []), TODAY, "UTO").travelers
    assert traveler.document == DocumentKey("UTO", "V998877")
    assert traveler.document_type is DocumentType.VISA


def test_a_home_state_identity_card_of_a_foreign_national_is_flagged() -> None:
    """Review L1 in PAXLST (which flags a contradictory traveler and keeps the others): a
    home-state identity card (DOC+I) with a foreign nationality is flagged; the same card of
    a home-state national is a citizen's."""
    card = _person(number="C1111111", state="UTO", nationality="FRA")
    card[4] = "DOC+I+C1111111"
    national = _person(number="C2222222", state="UTO", nationality="UTO")
    national[4] = "DOC+I+C2222222"
    message = parse_paxlst(_message([_person(number="GOOD1"), card, national]), TODAY, "UTO")
    assert [t.document.number for t in message.travelers] == ["GOOD1", "C2222222"]
    assert message.travelers[1].citizenship_class is CitizenshipClass.CITIZEN
    (flag,) = message.flagged
    assert "'nationality' must be UTO" in flag.reason
