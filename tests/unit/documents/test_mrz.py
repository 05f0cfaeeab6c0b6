from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entryexit.documents.mrz import MrzError, MrzFormat, check_digit, parse_mrz

TODAY = date(2026, 11, 23)

# The specimen documents printed in ICAO Doc 9303 (Utopia, Anna Maria Eriksson).
TD3 = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
]
TD1 = [
    "I<UTOD231458907<<<<<<<<<<<<<<<",
    "7408122F1204159UTO<<<<<<<<<<<6",
    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
]
TD2 = ["I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6"]
MRV_A = [
    "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L8988901C4XXX4009078F96121096ZE184226B<<<<<<",
]
MRV_B = ["V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "L8988901C4XXX4009078F9612109<<<<<<<<"]
TD1_LONG_NUMBER = [
    "I<UTOD23145890<7349<<<<<<<<<<<",
    "3407127M9507122UTO<<<<<<<<<<<2",
    "STEVENSON<<PETER<JOHN<<<<<<<<<",
]


def test_check_digit_weights_7_3_1() -> None:
    assert check_digit("L898902C3") == "6"
    assert check_digit("740812") == "2"
    assert check_digit("<<<<<") == "0"


def test_td3_specimen() -> None:
    mrz = parse_mrz(TD3, TODAY)
    assert mrz.format is MrzFormat.TD3
    assert (mrz.document_code, mrz.issuing_state, mrz.document_number) == ("P", "UTO", "L898902C3")
    assert (mrz.primary_identifier, mrz.secondary_identifier) == ("ERIKSSON", "ANNA MARIA")
    assert mrz.nationality == "UTO"
    assert mrz.date_of_birth == date(1974, 8, 12)
    assert mrz.sex == "F"
    assert mrz.date_of_expiry == date(2012, 4, 15)
    assert mrz.optional_data == "ZE184226B"


@pytest.mark.parametrize(("lines", "kind"), [(TD1, MrzFormat.TD1), (TD2, MrzFormat.TD2)])
def test_identity_card_specimens(lines: list[str], kind: MrzFormat) -> None:
    mrz = parse_mrz(lines, TODAY)
    assert mrz.format is kind
    assert mrz.document_number == "D23145890"
    assert mrz.date_of_birth == date(1974, 8, 12)
    assert mrz.date_of_expiry == date(2012, 4, 15)
    assert mrz.secondary_identifier == "ANNA MARIA"


@pytest.mark.parametrize(("lines", "kind"), [(MRV_A, MrzFormat.MRV_A), (MRV_B, MrzFormat.MRV_B)])
def test_visa_specimens(lines: list[str], kind: MrzFormat) -> None:
    mrz = parse_mrz(lines, TODAY)
    assert mrz.format is kind
    assert mrz.document_number == "L8988901C"
    assert mrz.nationality == "XXX"
    assert mrz.date_of_birth == date(1940, 9, 7)
    assert mrz.date_of_expiry == date(1996, 12, 10)


def test_td1_long_document_number_continues_in_the_optional_data() -> None:
    mrz = parse_mrz(TD1_LONG_NUMBER, TODAY)
    assert mrz.document_number == "D23145890734"
    assert mrz.optional_data == ""
    assert mrz.date_of_birth == date(1934, 7, 12)


def test_century_rule_birth_in_the_past_expiry_up_to_fifty_years_ahead() -> None:
    lines = [TD3[0], _td3_line2(birth="250101", expiry="351231")]
    mrz = parse_mrz(lines, TODAY)
    assert mrz.date_of_birth == date(2025, 1, 1)
    assert mrz.date_of_expiry == date(2035, 12, 31)
    mrz = parse_mrz([TD3[0], _td3_line2(birth="271231", expiry="991231")], TODAY)
    assert mrz.date_of_birth == date(1927, 12, 31)
    assert mrz.date_of_expiry == date(1999, 12, 31)


@pytest.mark.parametrize("lines", [TD3, TD1, TD2, MRV_A, MRV_B, TD1_LONG_NUMBER])
def test_every_altered_digit_under_a_check_digit_is_caught(lines: list[str]) -> None:
    visa = lines[0].startswith("V")
    altered_count = 0
    for line_index, line in enumerate(lines):
        for position, character in enumerate(line):
            # A visa's optional data (line 2 from position 29) is covered by no check digit.
            if not character.isdigit() or (visa and line_index == 1 and position >= 28):
                continue
            copy = list(lines)
            copy[line_index] = (
                line[:position] + str((int(character) + 1) % 10) + line[position + 1 :]
            )
            with pytest.raises(MrzError, match="line"):
                parse_mrz(copy, TODAY)
            altered_count += 1
    assert altered_count >= 20


def test_errors_name_the_field_and_position() -> None:
    broken = [TD3[0], TD3[1][:27] + "8" + TD3[1][28:]]
    with pytest.raises(MrzError, match=r"date of expiry: check digit at line 2, position 28"):
        parse_mrz(broken, TODAY)
    with pytest.raises(MrzError, match="composite"):
        parse_mrz([TD3[0], TD3[1][:-1] + "1"], TODAY)
    with pytest.raises(MrzError, match="line 1, position 2"):
        parse_mrz(["P-UTO" + TD3[0][5:], TD3[1]], TODAY)
    with pytest.raises(MrzError, match="2 of 44"):
        parse_mrz([TD3[0], TD3[1][:40]], TODAY)
    with pytest.raises(MrzError, match="not a date"):
        parse_mrz([TD3[0], _td3_line2(birth="741332")], TODAY)


def test_lower_case_and_surrounding_spaces_are_tolerated() -> None:
    assert parse_mrz([f"  {TD3[0].lower()} ", TD3[1]], TODAY).document_number == "L898902C3"


MRZ_CHARACTERS = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(MRZ_CHARACTERS, min_size=28, max_size=46), min_size=1, max_size=3),
)
def test_random_zones_raise_only_the_typed_error(lines: list[str]) -> None:
    try:
        mrz = parse_mrz(lines, TODAY)
    except MrzError:
        return
    # Random text that happens to pass every check digit still yields complete fields.
    assert mrz.format in MrzFormat
    assert mrz.date_of_expiry is not None


@settings(max_examples=200, deadline=None)
@given(
    number=st.text(st.sampled_from("ABCDEFGHJKLMNPRSTUVWXYZ0123456789"), min_size=9, max_size=9),
    surname=st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=1, max_size=20),
    birth=st.dates(min_value=date(1927, 1, 1), max_value=date(2026, 11, 23)),
    expiry=st.dates(min_value=date(2020, 1, 1), max_value=date(2075, 12, 31)),
)
def test_generated_td3_zones_read_back(
    number: str, surname: str, birth: date, expiry: date
) -> None:
    line1 = f"P<UTO{surname}<<JO".ljust(44, "<")
    line2 = _td3_line2(
        number=number, birth=birth.strftime("%y%m%d"), expiry=expiry.strftime("%y%m%d")
    )
    mrz = parse_mrz([line1, line2], TODAY)
    assert mrz.document_number == number
    assert mrz.primary_identifier == surname
    assert mrz.date_of_birth == birth
    assert mrz.date_of_expiry == expiry


def _td3_line2(number: str = "L898902C3", birth: str = "740812", expiry: str = "120415") -> str:
    personal = "ZE184226B<<<<<"
    body = (
        number
        + check_digit(number)
        + "UTO"
        + birth
        + check_digit(birth)
        + "F"
        + expiry
        + check_digit(expiry)
        + personal
        + check_digit(personal)
    )
    composite = body[0:10] + body[13:20] + body[21:43]
    return body + check_digit(composite)
