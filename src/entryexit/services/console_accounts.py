"""People's accounts for the console: argon2 password hashes, lock-out after repeated
failures, server-side sessions with an idle timeout and a CSRF token each.

The lock-out is per account *and client address*: five wrong passwords from one address lock
that address out of that account, not the account. A lock per account alone is a denial of
service anyone can mount (five guesses from anywhere and an officer cannot sign in for a
quarter of an hour). Failures from all addresses together still lock the account at a much
higher ceiling (NIST SP 800-63B's "no more than 100"), so a guesser with many addresses gets
a bounded number of tries."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from entryexit.domain.access import Principal, Role
from entryexit.domain.throttle import SourceShare, address_holder
from entryexit.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
)
from entryexit.services.audit import AuditTrail
from entryexit.services.ports import Clock, ConsoleSession, ConsoleUser, SignInFailures
from entryexit.services.unit_of_work import UnitOfWork, UnitOfWorkFactory, in_transaction

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD_LENGTH = 12
# When every hashing slot is taken a sign-in is told at once to try again (429) after this
# long: waiting would hold one of the worker threads the gates need.
HASH_RETRY_SECONDS = 1.0
# Sign-in attempts one client address may make in a minute (each costs a hash). Officers
# behind one NAT address share it: a wrong password locks at five anyway.
SIGN_INS_PER_ADDRESS_PER_MINUTE = 20
# Gate keys are machines at a lane; people who sign in have one of these roles.
PERSON_ROLES = frozenset({Role.OFFICER, Role.SUPERVISOR, Role.AUDITOR, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle_timeout: timedelta = timedelta(minutes=15)
    absolute_lifetime: timedelta = timedelta(hours=12)
    # From one client address, to one account.
    failures_before_lock: int = 5
    lock_duration: timedelta = timedelta(minutes=15)
    # From all addresses together, to one account (consecutive, reset by a success).
    failures_before_account_lock: int = 100


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session: who, and the token the browser must send back with every form."""

    principal: Principal
    csrf_token: str
    token_hash: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def source_key(source: str | None) -> str:
    """What is stored of a client address: its SHA-256 (the count needs only equality)."""
    return hashlib.sha256(f"console sign-in source\0{source or 'unknown'}".encode()).hexdigest()


def principal_of(user: ConsoleUser) -> Principal:
    return Principal(user.id, user.username, user.role)


def _locked(until: datetime | None, now: datetime) -> bool:
    return until is not None and until > now


