from __future__ import annotations

from datetime import date

import pytest

from entryexit.documents.identity import identify_document, mrz_lines
from entryexit.domain.model import DocumentKey
from entryexit.errors import InvalidInputError

TODAY = date(2026, 11, 23)
TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\r\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"


def test_by_mrz_by_state_and_number_or_not_at_all() -> None:
    key, mrz = identify_document(mrz_lines(TD3), None, None, TODAY)
    assert key == DocumentKey("UTO", "L898902C3")
    assert mrz is not None
    assert mrz.primary_identifier == "ERIKSSON"
    assert identify_document(None, "uto", "l898902c3", TODAY) == (
        DocumentKey("UTO", "L898902C3"),
        None,
    )
    assert identify_document(None, None, None, TODAY) == (None, None)


def test_half_a_name_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="both"):
        identify_document(None, "UTO", None, TODAY)
