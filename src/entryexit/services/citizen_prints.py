"""Citizens' prints are never kept: when a traveler's details change so that they are a
citizen (by class, nationality or a home-state passport: ``TravelerRepository.citizens``), the
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
    how many templates went. One query decides for the batch on clear columns; only those it
    does not show to be citizens have their sealed nationality opened.

    A carrier-bound ``actor``'s word (a class or nationality it stated) deletes nothing: an
    airline desk re-sending its manifest could otherwise erase an enrolment the agency made
    (review H1). Only a home-state passport, or the agency's own statement, does; until the
    agency confirms, the prints are refused by every comparison (``citizen``) and the event
    says they were kept."""
    dropped = 0
    carrier_says = actor is not None and actor.carrier is not None
    for traveler_id in sorted(uow.travelers.citizens(set(traveler_ids), home_state)):
        if carrier_says and home_state not in uow.travelers.profile(traveler_id).passport_states:
            audit.record(
                uow,
                "fingerprint purge",
                "kept",
                actor,
                "traveler",
                traveler_id,
                {"reason": "citizen stated by a carrier", "cause": cause},
            )
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
