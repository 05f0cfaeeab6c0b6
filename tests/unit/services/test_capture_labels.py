"""Gate and device labels are machine names an officer trusts to say where a capture came
from (session 9 probe L4): printable ASCII only, so no stacked combining marks, homoglyphs or
direction controls reach the console's pages."""

from __future__ import annotations

import pytest

from entryexit.errors import InvalidInputError
from tests.unit.services.world import GATE, World, traveler


@pytest.mark.parametrize(
    "label",
    ["G1" + "\u0301" * 20, "G\u04261", "G1\u202e", "", "G" * 65],
    ids=["combining-marks", "cyrillic-homoglyph", "direction-control", "empty", "too-long"],
)
def test_a_capture_from_a_gate_with_a_label_not_a_machine_name_is_refused(label: str) -> None:
    world = World()
    flight = world.boarding(travelers=[traveler("P1")], seeds={"P1": 1})
    with pytest.raises(InvalidInputError, match="printable ASCII"):
        world.captures.process(GATE, flight.id, b"face:1", label, "cam")
    with pytest.raises(InvalidInputError, match="printable ASCII"):
        world.captures.process(GATE, flight.id, b"face:1", "G1", label)
    assert world.captures.process(GATE, flight.id, b"face:1", "G1", "cam-2").decision.value
