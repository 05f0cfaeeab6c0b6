"""Console accounts: who may have one, signing in (one message for every failure, lock-out
after repeated failures), sessions with an idle timeout, signing out, the CSRF check."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Literal

import pytest
from argon2 import PasswordHasher

from entryexit.domain.access import Role
from entryexit.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    RateLimitedError,
)
from entryexit.services.console_accounts import (
    SIGN_INS_PER_ADDRESS_PER_MINUTE,
    ConsoleAccounts,
    SessionPolicy,
    SignedIn,
    source_key,
)
from entryexit.services.ports import SignInFailures
from tests.unit.services.world import ADMIN, FAST_HASHER, World

PASSWORD = "correct horse battery"
MESSAGE = "wrong username or password, or the account is locked"
POLICY = SessionPolicy(
    idle_timeout=timedelta(minutes=15),
    absolute_lifetime=timedelta(hours=12),
    failures_before_lock=3,
    lock_duration=timedelta(minutes=15),
)


def world_with_user(policy: SessionPolicy = POLICY) -> tuple[World, str]:
    world = World(session_policy=policy)
    user = world.accounts.create_user("ana.officer", PASSWORD, Role.OFFICER, ADMIN)
    return world, user.id


def refused(
    accounts: ConsoleAccounts, username: str, password: str, source: str | None = None
) -> str:
    with pytest.raises(AuthenticationError) as caught:
        accounts.sign_in(username, password, source)
    return caught.value.message


def test_a_user_is_created_with_a_hashed_password_and_an_audit_event() -> None:
    world, user_id = world_with_user()
    row = world.uow.tables.users[user_id]
    assert (row.username, row.role) == ("ana.officer", Role.OFFICER)
    assert row.password_hash.startswith("$argon2")
    assert PASSWORD not in row.password_hash
    event = world.uow.tables.audit_events[-1].entry
    assert (event.action, event.actor_key_id, event.resource_id) == (
        "console user create",
        ADMIN.key_id,
        user_id,
    )
    assert event.details == {"role": "officer"}
    with pytest.raises(ConflictError):
        world.accounts.create_user("ana.officer", PASSWORD, Role.AUDITOR)
    assert len(world.uow.tables.users) == 1


@pytest.mark.parametrize(
    ("username", "password", "role"),
    [
        ("ab", PASSWORD, Role.OFFICER),  # too short
        ("Ana", PASSWORD, Role.OFFICER),  # upper case
        (".ana", PASSWORD, Role.OFFICER),  # starts with punctuation
        ("a" * 65, PASSWORD, Role.OFFICER),
        ("ana", "short", Role.OFFICER),
        ("ana", "x" * 11, Role.OFFICER),
        ("lane4", PASSWORD, Role.GATE),  # gates use API keys
        ("keeper", PASSWORD, Role.WATCHLIST_MANAGER),
    ],
)
def test_invalid_users_are_refused(username: str, password: str, role: Role) -> None:
    world = World()
    with pytest.raises(InvalidInputError):
        world.accounts.create_user(username, password, role)
    assert world.uow.tables.users == {}


def test_signing_in_opens_a_session_with_its_own_csrf_token() -> None:
    world, user_id = world_with_user()
    token, signed_in = world.accounts.sign_in("ana.officer", PASSWORD)
    assert (signed_in.principal.key_id, signed_in.principal.role) == (user_id, Role.OFFICER)
    assert token not in world.uow.tables.sessions  # only its hash is stored
    assert set(world.uow.tables.sessions) == {signed_in.token_hash}
    assert world.accounts.session(token) == signed_in
    assert world.uow.tables.audit_events[-1].entry.outcome == "ok"
    assert ConsoleAccounts.csrf_valid(signed_in, signed_in.csrf_token)
    for presented in (None, "", signed_in.csrf_token + "x", token):
        assert not ConsoleAccounts.csrf_valid(signed_in, presented)
    _, other = world.accounts.sign_in("ana.officer", PASSWORD)
    assert other.csrf_token != signed_in.csrf_token


def test_every_failure_has_the_same_message() -> None:
    world, user_id = world_with_user()
    assert refused(world.accounts, "nobody", PASSWORD) == MESSAGE
    assert refused(world.accounts, "ana.officer", "wrong password!") == MESSAGE
    assert world.uow.tables.users[user_id].failed_attempts == 1
    assert world.uow.tables.sessions == {}
    outcomes = [e.entry.outcome for e in world.uow.tables.audit_events[-2:]]
    assert outcomes == ["denied", "denied"]


ATTACKER = "203.0.113.9"
OFFICE = "10.20.30.40"


def locks_from(world: World, user_id: str, source: str) -> SignInFailures | None:
    return world.uow.tables.sign_in_failures.get((user_id, source_key(source)))


def test_repeated_failures_lock_that_address_out_until_the_lock_ends() -> None:
    world, user_id = world_with_user()
    for _ in range(POLICY.failures_before_lock - 1):
        refused(world.accounts, "ana.officer", "wrong password!", ATTACKER)
    assert world.uow.tables.audit_events[-1].entry.outcome == "denied"
    refused(world.accounts, "ana.officer", "wrong password!", ATTACKER)
    locked = locks_from(world, user_id, ATTACKER)
    assert locked is not None
    assert locked.locked_until is not None
    assert world.uow.tables.audit_events[-1].entry.outcome == "denied, address locked"
    # Locked: even the right password is refused from there, with the same message.
    assert refused(world.accounts, "ana.officer", PASSWORD, ATTACKER) == MESSAGE
    assert world.uow.tables.audit_events[-1].entry.outcome == "locked"
    assert world.uow.tables.sessions == {}
    world.clock.now = locked.locked_until + timedelta(seconds=1)
    _, signed_in = world.accounts.sign_in("ana.officer", PASSWORD, ATTACKER)
    assert signed_in.principal.key_id == user_id
    row = world.uow.tables.users[user_id]
    assert (row.failed_attempts, row.locked_until) == (0, None)
    assert locks_from(world, user_id, ATTACKER) is None


def test_a_strangers_guesses_do_not_lock_the_officer_out() -> None:
    """The denial of service a per-account lock-out allows: anyone who knows a username
    types wrong passwords until the account locks, and the officer cannot sign in."""
    world, user_id = world_with_user()
    for _ in range(POLICY.failures_before_lock * 3):
        refused(world.accounts, "ana.officer", "wrong password!", ATTACKER)
    _, signed_in = world.accounts.sign_in("ana.officer", PASSWORD, OFFICE)
    assert signed_in.principal.key_id == user_id
    # ... and the stranger's address stays locked after the officer's success.
    assert refused(world.accounts, "ana.officer", PASSWORD, ATTACKER) == MESSAGE


def test_failures_from_many_addresses_lock_the_account_at_a_ceiling() -> None:
    policy = SessionPolicy(failures_before_lock=3, failures_before_account_lock=6)
    world, user_id = world_with_user(policy)
    for address in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        for _ in range(2):  # under each address's limit
            refused(world.accounts, "ana.officer", "wrong password!", address)
    row = world.uow.tables.users[user_id]
    assert row.locked_until is not None
    assert world.uow.tables.audit_events[-1].entry.outcome == "denied, account locked"
    assert refused(world.accounts, "ana.officer", PASSWORD, OFFICE) == MESSAGE
    world.clock.now = row.locked_until + timedelta(seconds=1)
    world.accounts.sign_in("ana.officer", PASSWORD, OFFICE)
    assert world.uow.tables.users[user_id].failed_attempts == 0


def test_failure_counts_of_quiet_addresses_are_forgotten() -> None:
    world, user_id = world_with_user()
    refused(world.accounts, "ana.officer", "wrong password!", ATTACKER)
    world.advance(minutes=16)
    refused(world.accounts, "ana.officer", "wrong password!", OFFICE)
    assert locks_from(world, user_id, ATTACKER) is None  # a count gone stale is deleted
    failures = locks_from(world, user_id, OFFICE)
    assert failures is not None
    assert failures.failed_attempts == 1


def test_a_session_ends_after_the_idle_timeout_and_lives_while_used() -> None:
    world, _ = world_with_user()
    token, signed_in = world.accounts.sign_in("ana.officer", PASSWORD)
    for _ in range(3):  # used every 10 minutes: stays alive past the idle timeout in total
        world.advance(minutes=10)
        assert world.accounts.session(token) == signed_in
    world.advance(minutes=16)
    assert world.accounts.session(token) is None
    assert world.uow.tables.sessions == {}  # deleted, not only refused
    assert world.accounts.session(None) is None
    assert world.accounts.session("") is None
    assert world.accounts.session("not-a-token") is None


def test_a_session_ends_at_its_absolute_lifetime() -> None:
    world, _ = world_with_user()
    token, _ = world.accounts.sign_in("ana.officer", PASSWORD)
    signed_in_at = world.clock.now
    while world.accounts.session(token) is not None:  # busy all day, never idle
        world.advance(minutes=10)
        assert world.clock.now - signed_in_at < POLICY.absolute_lifetime + timedelta(minutes=11)
    assert world.clock.now - signed_in_at >= POLICY.absolute_lifetime
    assert world.uow.tables.sessions == {}


def test_a_disabled_account_loses_its_session_and_cannot_sign_in() -> None:
    world, user_id = world_with_user()
    token, _ = world.accounts.sign_in("ana.officer", PASSWORD)
    world.uow.tables.users[user_id].disabled_at = world.clock.now
    assert world.accounts.session(token) is None
    assert refused(world.accounts, "ana.officer", PASSWORD) == MESSAGE


def test_signing_out_ends_the_session() -> None:
    world, _ = world_with_user()
    token, signed_in = world.accounts.sign_in("ana.officer", PASSWORD)
    world.accounts.sign_out(signed_in)
    assert world.accounts.session(token) is None
    event = world.uow.tables.audit_events[-1].entry
    assert (event.action, event.actor_key_id) == ("console sign-out", signed_in.principal.key_id)


class _InterleavingHasher(PasswordHasher):
    """Runs ``during`` once, in the middle of the next password verification: another
    request's sign-in that completes while this one is hashing (argon2 takes ~0.5 s)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.during: Callable[[], object] | None = None

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        during, self.during = self.during, None
        if during is not None:
            during()
        return super().verify(hash, password)


