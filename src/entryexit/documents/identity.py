"""Naming a travel document: by its machine-readable zone, or by issuing state and number."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from entryexit.documents.mrz import Mrz, parse_mrz
from entryexit.documents.text import normalise_document_number, normalise_state
from entryexit.domain.model import DocumentKey
from entryexit.errors import InvalidInputError


def mrz_lines(text: str) -> list[str]:
    """An MRZ sent as one text field, its lines separated by newlines."""
    return text.replace("\r", "").split("\n")


def identify_document(
    mrz: Sequence[str] | None, issuing_state: str | None, number: str | None, today: date
) -> tuple[DocumentKey | None, Mrz | None]:
    """The document named, and its parsed MRZ when it was named by one; ``(None, None)`` when
    nothing was given. Half a name (a state without a number) is an error."""
    if mrz:
        parsed = parse_mrz(list(mrz), today)
        return DocumentKey(parsed.issuing_state, parsed.document_number), parsed
    if issuing_state and number:
        return DocumentKey(normalise_state(issuing_state), normalise_document_number(number)), None
    if issuing_state or number:
        raise InvalidInputError("give both issuing_state and number, or an mrz")
    return None, None
