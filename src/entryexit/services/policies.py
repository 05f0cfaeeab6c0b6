"""Loading policies and finding the one in force."""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import datetime, timedelta
from importlib import resources

from entryexit.domain.access import Principal
from entryexit.domain.policy import Policy, parse_policy, policy_in_force
from entryexit.errors import NotFoundError, StoredDataUntrustedError
from entryexit.services.audit import AuditTrail
from entryexit.services.generations import GenerationCheck, Stamp
from entryexit.services.ports import ChangeFeed, Clock, StoredPolicy
from entryexit.services.unit_of_work import UnitOfWork, UnitOfWorkFactory, in_transaction

logger = logging.getLogger(__name__)
SHIPPED_POLICIES = ("default.toml", "noncitizens-mandatory.toml")
# Another process (``entryexit policy load`` beside ``serve``, another instance) may load a
# policy. Every load bumps the ``policies`` generation in its transaction; a process reads
# that counter at most this often (by the injected clock), or at once when the store pushes
# news of the change (PostgreSQL NOTIFY: then no read at all while nothing changed).
RECHECK_EVERY = timedelta(seconds=1)
GENERATION = "policies"
DEFAULT_POLICY = "default.toml"


def shipped_policy_text(name: str) -> str:
    if name not in SHIPPED_POLICIES:
        raise NotFoundError(
            f"no shipped policy named {name}; shipped: {', '.join(SHIPPED_POLICIES)}"
        )
    return resources.files("entryexit.policies").joinpath(name).read_text(encoding="utf-8")


class PolicyService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, audit: AuditTrail) -> None:
        self._uow = uow
        self._clock = clock
        self._audit = audit
        self._lock = threading.Lock()
        self._cache: list[Policy] | None = None
        self._stamp: Stamp | None = None
        self._checked_at: datetime | None = None
        self._generation = GenerationCheck(uow, GENERATION)

    def follow(self, changes: ChangeFeed) -> None:
        """Take pushed news of policy loads anywhere in the fleet (PostgreSQL NOTIFY)."""
        with self._lock:
            self._generation = GenerationCheck(self._uow, GENERATION, changes)

    def load(self, text: str, actor: Principal | None = None) -> tuple[Policy, bool]:
        """Parse and store a policy file; returns it and whether it was new."""
        policy = parse_policy(text)
        stored = StoredPolicy(policy.version, text, hashlib.sha256(text.encode()).hexdigest())

        def store(uow: UnitOfWork) -> bool:
            added = uow.policies.add(stored, policy.effective_from, self._clock())
            if added:
                uow.generations.bump(GENERATION)
                self._audit.record(
                    uow,
                    "policy load",
                    "ok",
                    actor,
                    "policy",
                    policy.version,
                    {"effective_from": policy.effective_from.isoformat()},
                    policy_version=policy.version,
                )
            return added

        added = in_transaction(self._uow, store)
        with self._lock:
            self._cache = None
            self._stamp = None
        return policy, added

    def ensure_default(self) -> None:
        """On a store without any policy, load the shipped default (a recorded data change)."""
        try:
            stored = self._stored()
        except StoredDataUntrustedError:
            # There are rows, one written without the keys: start (so that an administrator
            # can load the file again), but every read of the policy refuses until then.
            logger.error("a stored policy fails its integrity check: no decisions until reloaded")
            return
        if not stored:
            self.load(shipped_policy_text(DEFAULT_POLICY))

    def all(self, now: datetime | None = None) -> list[Policy]:
        now = now or self._clock()
        with self._lock:
            if self._cache is not None and not self._generation.pushed:
                checked = self._checked_at
                clock_now = self._clock()
                if checked is not None and checked <= clock_now < checked + RECHECK_EVERY:
                    return list(self._cache)
            current, stamp = self._generation.check(self._stamp)
            if self._cache is None or not current:
                # Read after the generation: a load committed in between is read now and
                # stamped with the older generation, so the next check reads again.
                stored = self._stored()
                known = [p.version for p in self._cache or []]
                if self._cache is None or [p.version for p in stored] != known:
                    self._cache = [parse_policy(p.source) for p in stored]
            self._stamp = stamp
            self._checked_at = self._clock()
            return list(self._cache)

    def _stored(self) -> list[StoredPolicy]:
        with self._uow(read_only=True) as uow:
            return uow.policies.all()

    def in_force(self, at: datetime | None = None) -> Policy:
        now = at or self._clock()
        return policy_in_force(self.all(now), now)

    def version_in_force(self, at: datetime) -> str | None:
        """The version in force at ``at``, or None while none is (nothing loaded or effective
        yet)."""
        try:
            return policy_in_force(self.all(at), at).version
        except NotFoundError:
            return None

    def get(self, version: str) -> Policy:
        for policy in self.all():
            if policy.version == version:
                return policy
        raise NotFoundError(f"policy {version} is not loaded")