class ConsoleAccounts:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        audit: AuditTrail,
        policy: SessionPolicy | None = None,
        hasher: PasswordHasher | None = None,
        max_concurrent_hashes: int = 2,
        sign_ins_per_address_per_minute: int = SIGN_INS_PER_ADDRESS_PER_MINUTE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._audit = audit
        self._policy = policy or SessionPolicy()
        self._hasher = hasher or PasswordHasher()
        # Each password hash holds the hasher's memory (argon2: 64 MiB) and a core: at most
        # this many at once, so a flood of sign-ins (unknown usernames need no account to
        # cost a hash) cannot take the memory, and none waits for a slot on a worker thread.
        self._hashing = threading.BoundedSemaphore(max_concurrent_hashes)
        # Before a slot: one attempt at a time per client address, and a few a minute, so a
        # flood from one address is turned away without taking the slots real officers need.
        self._per_source = SourceShare(sign_ins_per_address_per_minute, HASH_RETRY_SECONDS)
        self._monotonic = monotonic
        # Verifying against this keeps an unknown username as slow as a wrong password.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def create_user(
        self, username: str, password: str, role: Role, actor: Principal | None = None
    ) -> ConsoleUser:
        if not USERNAME_PATTERN.match(username):
            raise InvalidInputError(
                "a username is 3-64 characters of a-z, 0-9, '.', '_' or '-', starting with a"
                " letter or digit"
            )
        if role not in PERSON_ROLES:
            raise InvalidInputError(
                f"console users are {', '.join(sorted(r.value for r in PERSON_ROLES))};"
                " gates use API keys"
            )
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInputError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
        user_id = str(uuid.uuid4())
        password_hash = self._hasher.hash(password)

        def create(uow: UnitOfWork) -> ConsoleUser:
            uow.access.add_user(user_id, username, password_hash, role, self._clock())
            self._audit.record(
                uow,
                "console user create",
                "ok",
                actor,
                "console_user",
                user_id,
                {"role": role.value},
            )
            user = uow.access.get_user(user_id)
            assert user is not None
            return user

        return in_transaction(self._uow, create)

    def disable(self, username: str, actor: Principal | None = None) -> None:
        """Disable an account and end its sessions at once; audited. (Accounts are disabled,
        never deleted: the audit log names them.)"""

        def disable(uow: UnitOfWork) -> None:
            user = uow.access.find_user(username)
            if user is None or user.disabled:
                raise NotFoundError(f"no enabled console account named {username!r}")
            uow.access.disable_user(user.id, self._clock())
            self._audit.record(uow, "console user disable", "ok", actor, "console_user", user.id)

        in_transaction(self._uow, disable)

    def sign_in(
        self, username: str, password: str, source: str | None = None
    ) -> tuple[str, SignedIn]:
        """Return a new session's cookie token and its state, or raise
        :class:`AuthenticationError` with the same message for every kind of failure.
        ``source`` is the client's address (behind trusted proxies, the forwarded one); an
        IPv6 address counts as its /64."""
        now = self._clock()
        failure = AuthenticationError("wrong username or password, or the account is locked")
        # Per address, an IPv6 client per /64 (it rotates its /128 freely); the per-source
        # lockout of an account below counts the same way.
        source = None if source is None else address_holder(source)
        address = source or "unknown"
        wait = self._per_source.enter(address, self._monotonic())
        if wait > 0:
            raise RateLimitedError("too many sign-ins from this address; try again", wait)
        try:
            if not self._hashing.acquire(blocking=False):
                raise RateLimitedError("too many sign-ins at once; try again", HASH_RETRY_SECONDS)
            try:
                return self._sign_in(username, password, source, now, failure)
            finally:
                self._hashing.release()
        finally:
            self._per_source.leave(address)

    def _sign_in(
        self,
        username: str,
        password: str,
        source: str | None,
        now: datetime,
        failure: AuthenticationError,
    ) -> tuple[str, SignedIn]:
        with self._uow(read_only=True) as uow:
            user = uow.access.find_user(username)
        if user is None or user.disabled:
            self._verify(self._dummy_hash, password)
            self._audit.record_alone("console sign-in", "denied", None, "console_user", None)
            raise failure
        # The slow part (argon2) runs first, outside any transaction; what it means is decided
        # in one transaction on the account as it is then, so that concurrent attempts can
        # neither clear a lock-out nor slip past one.
        verified = self._verify(user.password_hash, password)
        rehashed = (
            self._hasher.hash(password)
            if verified and self._hasher.check_needs_rehash(user.password_hash)
            else None
        )
        token = secrets.token_urlsafe(32)
        record = ConsoleSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self._policy.absolute_lifetime,
        )
        signed_in = in_transaction(
            self._uow,
            lambda uow: self._decide_sign_in(
                uow, user.id, source_key(source), verified, rehashed, record
            ),
        )
        if signed_in is None:
            raise failure
        return token, signed_in

    def _decide_sign_in(
        self,
        uow: UnitOfWork,
        user_id: str,
        source: str,
        verified: bool,
        rehashed: str | None,
        record: ConsoleSession,
    ) -> SignedIn | None:
        now = record.created_at
        user = uow.access.get_user(user_id)
        if user is None or user.disabled:
            self._audit.record(uow, "console sign-in", "denied", None, "console_user", user_id)
            return None
        from_source = uow.access.sign_in_failures(user_id, source)
        if _locked(user.locked_until, now) or (
            from_source is not None and _locked(from_source.locked_until, now)
        ):
            self._audit.record(uow, "console sign-in", "locked", None, "console_user", user_id)
            return None
        if not verified:
            self._count_failure(uow, user, source, from_source, now)
            return None
        principal = principal_of(user)
        uow.access.record_sign_in(user_id, True, None, password_hash=rehashed)
        uow.access.clear_sign_in_failures(user_id, source)
        uow.access.add_session(record)
        self._audit.record(uow, "console sign-in", "ok", principal, "console_user", user_id)
        return SignedIn(principal, record.csrf_token, record.token_hash)

    def _count_failure(
        self,
        uow: UnitOfWork,
        user: ConsoleUser,
        source: str,
        from_source: SignInFailures | None,
        now: datetime,
    ) -> None:
        policy = self._policy
        # A count from an address goes stale once its lock (or a lock's worth of quiet) is
        # over; so does the account's, once its own lock has run out.
        stale = from_source is None or (
            from_source.locked_until is not None
            or now - from_source.last_failure_at > policy.lock_duration
        )
        source_attempts = (0 if stale or from_source is None else from_source.failed_attempts) + 1
        source_lock = (
            now + policy.lock_duration if source_attempts >= policy.failures_before_lock else None
        )
        uow.access.record_sign_in_failures(
            user.id, source, SignInFailures(source_attempts, now, source_lock)
        )
        account_attempts = (0 if user.locked_until is not None else user.failed_attempts) + 1
        account_lock = (
            now + policy.lock_duration
            if account_attempts >= policy.failures_before_account_lock
            else None
        )
        uow.access.record_sign_in(
            user.id, succeeded=False, locked_until=account_lock, failed_attempts=account_attempts
        )
        uow.access.forget_sign_in_failures(before=now - policy.lock_duration)
        if account_lock is not None:
            outcome = "denied, account locked"
        elif source_lock is not None:
            outcome = "denied, address locked"
        else:
            outcome = "denied"
        self._audit.record(uow, "console sign-in", outcome, None, "console_user", user.id)

    def session(self, token: str | None, touch: bool = True) -> SignedIn | None:
        """The live session for a cookie token, or None (unknown, idle too long, expired,
        or the account was disabled since). Touches the session (restarts its idle time)
        unless ``touch`` is false: a page's own polling is not the officer at the desk."""
        if not token:
            return None
        now = self._clock()
        token_hash = _token_hash(token)

        def check(uow: UnitOfWork) -> SignedIn | None:
            record = uow.access.get_session(token_hash)
            if record is None:
                return None
            if record.expires_at <= now or now - record.last_seen_at > self._policy.idle_timeout:
                uow.access.delete_session(token_hash)
                return None
            user = uow.access.get_user(record.user_id)
            if user is None or user.disabled:
                uow.access.delete_session(token_hash)
                return None
            if touch:
                uow.access.touch_session(token_hash, now)
            return SignedIn(principal_of(user), record.csrf_token, token_hash)

        return in_transaction(self._uow, check)

    def sign_out(self, signed_in: SignedIn) -> None:
        def leave(uow: UnitOfWork) -> None:
            uow.access.delete_session(signed_in.token_hash)
            self._audit.record(uow, "console sign-out", "ok", signed_in.principal, "console_user")

        in_transaction(self._uow, leave)

    @staticmethod
    def csrf_valid(signed_in: SignedIn, presented: str | None) -> bool:
        return presented is not None and secrets.compare_digest(signed_in.csrf_token, presented)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
