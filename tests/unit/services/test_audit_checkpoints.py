"""Audit checkpoints as a use case: what the service signs, when it refuses to, restores,
and the repair that checks and writes in one transaction (over the in-memory store)."""

from __future__ import annotations

import pytest

from entryexit.adapters.crypto.checkpoints import Ed25519CheckpointSigner, new_checkpoint_seed
from entryexit.domain.audit import RESTORE_ACTION, sign_head
from entryexit.domain.audit_checkpoints import Checkpoint, CheckpointLine
from entryexit.errors import AuditLogUntrustedError, ConfigurationError, InvalidInputError
from entryexit.services.audit import AuditCheckpoints
from tests.fake_storage import TEST_AUDIT_KEY, AuditHeadRow
from tests.unit.services.world import ADMIN, OFFICER, World


class MemoryStore:
    def __init__(self) -> None:
        self.checkpoints: list[Checkpoint] = []

    def append(self, checkpoint: Checkpoint) -> str:
        self.checkpoints.append(checkpoint)
        return f"checkpoint {checkpoint.sequence}"

    def read(self) -> list[CheckpointLine]:
        return [CheckpointLine(i, c) for i, c in enumerate(self.checkpoints, start=1)]


@pytest.fixture
def world() -> World:
    world = World()
    for i in range(3):
        world.audit.record_alone("thing", "ok", OFFICER, "flight", f"f{i}")
    return world


def checkpoints(world: World) -> tuple[AuditCheckpoints, MemoryStore]:
    store = MemoryStore()
    signer = Ed25519CheckpointSigner(new_checkpoint_seed)
    return AuditCheckpoints(world.audit, world.uow, world.clock, signer, store, 3600), store


def cut_back(world: World, keep: int) -> None:
    """A rollback by someone holding the audit MAC key (the head re-signed)."""
    tables = world.uow.tables
    del tables.audit_events[keep:]
    last = tables.audit_events[-1]
    tables.audit_head = AuditHeadRow(
        last.sequence, last.hash, sign_head(TEST_AUDIT_KEY, last.sequence, last.hash)
    )


def test_a_checkpoint_signs_the_last_event_and_verifies(world: World) -> None:
    service, store = checkpoints(world)
    checkpoint = service.write()
    assert checkpoint is not None
    last = world.uow.tables.audit_events[-1]
    assert (checkpoint.sequence, checkpoint.event_hash) == (last.sequence, last.hash)
    assert service.write(only_if_moved=True) is None  # nothing new: nothing written
    assert len(store.checkpoints) == 1
    assert service.verify().ok


def test_a_rollback_the_chain_cannot_see_fails_verification(world: World) -> None:
    service, _ = checkpoints(world)
    service.write()
    cut_back(world, 2)
    result = service.verify()
    assert result.chain.ok
    assert not result.ok
    assert result.checkpoints is not None
    assert "rollback" in result.checkpoints.problems[0]


def test_no_checkpoint_vouches_for_a_log_the_service_refuses_to_extend(world: World) -> None:
    service, store = checkpoints(world)
    world.uow.tables.audit_events.pop()  # cut without the MAC key: the head no longer fits
    assert service.write() is None
    assert store.checkpoints == []


def test_an_acknowledged_restore_is_signed_recorded_and_checkpointed(world: World) -> None:
    service, store = checkpoints(world)
    service.write()
    world.audit.record_alone("thing", "ok", OFFICER)
    service.write()
    cut_back(world, 3)  # restored from a backup taken at event 3
    assert not service.verify().ok
    event = service.acknowledge_restore("  disk\nfailure ", ADMIN)
    assert (event.sequence, event.entry.action) == (4, RESTORE_ACTION)
    assert (event.entry.details["restored_sequence"], event.entry.details["reason"]) == (
        3,
        "disk failure",
    )
    assert event.entry.actor_key_id == ADMIN.key_id
    assert store.checkpoints[-1].restores == (4,)  # the checkpoint after it acknowledges it
    result = service.verify()
    assert result.ok
    assert result.checkpoints is not None
    assert [r.restored_sequence for r in result.checkpoints.restores] == [3]


def test_a_restore_needs_a_reason_and_a_log_that_verifies(world: World) -> None:
    service, _ = checkpoints(world)
    for reason in ("", "   ", "x" * 201):
        with pytest.raises(InvalidInputError):
            service.acknowledge_restore(reason)
    world.uow.tables.audit_events.pop()
    with pytest.raises(AuditLogUntrustedError):
        service.acknowledge_restore("restored")
    assert RESTORE_ACTION not in world.actions()


def test_the_schedule_writes_at_start_and_at_stop_when_the_log_moved(world: World) -> None:
    service, store = checkpoints(world)
    service.start()
    assert len(store.checkpoints) == 1
    world.audit.record_alone("thing", "ok", OFFICER)
    service.stop()
    assert len(store.checkpoints) == 2
    assert store.checkpoints[-1].sequence == world.uow.tables.audit_events[-1].sequence


def test_repair_checks_and_writes_in_one_transaction(world: World) -> None:
    world.uow.tables.audit_events.pop()
    commits = world.uow.commits
    found = world.audit.repair(ADMIN)
    assert world.uow.commits == commits + 1
    assert (found.ok, found.problem_count) == (False, 1)  # only the head did not fit
    repair = world.uow.tables.audit_events[-1]
    assert "names sequence" in str(repair.entry.details["head_problem"])
    assert [r.sequence for r in world.audit.verify().repairs] == [repair.sequence]


def test_the_service_does_not_start_without_a_checkpoint_key(world: World) -> None:
    def missing() -> bytes:
        raise ConfigurationError("ENTRYEXIT_AUDIT_CHECKPOINT_KEY must be 32 bytes")

    store = MemoryStore()
    service = AuditCheckpoints(
        world.audit, world.uow, world.clock, Ed25519CheckpointSigner(missing), store, 3600
    )
    with pytest.raises(ConfigurationError):
        service.start()
    assert store.checkpoints == []


def test_the_running_service_says_at_once_when_the_log_got_shorter(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    service, _ = checkpoints(world)
    service.write()
    cut_back(world, 2)
    with caplog.at_level("ERROR", logger="entryexit.services.audit"):
        service.write()
    assert any("audit log rolled back" in r.getMessage() for r in caplog.records)
