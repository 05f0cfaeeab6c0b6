"""Passenger manifests in JSON and CSV: parsed strictly, every problem named with its row."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import date
from typing import TypeVar

from entryexit.documents.text import (
    MAX_TRAVELERS,
    check_json_depth,
    check_name,
    excerpt,
    normalise_document_number,
    normalise_state,
)
from entryexit.domain.model import (
    CitizenshipClass,
    DocumentKey,
    DocumentType,
    ManifestTraveler,
    Sex,
)
from entryexit.errors import InvalidInputError

__all__ = [
    "CITIZENSHIP_DOCUMENTS",
    "FIELDS",
    "MAX_TRAVELERS",
    "OPTIONAL_FIELDS",
    "check_booking_reference",
    "check_citizenship",
    "check_document_nationality",
    "check_traveler",
    "document_expired",
    "home_state_citizen",
    "normalise_document_number",
    "normalise_state",
    "parse_csv_manifest",
    "parse_json_manifest",
    "parse_traveler",
    "traveler_row",
]

FIELDS = (
    "surname",
    "given_names",
    "date_of_birth",
    "sex",
    "nationality",
    "citizenship_class",
    "document_type",
    "document_number",
    "issuing_state",
    "document_expiry",
)
# Optional fields: a CSV header may name them, a JSON object may carry them.
OPTIONAL_FIELDS = ("booking_reference",)
# A reservation reference (a PNR record locator is 6 characters; EDIFACT allows up to 35).
_BOOKING_REFERENCE = re.compile(r"[A-Z0-9]{1,35}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A birth date further back than this is a typing error, not a traveler.
MAX_AGE_YEARS = 130
# No travel document is valid for longer than this from today.
MAX_VALIDITY_YEARS = 50


def _years_from(day: date, years: int) -> date:
    year = min(max(day.year + years, date.min.year), date.max.year)
    return day.replace(year=year, day=28 if (day.month, day.day) == (2, 29) else day.day)


def check_traveler(traveler: ManifestTraveler, today: date) -> ManifestTraveler:
    """The one validation of a manifest traveler, whatever the format it came in.

    Returns the traveler with its codes normalised (states, document number, names
    stripped); raises :class:`InvalidInputError` naming the field. JSON and CSV refuse the
    whole manifest on the first error (naming the row); PAXLST flags the traveler for an
    officer and keeps the others.
    """
    surname = check_name(traveler.surname, "surname", required=True)
    given_names = check_name(traveler.given_names, "given_names", required=False)
    nationality = _coded(normalise_state, traveler.nationality, "nationality")
    issuing_state = _coded(normalise_state, traveler.document.issuing_state, "issuing_state")
    number = _coded(normalise_document_number, traveler.document.number, "document_number")
    booking_reference = check_booking_reference(traveler.booking_reference)
    if traveler.date_of_birth > today:
        raise InvalidInputError("'date_of_birth' is in the future")
    if traveler.date_of_birth < _years_from(today, -MAX_AGE_YEARS):
        raise InvalidInputError(f"'date_of_birth' is more than {MAX_AGE_YEARS} years ago")
    if traveler.document_expiry < traveler.date_of_birth:
        raise InvalidInputError("'document_expiry' is before 'date_of_birth'")
    if traveler.document_expiry > _years_from(today, MAX_VALIDITY_YEARS):
        raise InvalidInputError(
            f"'document_expiry' is more than {MAX_VALIDITY_YEARS} years from today"
        )
    return replace(
        traveler,
        surname=surname,
        given_names=given_names,
        nationality=nationality,
        document=DocumentKey(issuing_state, number),
        booking_reference=booking_reference,
    )


# The documents whose issue by the home state shows their holder to be its citizen: its
# passport, and its national identity card (ICAO 9303: a state issues its identity card to
# its nationals; a residence card or a visa it issues shows the opposite). The clear-column
# definition (``CITIZENSHIP_EVIDENCE`` in the travelers repository) is the same list.
CITIZENSHIP_DOCUMENTS = frozenset({DocumentType.PASSPORT, DocumentType.ID_CARD})


def home_state_citizen(
    nationality: str, document_type: str | None, issuing_state: str, home_state: str
) -> bool:
    """Whether a traveler is a citizen of the receiving (home) state whatever a carrier
    declares: a national of it, or the holder of a passport or national identity card it
    issued. A carrier's word cannot make such a person a foreign national (whose
    fingerprints the policy takes)."""
    return nationality == home_state or (
        document_type in CITIZENSHIP_DOCUMENTS and issuing_state == home_state
    )


def check_document_nationality(traveler: ManifestTraveler, home_state: str) -> None:
    """Refuse contradictory data: a national identity card the home state issued, declared
    held by another state's national (ICAO 9303: an identity card is issued by a state to
    its nationals). Raises :class:`InvalidInputError` naming the field."""
    if (
        traveler.document_type is DocumentType.ID_CARD
        and traveler.document.issuing_state == home_state
        and traveler.nationality != home_state
    ):
        raise InvalidInputError(
            f"'nationality' must be {home_state} for a national identity card {home_state}"
            f" issued (an identity card is issued to the state's nationals), not"
            f" {excerpt(traveler.nationality, 8)!r}"
        )


def check_citizenship(traveler: ManifestTraveler, home_state: str) -> None:
    """Refuse a traveler declared anything but a citizen whom :func:`home_state_citizen`
    shows to be one, or whose home-state identity card contradicts the declared nationality
    (:func:`check_document_nationality`); raises :class:`InvalidInputError` naming the
    field."""
    check_document_nationality(traveler, home_state)
    if traveler.citizenship_class is not CitizenshipClass.CITIZEN and home_state_citizen(
        traveler.nationality,
        traveler.document_type,
        traveler.document.issuing_state,
        home_state,
    ):
        raise InvalidInputError(
            f"'citizenship_class' must be {CitizenshipClass.CITIZEN.value!r} for a national of"
            f" {home_state} or the holder of a passport or identity card {home_state} issued,"
            f" not {traveler.citizenship_class.value!r}"
        )


def check_booking_reference(value: object) -> str | None:
    """A booking reference as stored: upper-case letters and digits, 1 to 35 of them; an
    absent or blank one is None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"'booking_reference' must be text, not {type(value).__name__}")
    text = value.strip().upper()
    if not text:
        return None
    if not _BOOKING_REFERENCE.fullmatch(text):
        raise InvalidInputError(
            f"'booking_reference' must be 1 to 35 letters and digits, not {excerpt(text, 40)!r}"
        )
    return text