def another_process(world: World, policy: SessionPolicy) -> ConsoleAccounts:
    """The accounts service of another server process on the same database (one process
    turns away a second sign-in from an address while the first is hashing)."""
    return ConsoleAccounts(world.uow, world.clock, world.audit, policy, hasher=FAST_HASHER)


def test_a_concurrent_failed_sign_in_does_not_lift_a_lock() -> None:
    hasher = _InterleavingHasher()
    policy = SessionPolicy(failures_before_lock=2)
    world = World(session_policy=policy, hasher=hasher)
    user = world.accounts.create_user("ana.officer", PASSWORD, Role.OFFICER)
    other = another_process(world, policy)

    def two_other_failures() -> None:
        refused(other, "ana.officer", "guess one")
        refused(other, "ana.officer", "guess two")
        assert locks_from(world, user.id, ATTACKER) is None  # another address
        assert (locked := locks_from(world, user.id, "unknown")) is not None
        assert locked.locked_until is not None  # locked now

    hasher.during = two_other_failures
    refused(world.accounts, "ana.officer", "guess three")  # began before the lock
    failures = locks_from(world, user.id, "unknown")
    # Decided on the account as it is once the password is checked: locked, so refused as
    # locked (not counted again), and the lock stands.
    assert failures is not None
    assert failures.failed_attempts == 2
    assert failures.locked_until is not None


