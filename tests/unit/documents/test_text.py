from __future__ import annotations

import json

import pytest

from entryexit.documents.text import (
    MAX_JSON_DEPTH,
    check_json_depth,
    check_machine_label,
    check_name,
    excerpt,
    normalise_document_number,
    normalise_state,
)
from entryexit.errors import InvalidInputError


@pytest.mark.parametrize(
    ("raw", "code"),
    [("UTO", "UTO"), (" uto ", "UTO"), ("D", "D"), ("D<<", "D"), ("d<", "D"), ("XXA", "XXA")],
)
def test_state_codes_have_one_form(raw: str, code: str) -> None:
    assert normalise_state(raw) == code


@pytest.mark.parametrize("raw", ["X", "12345678", "UTOPIA", "A<<", "<<<", "U1O", "", "ÜTO"])
def test_other_state_codes_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInputError, match="ICAO 9303"):
        normalise_state(raw)


def test_document_numbers() -> None:
    assert normalise_document_number(" l898 902c3 ") == "L898902C3"
    for bad in ("A" * 21, "L89-89", "", "A\x00", "١٢٣"):
        with pytest.raises(InvalidInputError, match="letters or digits"):
            normalise_document_number(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "A\x00B",  # NUL
        "A\x1bB",  # ESC
        "A\x85B",  # C1 control
        "\ud800",  # lone surrogate
        "A\u202eB",  # right-to-left override
        "A\u2066B",  # left-to-right isolate
        "A\u200bB",  # zero-width space
        "A\u200dB",  # zero-width joiner
        "\ufeffA",  # byte order mark
        "A\u2028B",  # line separator
        "A\ue000B",  # private use
        "A\U000e0001B",  # language tag
    ],
)
def test_invisible_or_invalid_characters_are_refused_in_names(bad: str) -> None:
    with pytest.raises(InvalidInputError, match=r"U\+[0-9A-F]{4}"):
        check_name(bad, "surname", required=True)


def test_names_keep_letters_of_every_script_and_refuse_non_text() -> None:
    for name in ("O'BRIEN", "MÜLLER-LÜDENSCHEIDT", "Ångström", "张伟", "Ολγα", "Nguyễn"):
        assert check_name(f" {name} ", "surname", required=True) == name
    with pytest.raises(InvalidInputError, match="must be text, not dict"):
        check_name({"a": 1}, "surname", required=True)
    with pytest.raises(InvalidInputError, match="missing"):
        check_name("   ", "surname", required=True)
    assert check_name(None, "given_names", required=False) == ""
    with pytest.raises(InvalidInputError, match="at most 100"):
        check_name("A" * 101, "surname", required=True)


def test_excerpt_never_echoes_a_huge_value() -> None:
    huge = "P<" * 500_000
    text = excerpt(huge)
    assert len(text) < 80
    assert "1000000 characters" in text
    assert excerpt("short") == "'short'"
    assert "bytes" in excerpt(b"\x00" * 1000)
    assert excerpt({"k": "v" * 10_000}) == "dict"
    assert excerpt("\ud800") == "'\\ud800'"


def test_json_depth_is_bounded_before_parsing() -> None:
    check_json_depth(json.dumps({"travelers": [{"surname": "[[[{{{"}]}).encode())
    check_json_depth(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    with pytest.raises(InvalidInputError, match="nested more than"):
        check_json_depth(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(InvalidInputError, match="nested more than"):
        check_json_depth(b'{"a": "\\"[", "b":' + b"[" * (MAX_JSON_DEPTH + 1))
    check_json_depth(b'"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[')  # unterminated


# --- stacked combining marks and machine labels (review L4) ----------------------------------
@pytest.mark.parametrize(
    "name",
    ["RENÉ", "Nguyê\u0303n", "NGUYE\u0302\u0303N", "Zoe\u0308", "A\u0301\u0302", "Æsa"],
)
def test_names_with_up_to_two_marks_on_a_letter_are_accepted(name: str) -> None:
    assert check_name(name, "surname", required=True) == name


@pytest.mark.parametrize(
    ("name", "position"),
    [("G" + "\u0301" * 20, 4), ("AB\u0300\u0301\u0302\u0303", 5), ("E\u0301\u0301\u0301\u0301", 4)],
)
def test_a_letter_stacking_more_than_two_marks_is_refused(name: str, position: int) -> None:
    """The probe's 20 x U+0301 (drawn over the rows above and below on the officer's pages).
    NFC composes first (E + U+0301 is É), so a composed letter with two marks is still read."""
    with pytest.raises(InvalidInputError, match=f"position {position} after NFC"):
        check_name(name, "surname", required=True)


def test_machine_labels_are_printable_ascii_only() -> None:
    assert check_machine_label("  Gate 12-B ", "gate", 40) == "Gate 12-B"
    for hostile in ("G1" + "\u0301" * 20, "G\u202e1", "Gаte", "", " ", "x" * 41):
        with pytest.raises(InvalidInputError, match="printable ASCII"):
            check_machine_label(hostile, "gate", 40)
