"""Policies: loading versions (each once, never changed), and the one in force at a time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from entryexit.errors import ConflictError, InvalidInputError, NotFoundError
from entryexit.services.audit import AuditTrail
from entryexit.services.policies import RECHECK_EVERY, PolicyService, shipped_policy_text
from tests.fake_storage import FakeUnitOfWorkFactory, InjectedCommitError
from tests.fakes import FakeClock, StaticKeyProvider
from tests.unit.services.world import ADMIN, World, policy_with

MANDATORY = shipped_policy_text("noncitizens-mandatory.toml")


def service(
    uow: FakeUnitOfWorkFactory | None = None,
) -> tuple[PolicyService, FakeUnitOfWorkFactory]:
    factory = uow or FakeUnitOfWorkFactory()
    clock = FakeClock()
    return PolicyService(factory, clock, AuditTrail(factory, clock, StaticKeyProvider())), factory


def test_the_default_is_loaded_once_on_an_empty_store() -> None:
    policies, uow = service()
    policies.ensure_default()
    policies.ensure_default()
    assert [p.version for p in policies.all()] == ["default-2"]
    (event,) = [e.entry for e in uow.tables.audit_events]
    assert (event.action, event.resource_id, event.policy_version) == (
        "policy load",
        "default-2",
        "default-2",
    )
    assert event.details == {"effective_from": "2026-01-01T00:00:00+00:00"}
    assert event.actor_key_id is None


def test_a_version_is_loaded_once_and_never_changed() -> None:
    world = World()
    policy, added = world.policies.load(MANDATORY, ADMIN)
    assert (policy.version, added) == ("noncitizens-mandatory-1", True)
    assert world.uow.tables.audit_events[-1].entry.actor_key_id == ADMIN.key_id
    events = len(world.uow.tables.audit_events)
    assert world.policies.load(MANDATORY, ADMIN)[1] is False  # the same text again
    with pytest.raises(ConflictError):
        world.policies.load(MANDATORY.replace("Non-citizens photographed", "Changed"), ADMIN)
    assert len(world.uow.tables.audit_events) == events
    stored = world.uow.tables.policies["noncitizens-mandatory-1"].policy
    assert stored.source == MANDATORY


@pytest.mark.parametrize(
    "text",
    ["not toml [", 'version = "x"', MANDATORY.replace('"required"', '"sometimes"', 1)],
)
def test_an_invalid_policy_is_refused(text: str) -> None:
    world = World()
    with pytest.raises(InvalidInputError):
        world.policies.load(text, ADMIN)
    assert list(world.uow.tables.policies) == ["default-2"]


def test_the_policy_in_force_is_the_latest_effective_one() -> None:
    world = World()
    world.policies.load(MANDATORY)  # effective 2026-06-01
    world.policies.load(policy_with("future-1").replace("2026-02-01", "2027-01-01"))
    at = world.policies.in_force
    assert at(datetime(2026, 3, 1, tzinfo=UTC)).version == "default-2"
    assert at(datetime(2026, 6, 1, tzinfo=UTC)).version == "noncitizens-mandatory-1"
    assert at().version == "noncitizens-mandatory-1"  # the clock: 2026-11-23
    assert at(datetime(2027, 1, 1, tzinfo=UTC)).version == "future-1"
    with pytest.raises(NotFoundError):
        at(datetime(2025, 12, 31, tzinfo=UTC))
    assert world.policies.get("default-2").version == "default-2"
    with pytest.raises(NotFoundError):
        world.policies.get("no-such-version")
    with pytest.raises(NotFoundError):
        shipped_policy_text("../pyproject.toml")


def test_a_load_that_fails_to_commit_leaves_nothing() -> None:
    world = World()
    world.uow.fail_commit_after(0)
    with pytest.raises(InjectedCommitError):
        world.policies.load(MANDATORY, ADMIN)
    assert list(world.uow.tables.policies) == ["default-2"]
    assert world.policies.in_force().version == "default-2"


def test_a_policy_loaded_by_another_process_comes_into_force() -> None:
    uow = FakeUnitOfWorkFactory()
    clock = FakeClock()
    server = PolicyService(uow, clock, AuditTrail(uow, clock, StaticKeyProvider()))
    server.ensure_default()
    assert server.in_force().version == "default-2"  # cached now
    cli, _ = service(uow)  # the CLI: another process on the same database
    cli.load(MANDATORY)
    clock.now += RECHECK_EVERY  # a running service looks again at least this often
    assert server.in_force().version == "noncitizens-mandatory-1"
