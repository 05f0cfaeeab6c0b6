"""The conflict list's cursor and query bounds (review C3)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from entryexit.domain.conflicts import MAX_PAGE, ConflictCursor, ConflictQuery
from entryexit.errors import InvalidCursorError, InvalidInputError


def test_a_cursor_reads_back_what_it_names() -> None:
    cursor = ConflictCursor(
        datetime(2026, 12, 1, 15, 4, 5, 123456, tzinfo=UTC), "0a1b2c3d-0000-4000-8000-00000000abcd"
    )
    assert ConflictCursor.decode(cursor.encode()) == cursor
    assert "=" not in cursor.encode()


def _encoded(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x",
        "not base64 !",
        "a" * 200,
        _encoded("2026-12-01T10:00:00|abc"),  # no time zone
        _encoded("yesterday|abc"),
        _encoded("2026-12-01T10:00:00+00:00|"),
        _encoded("2026-12-01T10:00:00+00:00|' OR 1=1 --"),
        _encoded("2026-12-01T10:00:00+00:00|" + "a" * 37),
        base64.urlsafe_b64encode(b"\xff\xfe|abc").decode(),
    ],
)
def test_anything_but_a_cursor_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(InvalidCursorError) as error:
        ConflictCursor.decode(value)
    assert value not in error.value.message or not value


def test_a_page_holds_one_to_the_maximum() -> None:
    assert ConflictQuery(limit=MAX_PAGE).limit == MAX_PAGE
    for limit in (0, MAX_PAGE + 1):
        with pytest.raises(InvalidInputError):
            ConflictQuery(limit=limit)
