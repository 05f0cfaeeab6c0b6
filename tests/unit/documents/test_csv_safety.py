from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entryexit.documents.csv_safety import FORMULA_PREFIXES, neutralise_cell, neutralise_row


@pytest.mark.parametrize(
    "cell",
    [
        '=HYPERLINK("http://x","y")',
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        "\uff1d1+1",
        "=",
    ],
)
def test_formula_cells_become_text(cell: str) -> None:
    assert neutralise_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["O'BRIEN", "", "DOE-SMITH", "A=B", " =1", 5, -5, 2.5, None])
def test_other_cells_are_unchanged(cell: object) -> None:
    assert neutralise_cell(cell) == cell


def test_a_row_through_csv_writer() -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(neutralise_row(["=cmd|' /C calc'!A0", "ANNA", -3]))
    assert buffer.getvalue() == "'=cmd|' /C calc'!A0,ANNA,-3\r\n"


@given(st.text())
def test_no_neutralised_text_cell_starts_a_formula(text: str) -> None:
    cell = neutralise_cell(text)
    assert isinstance(cell, str)
    assert cell[:1] not in FORMULA_PREFIXES
    assert cell in (text, "'" + text)
