"""API keys: created once, shown once, stored as a hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from entryexit.domain.access import Principal, Role, StoredApiKey
from entryexit.errors import AuthenticationError, InvalidInputError
from entryexit.services.ports import Clock, Store

KEY_PREFIX = "eex"


def _hash(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough: there is nothing to
    # brute-force that a slow hash would protect.
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


class KeyService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create(self, role: Role, name: str, carrier: str | None = None) -> tuple[Principal, str]:
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
        self._store.add_api_key(
            StoredApiKey(principal, prefix, _hash(secret), created_at=self._clock())
        )
        return principal, f"{KEY_PREFIX}_{prefix}_{secret}"

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthenticationError("an API key is required (header X-API-Key)")
        parts = token.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            raise AuthenticationError("the API key is malformed")
        stored = self._store.find_api_key(parts[1])
        if stored is None or stored.revoked_at is not None:
            raise AuthenticationError("the API key is unknown or revoked")
        if not hmac.compare_digest(stored.secret_hash, _hash(parts[2])):
            raise AuthenticationError("the API key is unknown or revoked")
        return stored.principal

    def create_first_admin(self) -> str | None:
        """On a store with no keys at all, create the first admin key and return its token."""
        if self._store.count_api_keys() > 0:
            return None
        _, token = self.create(Role.ADMIN, "first admin (created on first start)")
        return token
