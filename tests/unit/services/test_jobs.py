"""Fleet jobs and pushed invalidation, over in-memory ports: when a job is due, how runs are
recorded, and that a cache trusts pushed news only while the news channel is up."""

from __future__ import annotations

from datetime import timedelta

import pytest

from entryexit.services.audit import AuditTrail
from entryexit.services.jobs import FleetJobs, LocalJobLeases
from entryexit.services.policies import PolicyService, shipped_policy_text
from tests.fake_storage import FakeUnitOfWorkFactory
from tests.fakes import FakeClock, StaticKeyProvider


def test_a_job_runs_again_only_an_interval_after_its_last_start() -> None:
    clock = FakeClock()  # each reading is one second later
    jobs = FleetJobs(LocalJobLeases(), clock)
    interval = timedelta(seconds=10)
    ran = [jobs.run_if_due("purge", interval, lambda: {"n": 1}) for _ in range(8)]
    assert ran[0] == {"n": 1}
    assert ran[1:] == [None] * 7
    clock.now += interval
    assert jobs.run_if_due("purge", interval, lambda: {"n": 2}) == {"n": 2}
    (run,) = jobs.last_runs()
    assert (run.job, run.runs, run.outcome, run.counts) == ("purge", 2, "ok", {"n": 2})


def test_a_job_held_elsewhere_does_not_run() -> None:
    leases = LocalJobLeases()
    jobs = FleetJobs(leases, FakeClock())
    held = leases.acquire("purge")
    assert held is not None
    assert jobs.run_if_due("purge", timedelta(0), lambda: {"n": 1}) is None
    held.release()
    assert jobs.run_if_due("purge", timedelta(0), lambda: {"n": 1}) == {"n": 1}


def test_a_failed_run_is_recorded_released_and_keeps_the_last_success() -> None:
    jobs = FleetJobs(LocalJobLeases(), FakeClock())
    jobs.run_if_due("purge", timedelta(0), lambda: {"n": 1})
    (succeeded,) = jobs.last_runs()

    def failing() -> dict[str, int]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        jobs.run_if_due("purge", timedelta(0), failing)
    (failed,) = jobs.last_runs()
    assert failed.outcome == "failed"
    assert failed.success_at == succeeded.success_at
    assert jobs.run_if_due("purge", timedelta(0), lambda: {"n": 3}) == {"n": 3}


class SwitchableFeed:
    """A news channel whose token the test moves, or takes down (None)."""

    def __init__(self) -> None:
        self.value: object | None = 0

    def token(self, name: str) -> object | None:
        return self.value

    def stop(self) -> None:
        self.value = None


def test_policies_skip_the_read_while_news_is_pushed_and_nothing_changed() -> None:
    uow = FakeUnitOfWorkFactory()
    clock = FakeClock()
    server = PolicyService(uow, clock, AuditTrail(uow, clock, StaticKeyProvider()))
    server.ensure_default()
    feed = SwitchableFeed()
    server.follow(feed)
    assert server.in_force().version == "default-2"
    opened = len(uow.opened)  # every unit of work the factory has made
    for _ in range(5):
        clock.now += timedelta(seconds=10)  # well past the SQLite recheck
        assert server.in_force().version == "default-2"
    assert len(uow.opened) == opened  # no read at all

    other = PolicyService(uow, clock, AuditTrail(uow, clock, StaticKeyProvider()))
    other.load(shipped_policy_text("noncitizens-mandatory.toml"))
    # Without news the copy is trusted (the test holds the token still)...
    assert server.in_force().version == "default-2"
    feed.value = 1  # ...the news arrives
    assert server.in_force().version == "noncitizens-mandatory-1"


def test_policies_read_their_generation_while_the_news_channel_is_down() -> None:
    uow = FakeUnitOfWorkFactory()
    clock = FakeClock()
    server = PolicyService(uow, clock, AuditTrail(uow, clock, StaticKeyProvider()))
    server.ensure_default()
    feed = SwitchableFeed()
    server.follow(feed)
    assert server.in_force().version == "default-2"
    feed.value = None  # disconnected: news may be missed
    other = PolicyService(uow, clock, AuditTrail(uow, clock, StaticKeyProvider()))
    other.load(shipped_policy_text("noncitizens-mandatory.toml"))
    clock.now += timedelta(seconds=1)
    assert server.in_force().version == "noncitizens-mandatory-1"
