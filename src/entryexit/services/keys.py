"""API keys: created once, shown once, stored as a hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid

from entryexit.domain.access import Principal, Role, StoredApiKey
from entryexit.errors import AuthenticationError, InvalidInputError, NotFoundError
from entryexit.services.audit import AuditTrail
from entryexit.services.ports import Clock
from entryexit.services.unit_of_work import UnitOfWork, UnitOfWorkFactory, in_transaction

KEY_PREFIX = "eex"
# Far more keys than a deployment issues: a bound on the remembered rows' memory.
MAX_REMEMBERED_KEYS = 10_000
# How long the prefixes of every issued key, read by :meth:`KeyService.remember_live`, answer
# :meth:`KeyService.is_issued` without a read (a key issued since waits for the next read).
ISSUED_SECONDS = 10.0


def _hash(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough: there is nothing to
    # brute-force that a slow hash would protect.
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


class KeyService:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, audit: AuditTrail | None = None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._audit = audit
        # prefix -> the key's row as this instance last read it (MAC checked, not revoked).
        # Only :meth:`remembered` uses it, to let a capture's model start before the read
        # that confirms the key (see CaptureService); it never *decides* anything alone.
        self._remembered: dict[str, StoredApiKey] = {}
        # (monotonic, prefixes) of every key issued, from :meth:`remember_live`'s last read.
        self._issued: tuple[float, frozenset[str]] = (-ISSUED_SECONDS, frozenset())

    def create(
        self,
        role: Role,
        name: str,
        carrier: str | None = None,
        actor: Principal | None = None,
    ) -> tuple[Principal, str]:
        """Create a key; the returned token is the only time the secret exists in clear."""
        if not name.strip() or len(name) > 200:
            raise InvalidInputError("a key needs a name of 1 to 200 characters")
        if carrier is not None:
            carrier = carrier.strip().upper()
            if not (2 <= len(carrier) <= 3 and carrier.isalnum()):
                raise InvalidInputError("a carrier is its 2- or 3-character airline code")
        if role is Role.GATE and carrier is None:
            raise InvalidInputError("a gate key must be limited to one carrier (--carrier)")
        principal = Principal(str(uuid.uuid4()), name.strip(), role, carrier)
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        stored = StoredApiKey(principal, prefix, _hash(secret), created_at=self._clock())

        def store(uow: UnitOfWork) -> None:
            uow.access.add_api_key(stored)
            if self._audit is not None:
                self._audit.record(
                    uow,
                    "api key create",
                    "ok",
                    actor,
                    "api_key",
                    principal.key_id,
                    {"role": role.value},
                )

        in_transaction(self._uow, store)
        return principal, f"{KEY_PREFIX}_{prefix}_{secret}"

    @staticmethod
    def key_parts(token: str | None) -> list[str]:
        """A presented key's prefix, id and secret; AuthenticationError if there is none or it
        is malformed (checked without the store, before a request's body is read)."""
        if not token:
            raise AuthenticationError("an API key is required (header X-API-Key)")
        parts = token.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            raise AuthenticationError("the API key is malformed")
        return parts

    def authenticate(self, token: str | None, within: UnitOfWork | None = None) -> Principal:
        """The key's principal, its row read (and its MAC checked) now: in ``within``, the
        caller's read unit of work, when given (a capture reads all it needs in one)."""
        parts = self.key_parts(token)
        if within is not None:
            stored = within.access.find_api_key(parts[1])
        else:
            with self._uow(read_only=True) as uow:
                stored = uow.access.find_api_key(parts[1])
        if stored is None or stored.revoked_at is not None:
            self._remembered.pop(parts[1], None)
            raise AuthenticationError("the API key is unknown or revoked")
        if not hmac.compare_digest(stored.secret_hash, _hash(parts[2])):
            raise AuthenticationError("the API key is unknown or revoked")
        if parts[1] in self._remembered or len(self._remembered) < MAX_REMEMBERED_KEYS:
            self._remembered[parts[1]] = stored
        return stored.principal

    def remembered(self, token: str | None) -> Principal | None:
        """The key's principal as its row read last (by :meth:`authenticate` or
        :meth:`remember_live`, MAC checked) said, when the presented secret matches that row;
        ``None`` otherwise. No read: the row may have been revoked or changed since, so this
        only lets work *start* (a capture's model, a request past api/keyless.py's early
        refusal); :meth:`authenticate` must confirm it before anything is written or
        answered."""
        try:
            parts = self.key_parts(token)
        except AuthenticationError:
            return None
        stored = self._remembered.get(parts[1])
        if stored is None or not hmac.compare_digest(stored.secret_hash, _hash(parts[2])):
            return None
        return stored.principal

    def remember_live(self) -> None:
        """Read every key's row (the newest :data:`MAX_REMEMBERED_KEYS`; one read) and
        remember the unrevoked ones alone, for :meth:`remembered`: lets a real key this
        instance has not authenticated yet be told from a made-up one without a read of its
        own (the API's early refusal of an address blocked for failed sign-ins,
        api/keyless.py). For :data:`ISSUED_SECONDS` after it, :meth:`is_issued` answers from
        it too."""
        with self._uow(read_only=True) as uow:
            rows = uow.access.api_keys(MAX_REMEMBERED_KEYS)
        self._remembered = {s.prefix: s for s in rows if s.revoked_at is None}
        if len(rows) < MAX_REMEMBERED_KEYS:  # every key issued, so absence means something
            self._issued = (time.monotonic(), frozenset(s.prefix for s in rows))

    def is_live(self, prefix: str) -> bool:
        """Whether a key with this public prefix (the middle part of a presented key) is
        stored and not revoked: tells a made-up key from a real one; :meth:`authenticate`
        checks the secret."""
        with self._uow(read_only=True) as uow:
            stored = uow.access.find_api_key(prefix)
        return stored is not None and stored.revoked_at is None

    def is_issued(self, token: str) -> bool:
        """Whether ``token`` names a key EntryExit issued (revoked or not), whatever its
        secret: a failed request with it is someone holding or guessing a real key's id."""
        try:
            prefix = self.key_parts(token)[1]
        except AuthenticationError:
            return False
        read_at, issued = self._issued
        if prefix in issued:
            return True  # keys are revoked, never deleted
        if time.monotonic() - read_at < ISSUED_SECONDS:
            return False  # (a flood of made-up keys: their refusals' audit costs no read)
        with self._uow(read_only=True) as uow:
            return uow.access.find_api_key(prefix) is not None

    def revoke(self, key_id: str, actor: Principal | None = None) -> None:
        """Revoke a key at once (every instance refuses it on its next request); audited."""

        def revoke(uow: UnitOfWork) -> None:
            if not uow.access.revoke_api_key(key_id, self._clock()):
                raise NotFoundError(f"no API key {key_id} that is not already revoked")
            if self._audit is not None:
                self._audit.record(uow, "api key revoke", "ok", actor, "api_key", key_id)

        in_transaction(self._uow, revoke)
        # Forgotten here at once: what this instance remembers lets requests past the API's
        # early checks (api/keyless.py) without a read. Other instances forget it on its next
        # request, which their read refuses.
        for prefix, row in list(self._remembered.items()):  # (a copy: threads add to it)
            if row.principal.key_id == key_id:
                self._remembered.pop(prefix, None)

    def create_first_admin(self) -> str | None:
        """On a store with no keys at all, create the first admin key and return its token."""
        with self._uow(read_only=True) as uow:
            existing = uow.access.count_api_keys()
        if existing > 0:
            return None
        _, token = self.create(Role.ADMIN, "first admin (created on first start)")
        return token


def rotate_data_keys(
    uow: UnitOfWorkFactory, audit: AuditTrail, new_kek_id: str, batch_size: int = 500
) -> tuple[int, dict[str, int]]:
    """Re-wrap every data key not under the current KEK, a batch per transaction, so the
    service keeps running (each row is always readable with the key it names). Returns how
    many were re-wrapped and what is left per KEK; the last batch records the event."""
    rewrapped = 0
    while True:
        batch = in_transaction(uow, lambda u: u.data_keys.rotate_batch(batch_size))
        rewrapped += batch
        if batch == 0:
            break

    def finish(u: UnitOfWork) -> dict[str, int]:
        remaining = {k: n for k, n in u.data_keys.counts_by_kek().items() if k != new_kek_id}
        audit.record(
            u,
            "keys rotate",
            "ok",
            resource_type="kek",
            resource_id=new_kek_id,
            details={"rewrapped": rewrapped, "left_under_old_keys": sum(remaining.values())},
        )
        return remaining

    return rewrapped, in_transaction(uow, finish)
