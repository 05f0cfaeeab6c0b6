"""Citizens' prints are never kept: when a traveler's details change so that they are a
citizen (by class, nationality or a home-state passport: :meth:`TravelerProfile.citizen`), the
fingers enrolled for them are deleted in the same transaction as the change, audited with a
count (the event names the traveler's id, nothing else about them)."""

from __future__ import annotations

from collections.abc import Iterable

from entryexit.domain.access import Principal
from entryexit.services.audit import AuditTrail
from entryexit.services.unit_of_work import UnitOfWork


def drop_citizens_prints(
    uow: UnitOfWork,
    traveler_ids: Iterable[str],
    home_state: str,
    audit: AuditTrail,
    actor: Principal | None,
    cause: str,
) -> int:
    """Delete the enrolled prints of those of ``traveler_ids`` who are citizens now; returns
    how many templates went. Only travelers with prints are looked at (their profile is
    opened), so a manifest of citizens costs one read of who has prints."""
    dropped = 0
    for traveler_id in sorted(set(traveler_ids)):
        if not uow.travelers.profile(traveler_id).citizen(home_state):
            continue
        gone = uow.fingerprints.delete_of_traveler(traveler_id)
        if gone:
            audit.record(
                uow,
                "fingerprint purge",
                "ok",
                actor,
                "traveler",
                traveler_id,
                {"templates": gone, "reason": "citizen", "cause": cause},
            )
            dropped += gone
    return dropped
