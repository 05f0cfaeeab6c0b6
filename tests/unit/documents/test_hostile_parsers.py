"""Every document parser under generated hostile input: it answers or raises the project's
own error (InvalidInputError and its subclasses), never anything else; and its cost grows
linearly with the input (minimum of several runs, a generous factor: 10x input < 30x time)."""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entryexit.documents.emrtd import (
    children,
    data_group_number,
    parse_dg1,
    parse_dg2,
    parse_ef_com,
    read_tlv,
    verify_security_object,
)
from entryexit.documents.identity import identify_document, mrz_lines
from entryexit.documents.manifest import (
    FIELDS,
    parse_csv_manifest,
    parse_json_manifest,
    traveler_row,
)
from entryexit.documents.mrz import parse_mrz
from entryexit.documents.paxlst import export_paxlst, parse_paxlst, split_segments
from entryexit.documents.text import check_json_depth
from entryexit.domain.model import (
    CitizenshipClass,
    DocumentKey,
    DocumentType,
    ManifestTraveler,
    Sex,
)
from entryexit.errors import InvalidInputError
from tests import chip_builder

TODAY = date(2026, 11, 23)
HOME = "UTO"  # the home state (ENTRYEXIT_HOME_STATE)
HOSTILE_CHARS = st.sampled_from(
    [
        *"UNHABGMDTNADOCLT+:'?*#|0123456789 <,\"=-@\r\n\t\x00\x1b",
        *("\u202e", "\u200b", "\ufeff", "\ud800", "\x85", "\xe9", "\u5f20", "\U0001f600"),
    ]
)
HOSTILE_TEXT = st.text(alphabet=HOSTILE_CHARS, max_size=400)
# Text that survives UTF-8 (lone surrogates cannot be encoded; JSON escapes carry them).
ENCODABLE_TEXT = st.text(
    alphabet=HOSTILE_CHARS.filter(lambda c: not 0xD800 <= ord(c) <= 0xDFFF), max_size=400
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | HOSTILE_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(HOSTILE_TEXT, inner, max_size=4),
    max_leaves=20,
)


def _traveler(index: int) -> ManifestTraveler:
    return ManifestTraveler(
        surname=f"SURNAME{index % 97}",
        given_names="ANNA MARIA",
        date_of_birth=date(1970 + index % 40, 1 + index % 12, 1 + index % 28),
        sex=Sex.FEMALE,
        nationality="XYZ",
        citizenship_class=CitizenshipClass.FOREIGN_NATIONAL,
        document_type=DocumentType.PASSPORT,
        document=DocumentKey("XYZ", f"N{index:08d}"),
        document_expiry=date(2030, 1, 1),
    )


def _only_our_errors(parse: Callable[[], object]) -> None:
    message = ""
    try:
        parse()
    except InvalidInputError as exc:
        message = exc.message
    assert len(message) < 400  # never an echo of the whole input


# --- no exception but ours -------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(ENCODABLE_TEXT)
def test_paxlst_arbitrary_text(text: str) -> None:
    _only_our_errors(lambda: parse_paxlst(text.encode("utf-8"), TODAY, "UTO"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_paxlst_arbitrary_bytes(data: bytes) -> None:
    _only_our_errors(lambda: parse_paxlst(data, TODAY, "UTO"))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_paxlst_mutated_real_messages(data: st.DataObject) -> None:
    text = export_paxlst("XY", "42", "JFK", "UTO", TODAY, [_traveler(i) for i in range(3)])
    position = data.draw(st.integers(0, len(text)))
    insert = data.draw(ENCODABLE_TEXT)
    cut = data.draw(st.integers(0, 20))
    mutated = text[:position] + insert + text[position + cut :]
    _only_our_errors(lambda: parse_paxlst(mutated.encode(), TODAY, "UTO"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(ENCODABLE_TEXT, min_size=0, max_size=12), max_size=5))
def test_csv_manifest_arbitrary_cells(rows: list[list[str]]) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(FIELDS)
    writer.writerows(rows)
    _only_our_errors(lambda: parse_csv_manifest(buffer.getvalue().encode(), TODAY, HOME))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_csv_manifest_arbitrary_bytes(data: bytes) -> None:
    header = ",".join(FIELDS).encode()
    _only_our_errors(lambda: parse_csv_manifest(data, TODAY, HOME))
    _only_our_errors(lambda: parse_csv_manifest(header + b"\r" + data, TODAY, HOME))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=10))
def test_json_manifest_arbitrary_values_in_every_field(change: dict[str, object]) -> None:
    row: dict[str, object] = {**traveler_row(_traveler(1)), **change}
    body = json.dumps({"travelers": [row]}).encode()
    try:
        (traveler,) = parse_json_manifest(body, TODAY, HOME)
    except InvalidInputError:
        return
    # Whatever is accepted is stored text that reads back.
    for value in traveler_row(traveler).values():
        value.encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_json_manifest_arbitrary_bytes(data: bytes) -> None:
    _only_our_errors(lambda: parse_json_manifest(data, TODAY, HOME))
    _only_our_errors(lambda: check_json_depth(data))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=HOSTILE_CHARS, max_size=60), max_size=5))
