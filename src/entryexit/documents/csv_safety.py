"""CSV cells a spreadsheet will show as text, never run as a formula.

A CSV export (the overstay report, a manifest export) carries names and codes that came from
outside. A cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return,
which some spreadsheets skip before looking for one) is a formula to Excel, LibreOffice and
Google Sheets: ``=HYPERLINK(...)`` in a surname would run on the analyst's machine. Such a
text cell is prefixed with a single quote, which spreadsheets show as text and hide.
Full-width look-alikes (U+FF1D, U+FF0B, U+FF0D, U+FF20) are treated the same, as some
spreadsheets fold them. Numbers pass unchanged (a negative count stays a number).

Pure functions, no I/O: apply :func:`neutralise_row` to every row before ``csv.writer``.
"""

from __future__ import annotations

from collections.abc import Iterable

FORMULA_PREFIXES = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
_TEXT_MARK = "'"


def neutralise_cell(value: object) -> object:
    """``value``, with a text cell that would start a formula made plain text."""
    if isinstance(value, str) and value[:1] in FORMULA_PREFIXES:
        return _TEXT_MARK + value
    return value


def neutralise_row(row: Iterable[object]) -> list[object]:
    """Every cell of ``row`` through :func:`neutralise_cell`."""
    return [neutralise_cell(cell) for cell in row]
