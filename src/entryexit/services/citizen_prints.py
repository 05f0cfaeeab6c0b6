"""Citizens' prints are never kept: when a traveler's details change so that they are a
citizen (by class, nationality or a home-state passport: ``TravelerRepository.citizens``), the
fingers enrolled for them are deleted in the same transaction as the change, audited with a
count (the event names the traveler's id, nothing else about them)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from entryexit.domain.access import Principal
from entryexit.domain.fingerprints import FingerprintRules
from entryexit.domain.model import AGENCY
from entryexit.domain.policy import age_on
from entryexit.services.audit import AuditTrail
from entryexit.services.ports import StatedDetails
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
        dropped += _delete_prints(uow, traveler_id, audit, actor, "citizen", cause)
    return dropped


def _delete_prints(
    uow: UnitOfWork,
    traveler_id: str,
    audit: AuditTrail | None,
    actor: Principal | None,
    reason: str,
    cause: str,
) -> int:
    """Delete the traveler's enrolled prints, audited with their count when there were any;
    returns how many templates went."""
    gone = uow.fingerprints.delete_of_traveler(traveler_id)
    if gone and audit is not None:
        audit.record(
            uow,
            "fingerprint purge",
            "ok",
            actor,
            "traveler",
            traveler_id,
            {"templates": gone, "reason": reason, "cause": cause},
        )
    return gone


# Exempt travelers' prints (C1 of the session-9 probe): the policy's ``[fingerprints]`` rule
# (class and age) is re-checked wherever prints are used, on the details in force, as the
# citizen rule is; and prints the agency's own details exempt are deleted.


def says_no_prints(rules: FingerprintRules, details: StatedDetails, today: date) -> bool:
    """Whether these details make the policy take no prints (an exempt class, or an age
    under ``min_age`` or over ``max_age``; an unknown birth date: the class decides)."""
    born = details.date_of_birth
    return not rules.takes_prints(details.citizenship_class, age_on(born, today) if born else None)


def exempt_travelers(
    uow: UnitOfWork,
    traveler_ids: Iterable[str],
    rules: FingerprintRules,
    today: date,
    *,
    sealed: bool = True,
) -> frozenset[str]:
    """Those of ``traveler_ids`` whose details in force (any described document, whoever
    stated them) make the policy take no prints: their enrolled prints are not compared. One
    query for the batch; without ``sealed`` only the class decides (nothing opened), so a
    caller checks the ages of the few it keeps (as the citizen check does)."""
    return frozenset(
        d.traveler_id
        for d in uow.travelers.stated_details(set(traveler_ids), sealed=sealed)
        if says_no_prints(rules, d, today)
    )


def agency_exempt(details: Iterable[StatedDetails], rules: FingerprintRules, today: date) -> bool:
    """Whether details the agency stated (or that were stored before who stated them was
    recorded) make the policy take no prints: the agency's word decides alone; a carrier's
    alone deletes nothing (review H1), its prints are only refused by every comparison."""
    return any(
        d.conflict_id is None and d.by in (None, AGENCY) and says_no_prints(rules, d, today)
        for d in details
    )


def drop_exempt_prints(
    uow: UnitOfWork,
    traveler_ids: Iterable[str],
    rules: FingerprintRules,
    today: date,
    audit: AuditTrail | None,
    actor: Principal | None,
    cause: str,
    *,
    agency_decided: bool = False,
) -> int:
    """Delete the enrolled prints of those of ``traveler_ids`` whose details make the policy
    take no prints now, when the agency stated those details, or (``agency_decided``: the
    agency just resolved a conflict on them) put them in force; audited with a count each.
    Returns how many templates went. Without ``audit`` the caller records the count (the
    retention purge: one event a batch, as for every kind it deletes)."""
    by_traveler: dict[str, list[StatedDetails]] = {}
    for d in uow.travelers.stated_details(set(traveler_ids)):
        by_traveler.setdefault(d.traveler_id, []).append(d)
    dropped = 0
    for traveler_id, details in sorted(by_traveler.items()):
        exempt = (
            any(says_no_prints(rules, d, today) for d in details)
            if agency_decided
            else agency_exempt(details, rules, today)
        )
        if not exempt:
            continue
        dropped += _delete_prints(uow, traveler_id, audit, actor, "exempt", cause)
    return dropped
