"""Does a restored database open with the keys at hand?

A backup of the data holds no key (the key directory lives elsewhere by design), so a
restore is only as good as the key directory restored beside it. This check is what an
operator runs (and ``entryexit backup restore`` runs before putting a SQLite copy in place)
to learn that before starting the service, rather than from the first officer's error.
"""

from __future__ import annotations

from dataclasses import dataclass

from entryexit.errors import ConfigurationError
from entryexit.services.audit import AuditTrail
from entryexit.services.ports import KeyProvider
from entryexit.services.unit_of_work import UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class RestoredDatabase:
    audit_events: int
    wrapped_keys: int
    keks: tuple[str, ...]


def check_keys_open(
    uow: UnitOfWorkFactory, keys: KeyProvider, audit: AuditTrail
) -> RestoredDatabase:
    """Refuse (``ConfigurationError``) a database whose wrapped keys name a key-encryption
    key the key provider lacks, or whose audit log does not verify under its audit key: in
    both cases these are not the keys the database was backed up with."""
    with uow(read_only=True) as unit:
        counts = unit.data_keys.counts_by_kek()
    missing = []
    for kek_id in sorted(counts):
        try:
            keys.kek(kek_id)
        except ConfigurationError:
            missing.append(kek_id)
    if missing:
        raise ConfigurationError(
            f"the database's data is sealed under key-encryption key(s) {', '.join(missing)},"
            " which this key directory does not hold: restore the key directory that was backed"
            " up with this database (without it the backup is unreadable by design)"
        )
    chain = audit.verify()
    if not chain.ok:
        raise ConfigurationError(
            f"the database's audit log does not verify under this key directory's audit key"
            f" ({chain.problem_count} wrong event(s) of {chain.events}): restore the key"
            " directory that was backed up with this database, or run `entryexit audit verify`"
            " to see what is wrong"
        )
    return RestoredDatabase(
        audit_events=chain.events,
        wrapped_keys=sum(counts.values()),
        keks=tuple(sorted(counts)),
    )