def test_a_sign_in_that_overlaps_the_locking_failure_is_refused() -> None:
    hasher = _InterleavingHasher()
    policy = SessionPolicy(failures_before_lock=1)
    world = World(session_policy=policy, hasher=hasher)
    user = world.accounts.create_user("ana.officer", PASSWORD, Role.OFFICER)
    other = another_process(world, policy)
    hasher.during = lambda: refused(other, "ana.officer", "a wrong guess")
    with pytest.raises(AuthenticationError):
        world.accounts.sign_in("ana.officer", PASSWORD)
    failures = locks_from(world, user.id, "unknown")
    assert failures is not None
    assert failures.locked_until is not None


def test_the_session_of_a_signed_in_user_names_the_user() -> None:
    world, user_id = world_with_user()
    token, _ = world.accounts.sign_in("ana.officer", PASSWORD)
    found = world.accounts.session(token)
    assert isinstance(found, SignedIn)
    assert found.principal.name == "ana.officer"
    assert found.principal.key_id == user_id


class _HeldHasher(PasswordHasher):
    """Holds every verification (of ``held``, if given) until released, counting how many run
    at once."""

    def __init__(self, held: str | None = None) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.release = threading.Event()
        self.running = 0
        self.most = 0
        self.calls = 0
        self.held = held
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        if self.held is not None and password != self.held:
            with self._lock:
                self.calls += 1
            return super().verify(hash, password)
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.release.wait(timeout=10)
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.running -= 1


