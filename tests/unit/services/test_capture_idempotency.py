"""A capture under an Idempotency-Key: a retry replays the first outcome and records nothing;
the same key for another request is refused."""

from __future__ import annotations

import pytest

from entryexit.domain.model import Decision
from entryexit.errors import IdempotencyKeyReusedError, InvalidInputError
from tests import fake_storage
from tests.unit.services.world import GATE, OFFICER, World, traveler


def boarded() -> tuple[World, str]:
    world = World()
    flight = world.boarding(travelers=[traveler("P1")], seeds={"P1": 1})
    return world, flight.id


def test_a_retry_gets_the_first_outcome_and_nothing_is_recorded_again() -> None:
    world, flight_id = boarded()
    first = world.captures.process(GATE, flight_id, b"face:1", "G1", "cam", "key-1")
    recorded = (len(world.uow.tables.captures), len(world.uow.tables.encounters), world.actions())

    retry = world.captures.process(GATE, flight_id, b"face:1", "G1", "cam", "key-1")

    assert (retry.capture_id, retry.decision, retry.already_processed) == (
        first.capture_id,
        Decision.MATCH,
        False,
    )
    assert (retry.traveler_id, retry.score, retry.policy_version) == (
        first.traveler_id,
        first.score,
        first.policy_version,
    )
    assert (first.replayed, retry.replayed) == (False, True)
    after = (len(world.uow.tables.captures), len(world.uow.tables.encounters), world.actions())
    assert after == recorded


def test_a_recapture_is_replayed_too() -> None:
    world, flight_id = boarded()
    first = world.captures.process(GATE, flight_id, b"blurred:1", "G1", "cam", "k")
    retry = world.captures.process(GATE, flight_id, b"blurred:1", "G1", "cam", "k")
    assert (retry.capture_id, retry.decision, retry.reasons) == (
        first.capture_id,
        Decision.RECAPTURE,
        ("blur",),
    )
    assert len(world.uow.tables.captures) == 1


@pytest.mark.parametrize(
    ("photo", "gate", "device"),
    [(b"face:2", "G1", "cam"), (b"face:1", "G2", "cam"), (b"face:1", "G1", "cam-2")],
)
def test_the_same_key_for_another_request_is_refused(photo: bytes, gate: str, device: str) -> None:
    world, flight_id = boarded()
    world.captures.process(GATE, flight_id, b"face:1", "G1", "cam", "k")
    with pytest.raises(IdempotencyKeyReusedError):
        world.captures.process(GATE, flight_id, photo, gate, device, "k")
    assert len(world.uow.tables.captures) == 1


def test_the_same_key_on_another_flight_is_refused() -> None:
    world, flight_id = boarded()
    other = world.boarding(travelers=[traveler("P1")], seeds={}, number="13")
    world.captures.process(GATE, flight_id, b"face:1", "G1", "cam", "k")
    with pytest.raises(IdempotencyKeyReusedError):
        world.captures.process(GATE, other.id, b"face:1", "G1", "cam", "k")


def test_keys_belong_to_their_caller() -> None:
    world, flight_id = boarded()
    first = world.captures.process(GATE, flight_id, b"face:1", "G1", "cam", "k")
    officers = world.captures.process(OFFICER, flight_id, b"face:1", "G1", "cam", "k")
    assert officers.capture_id != first.capture_id
    assert (officers.replayed, officers.already_processed) == (False, True)


@pytest.mark.parametrize("key", ["", "with space", "x" * 129, "caf\u00e9"])
def test_a_malformed_key_is_invalid_input(key: str) -> None:
    world, flight_id = boarded()
    with pytest.raises(InvalidInputError):
        world.captures.process(GATE, flight_id, b"face:1", "G1", "cam", key)
    assert world.uow.tables.captures == {}


def test_a_retry_that_raced_past_the_first_look_up_is_answered_from_the_claim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two retries on two instances both find no key before the model runs; the claim in
    the capture's transaction is what decides."""
    world, flight_id = boarded()
    first = world.captures.process(GATE, flight_id, b"face:1", "G1", "cam", "k")
    monkeypatch.setattr(fake_storage._Captures, "find_idempotency", lambda *_: None)

    raced = world.captures.process(GATE, flight_id, b"face:1", "G1", "cam", "k")

    assert (raced.capture_id, raced.replayed) == (first.capture_id, True)
    assert len(world.uow.tables.captures) == 1
    assert world.actions().count("capture") == 1
    with pytest.raises(IdempotencyKeyReusedError):
        world.captures.process(GATE, flight_id, b"face:2", "G1", "cam", "k")
