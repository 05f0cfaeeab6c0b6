"""Machines' API keys, people's console accounts, and their server-side sessions.

Every row that grants access carries a MAC (``Sealer.row_mac``, keyed outside the database)
over what it grants: a key's role, carrier, secret hash and revocation; an account's name,
password hash, role and disabling; a session's account and lifetime. A row whose MAC does not
verify is treated as absent (and logged, without personal data): a database writer without
the keys cannot mint an admin key, promote a gate key or plant a session.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from entryexit.adapters.storage.repositories import core
from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import (
    ApiKeyRow,
    ConsoleSessionRow,
    ConsoleSignInFailureRow,
    ConsoleUserRow,
)
from entryexit.domain.access import Principal, Role, StoredApiKey
from entryexit.errors import ConflictError
from entryexit.services.ports import ConsoleSession, ConsoleUser, SignInFailures

logger = logging.getLogger(__name__)

_API_KEYS = cast(Table, ApiKeyRow.__table__)
# Read by every request with a key.
_API_KEY = select(*_API_KEYS.c).where(_API_KEYS.c.prefix == bindparam("prefix"))
_NEWEST_API_KEYS = (
    select(*_API_KEYS.c).order_by(_API_KEYS.c.created_at.desc()).limit(bindparam("limit"))
)


def api_key_mac(sealer: Sealer, row: ApiKeyRow | Row[Any]) -> str:
    """The row's MAC (an entity, or a Core row of the api_keys table's columns)."""
    return sealer.row_mac(
        "api_keys",
        row.id,
        row.name,
        row.role,
        row.prefix,
        row.secret_hash,
        row.carrier,
        row.revoked_at,
    )


def user_mac(sealer: Sealer, row: ConsoleUserRow) -> str:
    return sealer.row_mac(
        "console_users", row.id, row.username, row.password_hash, row.role, row.disabled_at
    )


def session_mac(sealer: Sealer, row: ConsoleSessionRow) -> str:
    return sealer.row_mac(
        "console_sessions", row.token_hash, row.user_id, row.created_at, row.expires_at
    )


def _refused(kind: str, row_id: str) -> None:
    logger.error("a %s row fails its integrity check and is refused (id %s)", kind, row_id)


def _user(row: ConsoleUserRow) -> ConsoleUser:
    return ConsoleUser(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash,
        role=Role(row.role),
        failed_attempts=row.failed_attempts,
        locked_until=row.locked_until,
        disabled=row.disabled_at is not None,
    )


class SqlAccessRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def count_api_keys(self) -> int:
        return int(self._session.scalar(select(func.count()).select_from(ApiKeyRow)) or 0)

    def add_api_key(self, key: StoredApiKey) -> None:
        row = ApiKeyRow(
            id=key.principal.key_id,
            name=key.principal.name,
            role=key.principal.role.value,
            prefix=key.prefix,
            secret_hash=key.secret_hash,
            carrier=key.principal.carrier,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )
        row.mac = api_key_mac(self._sealer, row)
        self._session.add(row)

    def find_api_key(self, prefix: str) -> StoredApiKey | None:
        row = core.run(self._session, _API_KEY, {"prefix": prefix}).first()
        return None if row is None else self._stored_key(row)

    def api_keys(self, limit: int) -> list[StoredApiKey]:
        rows = core.run(self._session, _NEWEST_API_KEYS, {"limit": limit})
        return [key for row in rows if (key := self._stored_key(row)) is not None]

    def _stored_key(self, row: Row[Any]) -> StoredApiKey | None:
        if not self._sealer.mac_matches(row.mac, api_key_mac(self._sealer, row)):
            _refused("api_keys", row.id)
            return None
        return StoredApiKey(
            principal=Principal(row.id, row.name, Role(row.role), row.carrier),
            prefix=row.prefix,
            secret_hash=row.secret_hash,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )

    def add_user(
        self,
        user_id: str,
        username: str,
        password_hash: str,
        role: Role,
        now: datetime,
    ) -> None:
        row = ConsoleUserRow(
            id=user_id,
            username=username,
            password_hash=password_hash,
            role=role.value,
            created_at=now,
            failed_attempts=0,
        )
        row.mac = user_mac(self._sealer, row)
        try:
            with self._session.begin_nested():
                self._session.add(row)
        except IntegrityError:
            raise ConflictError(f"a console user named {username!r} exists already") from None

    def find_user(self, username: str) -> ConsoleUser | None:
        session = self._session
        row = session.scalar(select(ConsoleUserRow).where(ConsoleUserRow.username == username))
        return self._verified_user(row)

    def get_user(self, user_id: str) -> ConsoleUser | None:
        return self._verified_user(self._session.get(ConsoleUserRow, user_id))

    def _verified_user(self, row: ConsoleUserRow | None) -> ConsoleUser | None:
        if row is None:
            return None
        if not self._sealer.mac_matches(row.mac, user_mac(self._sealer, row)):
            _refused("console_users", row.id)
            return None
        return _user(row)

    def disable_user(self, user_id: str, now: datetime) -> None:
        row = self._session.get(ConsoleUserRow, user_id)
        if row is None:
            return
        row.disabled_at = now
        row.mac = user_mac(self._sealer, row)
        self._session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.user_id == user_id))
        self._session.flush()

    def revoke_api_key(self, key_id: str, now: datetime) -> bool:
        row = self._session.get(ApiKeyRow, key_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = now
        row.mac = api_key_mac(self._sealer, row)
        self._session.flush()
        return True

    def record_sign_in(
        self,
        user_id: str,
        succeeded: bool,
        locked_until: datetime | None,
        password_hash: str | None = None,
        failed_attempts: int | None = None,
    ) -> None:
        """Reset the failure count on success, else set it (or count one more) and maybe
        lock."""
        values: dict[str, object] = {"locked_until": locked_until}
        if succeeded:
            values["failed_attempts"] = 0
        elif failed_attempts is not None:
            values["failed_attempts"] = failed_attempts
        else:
            values["failed_attempts"] = ConsoleUserRow.failed_attempts + 1
        session = self._session
        session.execute(update(ConsoleUserRow).where(ConsoleUserRow.id == user_id).values(**values))
        if password_hash is not None:
            row = session.get(ConsoleUserRow, user_id)
            if row is not None:
                row.password_hash = password_hash
                row.mac = user_mac(self._sealer, row)
                session.flush()

    def sign_in_failures(self, user_id: str, source_key: str) -> SignInFailures | None:
        row = self._session.get(ConsoleSignInFailureRow, (user_id, source_key))
        if row is None:
            return None
        return SignInFailures(row.failed_attempts, row.last_failure_at, row.locked_until)

    def record_sign_in_failures(
        self, user_id: str, source_key: str, failures: SignInFailures
    ) -> None:
        row = self._session.get(ConsoleSignInFailureRow, (user_id, source_key))
        if row is None:
            row = ConsoleSignInFailureRow(user_id=user_id, source_key=source_key)
            self._session.add(row)
        row.failed_attempts = failures.failed_attempts
        row.last_failure_at = failures.last_failure_at
        row.locked_until = failures.locked_until
        self._session.flush()

    def clear_sign_in_failures(self, user_id: str, source_key: str) -> None:
        self._session.execute(
            delete(ConsoleSignInFailureRow).where(
                ConsoleSignInFailureRow.user_id == user_id,
                ConsoleSignInFailureRow.source_key == source_key,
            )
        )

    def forget_sign_in_failures(self, before: datetime) -> int:
        result = self._session.execute(
            delete(ConsoleSignInFailureRow).where(
                ConsoleSignInFailureRow.last_failure_at < before,
                (ConsoleSignInFailureRow.locked_until.is_(None))
                | (ConsoleSignInFailureRow.locked_until < before),
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def add_session(self, record: ConsoleSession) -> None:
        session = self._session
        row = ConsoleSessionRow(
            token_hash=record.token_hash,
            user_id=record.user_id,
            csrf_token=record.csrf_token,
            created_at=record.created_at,
            last_seen_at=record.last_seen_at,
            expires_at=record.expires_at,
        )
        row.mac = session_mac(self._sealer, row)
        session.add(row)

    def get_session(self, token_hash: str) -> ConsoleSession | None:
        session = self._session
        row = session.get(ConsoleSessionRow, token_hash)
        if row is None:
            return None
        if not self._sealer.mac_matches(row.mac, session_mac(self._sealer, row)):
            _refused("console_sessions", row.user_id)
            return None
        return ConsoleSession(
            row.token_hash,
            row.user_id,
            row.csrf_token,
            row.created_at,
            row.last_seen_at,
            row.expires_at,
        )

    def touch_session(self, token_hash: str, now: datetime) -> None:
        session = self._session
        session.execute(
            update(ConsoleSessionRow)
            .where(ConsoleSessionRow.token_hash == token_hash)
            .values(last_seen_at=now)
        )

    def delete_session(self, token_hash: str) -> None:
        session = self._session
        session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.token_hash == token_hash))

    def delete_expired_sessions(self, now: datetime) -> int:
        session = self._session
        result = session.execute(
            delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at <= now)
        )
        return int(getattr(result, "rowcount", 0) or 0)