def test_a_flood_of_sign_ins_hashes_two_at_a_time_and_turns_the_rest_away() -> None:
    # Unknown usernames need no account to cost a hash (64 MiB and a core each): twelve at
    # once took the server from 0.6 to 1.4 GB. The rest are turned away at once (429), not
    # left waiting on worker threads.
    hasher = _HeldHasher()
    world = World(hasher=hasher)
    outcomes: list[str] = []

    def attempt(name: str, source: str) -> None:
        try:
            world.accounts.sign_in(name, "guess", source)
        except RateLimitedError:
            outcomes.append("busy")
        except AuthenticationError:
            outcomes.append("refused")

    # From six addresses (one address gets one hash at a time: the test below).
    threads = [
        threading.Thread(target=attempt, args=(f"nobody{i}", f"198.51.100.{i}")) for i in range(6)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while len(outcomes) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert outcomes == ["busy"] * 4
    hasher.release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(outcomes) == ["busy"] * 4 + ["refused"] * 2
    assert hasher.most == 2


def test_a_flood_from_one_address_leaves_the_hashing_slots_to_an_officer_elsewhere() -> None:
    # The attacker's guesses are held in the hasher (a slow argon2 under load); from one
    # address only one of them takes a slot, the rest are turned away without hashing, and
    # the officer at another address signs in at once.
    hasher = _HeldHasher(held="guess")
    world = World(hasher=hasher)
    world.accounts.create_user("ana.officer", PASSWORD, Role.OFFICER, ADMIN)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            world.accounts.sign_in(f"nobody{i}", "guess", "203.0.113.66")
        except RateLimitedError:
            outcomes.append("busy")
        except AuthenticationError:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while len(outcomes) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert outcomes == ["busy"] * 5
        _, signed_in = world.accounts.sign_in("ana.officer", PASSWORD, "192.0.2.10")
        assert signed_in.principal.name == "ana.officer"
    finally:
        hasher.release.set()
        for thread in threads:
            thread.join(timeout=10)
    assert hasher.most == 1


def test_an_address_over_its_attempts_a_minute_is_turned_away_without_a_hash() -> None:
    hasher = _HeldHasher(held="never sent")
    now = [1000.0]
    world = World(hasher=hasher)
    accounts = ConsoleAccounts(
        world.uow, world.clock, world.audit, hasher=hasher, monotonic=lambda: now[0]
    )
    accounts.create_user("ana.officer", PASSWORD, Role.OFFICER, ADMIN)
    allowed = SIGN_INS_PER_ADDRESS_PER_MINUTE
    for i in range(allowed):
        refused(accounts, f"nobody{i}", "guess", "203.0.113.66")
    calls = hasher.calls
    with pytest.raises(RateLimitedError) as caught:
        accounts.sign_in("nobody", "guess", "203.0.113.66")
    assert caught.value.retry_after == pytest.approx(60)
    assert hasher.calls == calls  # turned away before the hash
    accounts.sign_in("ana.officer", PASSWORD, "192.0.2.10")  # another address: in at once
    now[0] += 61
    refused(accounts, "nobody", "guess", "203.0.113.66")  # a minute later: counted afresh


def test_an_ipv6_client_counts_per_64_however_it_rotates_its_address() -> None:
    """Review L4: the bound was per exact address, and an IPv6 client picks any of its /64's
    2^64 addresses: a new /128 per guess was never bounded."""
    hasher = _HeldHasher(held="never sent")
    now = [1000.0]
    world = World(hasher=hasher)
    accounts = ConsoleAccounts(
        world.uow, world.clock, world.audit, hasher=hasher, monotonic=lambda: now[0]
    )
    accounts.create_user("ana.officer", PASSWORD, Role.OFFICER, ADMIN)
    for i in range(SIGN_INS_PER_ADDRESS_PER_MINUTE):
        refused(accounts, f"nobody{i}", "guess", f"2001:db8:5:6::{i + 1:x}")
    calls = hasher.calls
    with pytest.raises(RateLimitedError):
        accounts.sign_in("nobody", "guess", "2001:db8:5:6:ffff::1")  # same /64, new address
    assert hasher.calls == calls
    accounts.sign_in("ana.officer", PASSWORD, "2001:db8:5:7::1")  # the next /64: in at once