def test_mrz_arbitrary_lines(lines: list[str]) -> None:
    _only_our_errors(lambda: parse_mrz(lines, TODAY))
    _only_our_errors(lambda: identify_document(mrz_lines("\n".join(lines)), None, None, TODAY))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<", min_size=88, max_size=88))
def test_mrz_well_shaped_noise(text: str) -> None:
    _only_our_errors(lambda: parse_mrz([text[:44], text[44:]], TODAY))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_ber_tlv_and_data_groups_arbitrary_bytes(data: bytes) -> None:
    for parse in (
        lambda: read_tlv(data),
        lambda: children(data),
        lambda: data_group_number(data),
        lambda: parse_ef_com(data),
        lambda: parse_dg1(data, TODAY),
        lambda: parse_dg2(data),
    ):
        _only_our_errors(parse)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 0xFF))
def test_data_groups_with_a_valid_outer_tag(body: bytes, tag: int) -> None:
    for outer in (0x60, 0x61, 0x75, tag):
        data = chip_builder.tlv(outer, body)
        _only_our_errors(functools.partial(parse_ef_com, data))
        _only_our_errors(functools.partial(parse_dg1, data, TODAY))
        _only_our_errors(functools.partial(parse_dg2, data))


@pytest.fixture(scope="module")
def signed_chip() -> tuple[bytes, dict[int, bytes]]:
    pki = chip_builder.make_pki()
    groups = {
        1: chip_builder.dg1(
            [
                "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
                "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
            ]
        )
    }
    return chip_builder.sod(groups, pki), groups


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_security_object_damaged_anywhere(
    signed_chip: tuple[bytes, dict[int, bytes]], data: st.DataObject
) -> None:
    sod, groups = signed_chip
    position = data.draw(st.integers(0, len(sod) - 1))
    damaged = bytearray(sod)
    damaged[position] ^= data.draw(st.integers(1, 255))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(sod)))]
    _only_our_errors(lambda: verify_security_object(bytes(damaged), groups))


# --- linear cost -----------------------------------------------------------------------------


def _cost(run: Callable[[], object], repeats: int = 5) -> float:
    """CPU time of this thread (not the wall clock, which other processes on a shared
    machine stretch), the best of ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        with contextlib.suppress(InvalidInputError):
            run()
        best = min(best, time.thread_time() - start)
    return best


def _assert_linear(make: Callable[[int], Callable[[], object]], small: int) -> None:
    """10x the input costs less than 30x the time (minimum of 5 runs each)."""
    base = _cost(make(small))
    large = _cost(make(10 * small))
    assert large < 30 * max(base, 1e-4), (base, large)


def test_paxlst_cost_is_linear_in_travelers() -> None:
    def make(count: int) -> Callable[[], object]:
        text = export_paxlst("XY", "1", "JFK", "UTO", TODAY, [_traveler(i) for i in range(count)])
        data = text.encode()
        return lambda: parse_paxlst(data, TODAY, "UTO")

    _assert_linear(make, 100)


def test_paxlst_cost_is_linear_in_field_length_and_release_characters() -> None:
    def long_field(size: int) -> Callable[[], object]:
        text = "UNH+1+PAXLST:D:05B:UN'NAD+FL+++" + "A" * size + "'UNT+3+1'"
        return lambda: split_segments(text)

    def released(size: int) -> Callable[[], object]:
        text = "".join("FTX+AAA+++?+?:?'?'" + "'" for _ in range(size))
        return lambda: split_segments(text)

    _assert_linear(long_field, 100_000)
    _assert_linear(released, 2_000)


def test_manifest_cost_is_linear_in_rows() -> None:
    def make_json(count: int) -> Callable[[], object]:
        body = json.dumps([traveler_row(_traveler(i)) for i in range(count)]).encode()
        return lambda: parse_json_manifest(body, TODAY, HOME)

    def make_csv(count: int) -> Callable[[], object]:
        lines = [",".join(FIELDS)] + [
            ",".join(traveler_row(_traveler(i)).values()) for i in range(count)
        ]
        body = "\r".join(lines).encode()
        return lambda: parse_csv_manifest(body, TODAY, HOME)

    _assert_linear(make_json, 100)
    _assert_linear(make_csv, 100)


def test_json_depth_check_is_linear() -> None:
    def make(size: int) -> Callable[[], object]:
        body = b'[{"a": "' + b'x\\"' * size + b'"}, ' + b"[1], " * size + b"0]"
        return lambda: check_json_depth(body)

    _assert_linear(make, 20_000)


def test_ber_tlv_walk_is_linear() -> None:
    def make(count: int) -> Callable[[], object]:
        body = chip_builder.tlv(0x5F1F, b"X" * 20) * count
        return lambda: children(body)

    _assert_linear(make, 1_000)
