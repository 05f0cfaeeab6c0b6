"""People's accounts for the console: argon2 password hashes, lock-out after repeated
failures, server-side sessions with an idle timeout and a CSRF token each."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from entryexit.domain.access import Principal, Role
from entryexit.errors import AuthenticationError, InvalidInputError
from entryexit.services.audit import AuditTrail
from entryexit.services.ports import Clock, ConsoleSession, ConsoleUser
from entryexit.services.unit_of_work import UnitOfWork, UnitOfWorkFactory, in_transaction

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD_LENGTH = 12
# Gate keys are machines at a lane; people who sign in have one of these roles.
PERSON_ROLES = frozenset({Role.OFFICER, Role.SUPERVISOR, Role.AUDITOR, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle_timeout: timedelta = timedelta(minutes=15)
    absolute_lifetime: timedelta = timedelta(hours=12)
    failures_before_lock: int = 5
    lock_duration: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session: who, and the token the browser must send back with every form."""

    principal: Principal
    csrf_token: str
    token_hash: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def principal_of(user: ConsoleUser) -> Principal:
    return Principal(user.id, user.username, user.role)


class ConsoleAccounts:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        audit: AuditTrail,
        policy: SessionPolicy | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._audit = audit
        self._policy = policy or SessionPolicy()
        self._hasher = hasher or PasswordHasher()
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

    def sign_in(self, username: str, password: str) -> tuple[str, SignedIn]:
        """Return a new session's cookie token and its state, or raise
        :class:`AuthenticationError` with the same message for every kind of failure."""
        now = self._clock()
        failure = AuthenticationError("wrong username or password, or the account is locked")
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
            self._uow, lambda uow: self._decide_sign_in(uow, user.id, verified, rehashed, record)
        )
        if signed_in is None:
            raise failure
        return token, signed_in

    def _decide_sign_in(
        self,
        uow: UnitOfWork,
        user_id: str,
        verified: bool,
        rehashed: str | None,
        record: ConsoleSession,
    ) -> SignedIn | None:
        now = record.created_at
        user = uow.access.get_user(user_id)
        if user is None or user.disabled:
            self._audit.record(uow, "console sign-in", "denied", None, "console_user", user_id)
            return None
        locked = user.locked_until is not None and user.locked_until > now
        if locked:
            self._audit.record(uow, "console sign-in", "locked", None, "console_user", user_id)
            return None
        if not verified:
            # A lock-out that has run out starts the count afresh.
            expired_lock = user.locked_until is not None and user.locked_until <= now
            attempts = (0 if expired_lock else user.failed_attempts) + 1
            lock_until = (
                now + self._policy.lock_duration
                if attempts >= self._policy.failures_before_lock
                else None
            )
            uow.access.record_sign_in(
                user_id, succeeded=False, locked_until=lock_until, failed_attempts=attempts
            )
            outcome = "denied" if lock_until is None else "denied, account locked"
            self._audit.record(uow, "console sign-in", outcome, None, "console_user", user_id)
            return None
        principal = principal_of(user)
        uow.access.record_sign_in(user_id, True, None, password_hash=rehashed)
        uow.access.add_session(record)
        self._audit.record(uow, "console sign-in", "ok", principal, "console_user", user_id)
        return SignedIn(principal, record.csrf_token, record.token_hash)

    def session(self, token: str | None) -> SignedIn | None:
        """The live session for a cookie token, or None (unknown, idle too long, expired,
        or the account was disabled since). Touches the session."""
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
