"""The case page's drawing of a kept print: one line per pair, from the live minutia to the
enrolled one shifted onto the right-hand canvas, as opaque as the pair is strong; without an
enrolled finger (purged since) the live side alone, with no pairs drawn."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from entryexit.services.fingerprints import CasePrintView, PrintSide
from entryexit.web.console_fingerprints import FAINTEST, GAP, TICK, print_drawing

LIVE = PrintSide(300, 400, ((10.0, 20.0, 0.0), (50.0, 60.0, math.pi / 2), (90.0, 99.0, 1.0)), 55)
ENROLLED = PrintSide(280, 420, ((12.0, 22.0, 0.0), (48.0, 61.0, math.pi / 2)), None)


def view(enrolled: PrintSide | None, pairs: tuple[tuple[int, int, float], ...]) -> CasePrintView:
    return CasePrintView(
        "p1", 2, 0.7, datetime(2026, 11, 30, tzinfo=UTC), LIVE, enrolled, pairs, False
    )


def test_pairs_join_the_live_minutia_to_the_enrolled_one_on_its_canvas() -> None:
    drawing = print_drawing(view(ENROLLED, ((0, 0, 0.3), (1, 1, 0.01))))
    assert drawing.offset == 300 + GAP
    assert (drawing.width, drawing.height) == (300 + GAP + 280, 420)
    assert drawing.pairs[0][:4] == (10.0, 20.0, 12.0 + 300 + GAP, 22.0)
    assert drawing.pairs[0][4] == 1.0  # a strong pair, solid
    assert drawing.pairs[1][4] == pytest.approx(FAINTEST)  # a weak one, faint, still visible
    assert [m.paired for m in drawing.live] == [True, True, False]
    assert [m.paired for m in drawing.enrolled] == [True, True]
    tick = drawing.live[1]
    assert (tick.tip_x, tick.tip_y) == pytest.approx((50.0, 60.0 + TICK))  # y points down


def test_without_the_enrolled_finger_only_the_live_side_is_drawn() -> None:
    drawing = print_drawing(view(None, ()))
    assert (drawing.width, drawing.height) == (300 + GAP, 400)
    assert drawing.enrolled == ()
    assert drawing.pairs == ()
    assert not any(m.paired for m in drawing.live)