def _coded(normalise: Callable[[str], str], value: str, name: str) -> str:
    try:
        return normalise(value)
    except InvalidInputError as exc:
        raise InvalidInputError(f"'{name}': {exc.message}") from None


def document_expired(traveler: ManifestTraveler, today: date) -> bool:
    """Whether the traveler's document expired before ``today`` (a finding for an officer,
    not a malformed field)."""
    return traveler.document_expiry < today


def _field(row: Mapping[str, object], name: str, where: str) -> str:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and name != "given_names"):
        raise InvalidInputError(f"{where}: '{name}' is missing")
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}: '{name}' must be a string, not {type(value).__name__}")
    return value.strip()


def _date(value: str, name: str, where: str) -> date:
    if not _ISO_DATE.fullmatch(value):
        raise InvalidInputError(f"{where}: '{name}' must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"{where}: '{name}' must be a date as YYYY-MM-DD") from None


_Choice = TypeVar("_Choice", Sex, CitizenshipClass, DocumentType)


def _choice(kind: type[_Choice], value: str, name: str, where: str) -> _Choice:
    try:
        return kind(value.strip().lower() if kind is not Sex else value.strip().upper())
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInputError(f"{where}: '{name}' must be one of {allowed}") from None


def parse_traveler(
    row: Mapping[str, object], where: str, today: date, home_state: str
) -> ManifestTraveler:
    """One JSON object or CSV row as a traveler, checked by :func:`check_traveler` and
    :func:`check_citizenship` (the declared class is the carrier's word, checked against the
    traveler's nationality and document)."""
    given_names = row.get("given_names")
    if given_names is not None and not isinstance(given_names, str):
        raise InvalidInputError(
            f"{where}: 'given_names' must be a string, not {type(given_names).__name__}"
        )
    draft = ManifestTraveler(
        surname=_field(row, "surname", where),
        given_names=given_names or "",
        date_of_birth=_date(_field(row, "date_of_birth", where), "date_of_birth", where),
        sex=_choice(Sex, _field(row, "sex", where), "sex", where),
        nationality=_field(row, "nationality", where),
        citizenship_class=_choice(
            CitizenshipClass, _field(row, "citizenship_class", where), "citizenship_class", where
        ),
        document_type=_choice(
            DocumentType, _field(row, "document_type", where), "document_type", where
        ),
        document=DocumentKey(
            _field(row, "issuing_state", where), _field(row, "document_number", where)
        ),
        document_expiry=_date(_field(row, "document_expiry", where), "document_expiry", where),
        booking_reference=row.get("booking_reference"),  # type: ignore[arg-type]
    )
    try:
        traveler = check_traveler(draft, today)
        check_citizenship(traveler, home_state)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc.message}") from None
    return traveler


