"""ICAO Doc 9303 machine-readable zones: TD1, TD2, TD3 and machine-readable visas A and B.

Every check digit is verified (weights 7-3-1, ``<`` = 0, digits as themselves, A-Z = 10-35),
including the composite one, and an error names the field, the line and the column that
failed. Nothing is returned half-filled: a zone parses completely or raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from entryexit.documents.text import normalise_state
from entryexit.errors import InvalidInputError

_WEIGHTS = (7, 3, 1)
_ALLOWED = re.compile(r"^[A-Z0-9<]+$")
# Bounds before any per-character work: a few blank lines and surrounding spaces are tolerated.
_MAX_LINES = 8
_MAX_LINE_LENGTH = 64


class MrzError(InvalidInputError):
    code = "invalid-mrz"


class MrzFormat(StrEnum):
    TD1 = "TD1"
    TD2 = "TD2"
    TD3 = "TD3"
    MRV_A = "MRV-A"
    MRV_B = "MRV-B"


def character_value(character: str) -> int:
    if character == "<":
        return 0
    if "0" <= character <= "9":
        return ord(character) - ord("0")
    if "A" <= character <= "Z":
        return ord(character) - ord("A") + 10
    raise MrzError(f"{character!r} is not an MRZ character")


def check_digit(field: str) -> str:
    """The ICAO 9303 check digit of ``field``."""
    total = sum(character_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(field))
    return str(total % 10)


@dataclass(frozen=True, slots=True)
class Mrz:
    format: MrzFormat
    document_code: str
    issuing_state: str
    document_number: str
    primary_identifier: str
    secondary_identifier: str
    nationality: str
    date_of_birth: date | None
    date_of_birth_raw: str
    sex: str
    date_of_expiry: date
    optional_data: str
    optional_data_2: str

    def as_dict(self) -> dict[str, object]:
        return {
            "format": self.format.value,
            "document_code": self.document_code,
            "issuing_state": self.issuing_state,
            "document_number": self.document_number,
            "primary_identifier": self.primary_identifier,
            "secondary_identifier": self.secondary_identifier,
            "nationality": self.nationality,
            "date_of_birth": self.date_of_birth.isoformat() if self.date_of_birth else None,
            "date_of_birth_raw": self.date_of_birth_raw,
            "sex": self.sex,
            "date_of_expiry": self.date_of_expiry.isoformat(),
            "optional_data": self.optional_data,
            "optional_data_2": self.optional_data_2,
        }


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    number: int

    def take(self, start: int, end: int) -> str:
        """1-based inclusive positions, as ICAO 9303 numbers them."""
        return self.text[start - 1 : end]


def _verify(line: _Line, start: int, end: int, digit_position: int, field: str) -> None:
    value = line.take(start, end)
    expected = check_digit(value)
    actual = line.take(digit_position, digit_position)
    if actual != expected:
        raise MrzError(
            f"{field}: check digit at line {line.number}, position {digit_position} is"
            f" {actual!r}, expected {expected}"
        )


def _verify_composite(parts: str, line: _Line, position: int) -> None:
    expected = check_digit(parts)
    actual = line.take(position, position)
    if actual != expected:
        raise MrzError(
            f"composite check digit at line {line.number}, position {position} is {actual!r},"
            f" expected {expected}"
        )


def _text(value: str) -> str:
    return value.replace("<", " ").strip()


def _names(value: str, line: _Line, start: int) -> tuple[str, str]:
    primary, separator, secondary = value.partition("<<")
    if not primary.strip("<"):
        raise MrzError(
            f"name: the primary identifier at line {line.number}, position {start} is empty"
        )
    return _text(primary), _text(secondary) if separator else ""


def _state(value: str, field: str, line: _Line, position: int) -> str:
    """The state code as stored everywhere (:func:`~entryexit.documents.text.normalise_state`:
    Germany's ``D<<`` is ``D``)."""
    try:
        return normalise_state(value)
    except InvalidInputError:
        raise MrzError(
            f"{field} at line {line.number}, position {position} is not a state code"
        ) from None


def _date(value: str, field: str, line: _Line, position: int, today: date, *, birth: bool) -> date:
    if not re.fullmatch(r"[0-9]{6}", value):
        raise MrzError(f"{field} at line {line.number}, position {position} is not YYMMDD")
    year, month, day = int(value[:2]), int(value[2:4]), int(value[4:])
    if birth:
        # A birth date is never in the future: take the latest century that keeps it past.
        century = 2000 if 2000 + year <= today.year else 1900
    else:
        # Expiry dates lie at most about 50 years ahead of today, and may lie in the past.
        century = 2000 if year < (today.year % 100) + 50 else 1900
    try:
        result = date(century + year, month, day)
    except ValueError:
        raise MrzError(
            f"{field} at line {line.number}, position {position}: {value} is not a date"
        ) from None
    if birth and result > today:
        result = date(century - 100 + year, month, day)
    return result


def _birth(value: str, line: _Line, position: int, today: date) -> date | None:
    if "<" in value:
        # ICAO 9303 allows unknown parts of a birth date to be filled with '<'.
        if not re.fullmatch(r"[0-9<]{6}", value):
            raise MrzError(
                f"date of birth at line {line.number}, position {position} is not YYMMDD"
            )
        return None
    return _date(value, "date of birth", line, position, today, birth=True)


def _sex(value: str, line: _Line, position: int) -> str:
    if value not in ("M", "F", "<", "X"):
        raise MrzError(f"sex at line {line.number}, position {position} must be M, F or <")
    return "X" if value in ("<", "X") else value


def _document_number(
    line: _Line, start: int, digit_position: int, optional: str
) -> tuple[str, str]:
    """The document number, applying the long-number rule of TD1 and TD2: when position
    ``digit_position`` holds '<', the number continues in the optional data, ending with its
    check digit before the next filler."""
    head = line.take(start, digit_position - 1)
    if line.take(digit_position, digit_position) != "<" or head.endswith("<"):
        return head.rstrip("<"), optional
    tail, _, rest = optional.partition("<")
    if len(tail) < 2:
        raise MrzError(
            f"document number: long-number continuation at line {line.number} is missing"
        )
    number = head + tail[:-1]
    if check_digit(number) != tail[-1]:
        raise MrzError(
            f"document number: check digit of the long number (line {line.number},"
            f" optional data) is {tail[-1]!r}, expected {check_digit(number)}"
        )
    return number, rest


def parse_mrz(lines: list[str] | tuple[str, ...], today: date) -> Mrz:
    """Parse an MRZ given as its lines (surrounding spaces ignored, letters upper-cased)."""
    if len(lines) > _MAX_LINES or any(len(line) > _MAX_LINE_LENGTH for line in lines):
        raise MrzError(
            "an MRZ has 3 lines of 30 (TD1), 2 of 36 (TD2, MRV-B) or 2 of 44 (TD3, MRV-A)"
            f" characters; got {len(lines)} line(s) of up to"
            f" {max((len(line) for line in lines), default=0)} characters"
        )
    cleaned = [line.strip().upper() for line in lines if line.strip()]
    lengths = tuple(len(line) for line in cleaned)
    for number, line in enumerate(cleaned, start=1):
        if not _ALLOWED.match(line):
            bad = next(i for i, c in enumerate(line, start=1) if not _ALLOWED.match(c))
            raise MrzError(
                f"line {number}, position {bad}: {line[bad - 1]!r} is not an MRZ character"
            )
    if lengths == (30, 30, 30):
        return _parse_td1(cleaned, today)
    if lengths == (36, 36):
        return _parse_two_line(cleaned, today, visa=cleaned[0].startswith("V"), width=36)
    if lengths == (44, 44):
        return _parse_two_line(cleaned, today, visa=cleaned[0].startswith("V"), width=44)
    raise MrzError(
        "an MRZ has 3 lines of 30 (TD1), 2 of 36 (TD2, MRV-B) or 2 of 44 (TD3, MRV-A);"
        f" got {len(cleaned)} line(s) of {', '.join(map(str, lengths)) or 'no'} characters"
    )


def _parse_td1(lines: list[str], today: date) -> Mrz:
    first, second, third = (_Line(text, n) for n, text in enumerate(lines, start=1))
    issuing_state = _state(first.take(3, 5), "issuing state", first, 3)
    number, optional = _document_number(first, 6, 15, first.take(16, 30))
    if first.take(15, 15) != "<":
        _verify(first, 6, 14, 15, "document number")
    _verify(second, 1, 6, 7, "date of birth")
    _verify(second, 9, 14, 15, "date of expiry")
    composite = first.take(6, 30) + second.take(1, 7) + second.take(9, 15) + second.take(19, 29)
    _verify_composite(composite, second, 30)
    primary, secondary = _names(third.text, third, 1)
    return Mrz(
        format=MrzFormat.TD1,
        document_code=first.take(1, 2).rstrip("<"),
        issuing_state=issuing_state,
        document_number=number,
        primary_identifier=primary,
        secondary_identifier=secondary,
        nationality=_state(second.take(16, 18), "nationality", second, 16),
        date_of_birth=_birth(second.take(1, 6), second, 1, today),
        date_of_birth_raw=second.take(1, 6),
        sex=_sex(second.take(8, 8), second, 8),
        date_of_expiry=_date(second.take(9, 14), "date of expiry", second, 9, today, birth=False),
        optional_data=_text(optional),
        optional_data_2=_text(second.take(19, 29)),
    )


def _parse_two_line(lines: list[str], today: date, *, visa: bool, width: int) -> Mrz:
    first, second = _Line(lines[0], 1), _Line(lines[1], 2)
    kind = {
        (False, 36): MrzFormat.TD2,
        (False, 44): MrzFormat.TD3,
        (True, 36): MrzFormat.MRV_B,
        (True, 44): MrzFormat.MRV_A,
    }[(visa, width)]
    optional_end = width - 1 if kind in (MrzFormat.TD2, MrzFormat.TD3) else width
    optional_raw = second.take(29, optional_end)
    if kind is MrzFormat.TD2 and second.take(10, 10) == "<":
        number, optional = _document_number(second, 1, 10, optional_raw)
    else:
        _verify(second, 1, 9, 10, "document number")
        number, optional = second.take(1, 9).rstrip("<"), optional_raw
    _verify(second, 14, 19, 20, "date of birth")
    _verify(second, 22, 27, 28, "date of expiry")
    if kind is MrzFormat.TD3:
        personal = second.take(29, 42)
        digit = second.take(43, 43)
        if not (digit == "<" and personal.strip("<") == "") and digit != check_digit(personal):
            raise MrzError(
                f"personal number: check digit at line 2, position 43 is {digit!r},"
                f" expected {check_digit(personal)}"
            )
        optional = personal
    if kind in (MrzFormat.TD2, MrzFormat.TD3):
        composite = second.take(1, 10) + second.take(14, 20) + second.take(22, width - 1)
        _verify_composite(composite, second, width)
    primary, secondary = _names(first.take(6, width), first, 6)
    return Mrz(
        format=kind,
        document_code=first.take(1, 2).rstrip("<"),
        issuing_state=_state(first.take(3, 5), "issuing state", first, 3),
        document_number=number,
        primary_identifier=primary,
        secondary_identifier=secondary,
        nationality=_state(second.take(11, 13), "nationality", second, 11),
        date_of_birth=_birth(second.take(14, 19), second, 14, today),
        date_of_birth_raw=second.take(14, 19),
        sex=_sex(second.take(21, 21), second, 21),
        date_of_expiry=_date(second.take(22, 27), "date of expiry", second, 22, today, birth=False),
        optional_data=_text(optional),
        optional_data_2="",
    )
