"""Passenger manifests in JSON and CSV: parsed strictly, every problem named with its row."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import TypeVar

from entryexit.domain.model import (
    CitizenshipClass,
    DocumentKey,
    DocumentType,
    ManifestTraveler,
    Sex,
)
from entryexit.errors import InvalidInputError

MAX_TRAVELERS = 10_000
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
_STATE = re.compile(r"^[A-Z]{3}$|^[A-Z]<<$|^D<<$")
_DOCUMENT_NUMBER = re.compile(r"^[A-Z0-9]{1,20}$")
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{0,100}$")


def normalise_state(value: str) -> str:
    state = value.strip().upper()
    if not _STATE.match(state):
        raise InvalidInputError(f"issuing state {value!r} is not an ICAO 9303 three-letter code")
    return state


def normalise_document_number(value: str) -> str:
    number = value.strip().upper().replace(" ", "")
    if not _DOCUMENT_NUMBER.match(number):
        raise InvalidInputError("a document number must be 1 to 20 letters or digits")
    return number


def _field(row: Mapping[str, object], name: str, where: str) -> str:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and name != "given_names"):
        raise InvalidInputError(f"{where}: '{name}' is missing")
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}: '{name}' must be a string")
    return value.strip()


def _date(value: str, name: str, where: str) -> date:
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


def parse_traveler(row: Mapping[str, object], where: str, today: date) -> ManifestTraveler:
    surname = _field(row, "surname", where)
    given_names = str(row.get("given_names") or "").strip()
    for label, text in (("surname", surname), ("given_names", given_names)):
        if not _NAME.match(text):
            raise InvalidInputError(f"{where}: '{label}' is too long or has control characters")
    date_of_birth = _date(_field(row, "date_of_birth", where), "date_of_birth", where)
    if date_of_birth > today:
        raise InvalidInputError(f"{where}: 'date_of_birth' is in the future")
    try:
        document = DocumentKey(
            issuing_state=normalise_state(_field(row, "issuing_state", where)),
            number=normalise_document_number(_field(row, "document_number", where)),
        )
        nationality = normalise_state(_field(row, "nationality", where))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc.message}") from None
    return ManifestTraveler(
        surname=surname,
        given_names=given_names,
        date_of_birth=date_of_birth,
        sex=_choice(Sex, _field(row, "sex", where), "sex", where),
        nationality=nationality,
        citizenship_class=_choice(
            CitizenshipClass, _field(row, "citizenship_class", where), "citizenship_class", where
        ),
        document_type=_choice(
            DocumentType, _field(row, "document_type", where), "document_type", where
        ),
        document=document,
        document_expiry=_date(_field(row, "document_expiry", where), "document_expiry", where),
    )


def traveler_row(traveler: ManifestTraveler) -> dict[str, str]:
    """A traveler as a manifest row (the JSON and CSV fields; what ``parse_traveler`` reads)."""
    return {
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


def _parse_rows(
    rows: Iterable[tuple[str, Mapping[str, object]]], today: date
) -> list[ManifestTraveler]:
    travelers: list[ManifestTraveler] = []
    seen: set[DocumentKey] = set()
    for where, row in rows:
        if len(travelers) >= MAX_TRAVELERS:
            raise InvalidInputError(f"a manifest may list at most {MAX_TRAVELERS} travelers")
        traveler = parse_traveler(row, where, today)
        if traveler.document in seen:
            raise InvalidInputError(f"{where}: the same document appears twice in the manifest")
        seen.add(traveler.document)
        travelers.append(traveler)
    return travelers


def parse_json_manifest(data: bytes, today: date) -> list[ManifestTraveler]:
    """``{"travelers": [{...}, ...]}`` or a bare list of traveler objects."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError("the manifest is not valid JSON") from None
    entries = document.get("travelers") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise InvalidInputError("the manifest must be a list of travelers or {'travelers': [...]}")
    rows: list[tuple[str, Mapping[str, object]]] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidInputError(f"traveler {index + 1}: must be an object")
        rows.append((f"traveler {index + 1}", entry))
    return _parse_rows(rows, today)


def parse_csv_manifest(data: bytes, today: date) -> list[ManifestTraveler]:
    """A header row naming the fields, then one traveler a row (UTF-8)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError("the CSV manifest is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [name for name in FIELDS if name not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInputError(f"the CSV header lacks: {', '.join(missing)}")
    try:
        rows = [(f"row {reader.line_num}", dict(row)) for row in reader]
    except csv.Error as exc:
        raise InvalidInputError(f"the CSV manifest is malformed: {exc}") from None
    return _parse_rows(rows, today)