def traveler_row(traveler: ManifestTraveler) -> dict[str, str]:
    """A traveler as a manifest row (the JSON and CSV fields; what ``parse_traveler`` reads)."""
    row = {
        "surname": traveler.surname,
        "given_names": traveler.given_names,
        "date_of_birth": traveler.date_of_birth.isoformat(),
        "sex": traveler.sex.value,
        "nationality": traveler.nationality,
        "citizenship_class": traveler.citizenship_class.value,
        "document_type": traveler.document_type.value,
        "document_number": traveler.document.number,
        "issuing_state": traveler.document.issuing_state,
        "document_expiry": traveler.document_expiry.isoformat(),
    }
    if traveler.booking_reference is not None:
        row["booking_reference"] = traveler.booking_reference
    return row


def _parse_rows(
    rows: Iterable[tuple[str, Mapping[str, object]]], today: date, home_state: str
) -> list[ManifestTraveler]:
    travelers: list[ManifestTraveler] = []
    seen: set[DocumentKey] = set()
    for where, row in rows:
        if len(travelers) >= MAX_TRAVELERS:
            raise InvalidInputError(f"a manifest may list at most {MAX_TRAVELERS} travelers")
        traveler = parse_traveler(row, where, today, home_state)
        if traveler.document in seen:
            raise InvalidInputError(f"{where}: the same document appears twice in the manifest")
        seen.add(traveler.document)
        travelers.append(traveler)
    return travelers


class _RepeatedKeyError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_without_repeated_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object, refused when a key repeats: parsers differ on which one wins, and a
    gateway that validated the first must not have approved a different manifest."""
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKeyError(key)
            seen.add(key)
    return document


def parse_json_manifest(data: bytes, today: date, home_state: str) -> list[ManifestTraveler]:
    """``{"travelers": [{...}, ...]}`` or a bare list of traveler objects; ``home_state`` is
    the receiving state (its nationals and passport holders must be declared citizens)."""
    check_json_depth(data)
    try:
        document = json.loads(data, object_pairs_hook=_object_without_repeated_keys)
    except _RepeatedKeyError as exc:
        raise InvalidInputError(
            f"the manifest names {excerpt(exc.key, 40)} twice in one object; a reader that"
            " took the first would see another manifest"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError("the manifest is not valid JSON") from None
    entries = document.get("travelers") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise InvalidInputError("the manifest must be a list of travelers or {'travelers': [...]}")
    if len(entries) > MAX_TRAVELERS:
        raise InvalidInputError(f"a manifest may list at most {MAX_TRAVELERS} travelers")
    rows: list[tuple[str, Mapping[str, object]]] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidInputError(f"traveler {index + 1}: must be an object")
        rows.append((f"traveler {index + 1}", entry))
    return _parse_rows(rows, today, home_state)


# Far more than any manifest needs, far less than csv's own field limit (128 KiB).
MAX_CSV_FIELD = 1024
MAX_CSV_COLUMNS = 64


def parse_csv_manifest(data: bytes, today: date, home_state: str) -> list[ManifestTraveler]:
    """A header row naming the fields, then one traveler a row (UTF-8; line ends ``\n``,
    ``\r\n`` or ``\r``); ``home_state`` as for :func:`parse_json_manifest`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError("the CSV manifest is not UTF-8 text") from None
    # newline="" hands every line end to the csv module, which knows all three.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        return _parse_rows(_csv_rows(reader), today, home_state)
    except csv.Error as exc:
        raise InvalidInputError(
            f"the CSV manifest is malformed at line {reader.line_num}: {excerpt(str(exc), 80)}"
        ) from None


def _csv_rows(reader: Iterator[list[str]]) -> Iterator[tuple[str, Mapping[str, object]]]:
    line = getattr(reader, "line_num", 0)
    header = next(reader, None)
    if header is None:
        raise InvalidInputError("the CSV manifest is empty")
    _check_cells(header, "the CSV header")
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        named = ", ".join(excerpt(name, 40) for name in repeated[:5])
        raise InvalidInputError(f"the CSV header names a column twice: {named}")
    missing = [name for name in FIELDS if name not in names]
    if missing:
        raise InvalidInputError(f"the CSV header lacks: {', '.join(missing)}")
    columns = {name: names.index(name) for name in (*FIELDS, *OPTIONAL_FIELDS) if name in names}
    for cells in reader:
        line = getattr(reader, "line_num", line + 1)
        if not cells or cells == [""]:
            continue  # a blank line
        where = f"row {line}"
        _check_cells(cells, where)
        yield where, {name: cells[i] if i < len(cells) else None for name, i in columns.items()}


def _check_cells(cells: list[str], where: str) -> None:
    if len(cells) > MAX_CSV_COLUMNS:
        raise InvalidInputError(f"{where}: more than {MAX_CSV_COLUMNS} columns")
    for cell in cells:
        if len(cell) > MAX_CSV_FIELD:
            raise InvalidInputError(
                f"{where}: a field of {len(cell)} characters; at most {MAX_CSV_FIELD} are accepted"
            )
