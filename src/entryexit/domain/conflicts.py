"""The agency's list of manifest conflicts in pages, and the bound on how many one upload may
open (review C3): pure rules, no I/O.

A page is read by keyset (``created_at``, ``id``), oldest first: the cursor names the last
conflict of a page, so a walk sees every conflict that exists throughout it exactly once,
whatever is added or resolved meanwhile, and each page costs the same however deep it is.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from entryexit.domain.model import ManifestConflict
from entryexit.errors import InvalidCursorError, InvalidInputError

__all__ = [
    "DEFAULT_PAGE",
    "MAX_CONFLICTS_PER_UPLOAD",
    "MAX_OPEN_CONFLICTS_PER_CARRIER",
    "MAX_PAGE",
    "ConflictCursor",
    "ConflictPage",
    "ConflictQuery",
    "ConflictStatus",
]

# A page of the list: its default size and the most one request may ask for.
DEFAULT_PAGE = 100
MAX_PAGE = 500
# The most conflicts one carrier upload may hold (new ones, and the carrier's open ones it
# brings up to date): a real manifest disputes a few documents (a misspelt name, a corrected
# birth date). Beyond it, further disputed entries are listed with the details in force, as
# the others are, and no conflict is recorded (counted in the agency's audit event; the
# carrier is not told, as it is not told of the others). Sending the upload again opens none.
MAX_CONFLICTS_PER_UPLOAD = 200
# ...and the most open conflicts one carrier may hold in all, across its uploads and flights
# (review s10 C1: 200 an upload, repeated with other documents or flights, was no bound). Past
# it, its uploads open none (handled as above) until the agency resolves some.
MAX_OPEN_CONFLICTS_PER_CARRIER = 2000
# A cursor is short: a timestamp and an id, base64url (a longer one is refused unread).
MAX_CURSOR_LENGTH = 128
_ID_CHARACTERS = frozenset("0123456789abcdefABCDEF-")


class ConflictStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class ConflictCursor:
    """Where a page ends: the last conflict's creation time and id."""

    created_at: datetime
    id: str

    def encode(self) -> str:
        text = f"{self.created_at.isoformat()}|{self.id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> ConflictCursor:
        """The cursor :meth:`encode` wrote; anything else raises :class:`InvalidCursorError`
        (the value is not echoed)."""
        bad = InvalidCursorError("'after' is not a cursor of this list")
        if not value or len(value) > MAX_CURSOR_LENGTH:
            raise bad
        try:
            text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
            stamp, _, conflict_id = text.partition("|")
            created_at = datetime.fromisoformat(stamp)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise bad from None
        if (
            created_at.tzinfo is None
            or not 1 <= len(conflict_id) <= 36
            or not set(conflict_id) <= _ID_CHARACTERS
        ):
            raise bad
        return cls(created_at, conflict_id)

    @classmethod
    def of(cls, conflict: ManifestConflict) -> ConflictCursor:
        return cls(conflict.created_at, conflict.id)


@dataclass(frozen=True, slots=True)
class ConflictQuery:
    """One page of the list: by status, optionally one flight's or one proposing carrier's,
    after ``after``, at most ``limit`` (1 to :data:`MAX_PAGE`)."""

    status: ConflictStatus = ConflictStatus.OPEN
    flight_id: str | None = None
    carrier: str | None = None
    after: ConflictCursor | None = None
    limit: int = DEFAULT_PAGE

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise InvalidInputError(f"'limit' must be 1 to {MAX_PAGE}")


@dataclass(frozen=True, slots=True)
class ConflictPage:
    """A page, oldest first, and the cursor of the next one (None: this was the last)."""

    conflicts: list[ManifestConflict]
    next: ConflictCursor | None
