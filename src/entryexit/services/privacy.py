"""Opt-outs, the purge that enforces retention, the erasure of one traveler, and the privacy
report that proves them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from entryexit.domain.access import Permission, Principal
from entryexit.domain.model import CitizenshipClass, DocumentKey, EncounterMethod, Flight
from entryexit.domain.policy import Participation, Policy, age_on
from entryexit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from entryexit.services.audit import AuditTrail
from entryexit.services.citizen_prints import agency_exempt, drop_exempt_prints
from entryexit.services.encounters import new_encounter
from entryexit.services.flights import FlightService
from entryexit.services.gallery import GalleryService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import Clock, StatedDetails
from entryexit.services.unit_of_work import (
    EncounterHook,
    ReportQueries,
    UnitOfWork,
    UnitOfWorkFactory,
    in_transaction,
)


class OptOutRefusedError(ConflictError):
    code = "opt-out-refused"


class NotOnManifestError(NotFoundError):
    """The document is not on the flight's manifest (officers are told so)."""


class AlreadyProcessedError(ConflictError):
    """The traveler was already processed on this flight (officers are told so)."""


class OptOutNotRecordedError(ConflictError):
    """What a caller without the decision-details permission (a partner's gate) is told for
    any reason that would say whether, or how, a traveler is on a flight."""

    code = "opt-out-not-recorded"


# One answer, whatever the reason, so that a gate cannot probe who is on a manifest or who
# has passed already.
GATE_REFUSAL = "the opt-out was not recorded: an officer processes the traveler"


@dataclass(frozen=True, slots=True)
class OptOut:
    encounter_id: str
    traveler_id: str
    policy_version: str
    # What the opt-out deleted at once: enrolled templates, images of the traveler's captures.
    deleted: dict[str, int] = field(default_factory=dict)
    # Templates kept, and why (ids only): ``kept_reference_templates``, ``kept_for_flights``
    # (the flights still to depart whose listing keeps them), ``disputed_listings`` (flights
    # whose listing is in dispute with this flight's carrier and so kept nothing).
    kept: dict[str, int | str] = field(default_factory=dict)


class OptOutService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        galleries: GalleryService,
        policies: PolicyService,
        audit: AuditTrail,
        on_encounter: EncounterHook | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._galleries = galleries
        self._policies = policies
        self._audit = audit
        self._on_encounter = on_encounter

    def record(self, actor: Principal, flight_id: str, document: DocumentKey, gate: str) -> OptOut:
        """The traveler is processed manually: recorded as an encounter, taken out of the
        gallery so that no capture of them can match. Refused where policy requires capture."""

        def work(uow: UnitOfWork) -> OptOut:
            flight = FlightService.get_in(uow, flight_id)
            opt_out = self.record_in(uow, actor, flight, document, gate)
            self._audit.record(
                uow,
                "opt-out",
                "ok",
                actor,
                "flight",
                flight_id,
                {
                    "encounter": opt_out.encounter_id,
                    **{f"deleted_{kind}": n for kind, n in opt_out.deleted.items()},
                    **opt_out.kept,
                },
                policy_version=opt_out.policy_version,
            )
            return opt_out

        try:
            return in_transaction(self._uow, work)
        except (NotOnManifestError, ConflictError) as exc:
            # Not on the manifest, already processed, refused by policy, class unknown: each
            # would tell a gate something about who is on the flight. Officers learn which.
            if actor.can(Permission.DECISION_DETAILS) or isinstance(exc, OptOutNotRecordedError):
                raise
            raise OptOutNotRecordedError(GATE_REFUSAL) from exc

    def record_in(
        self,
        uow: UnitOfWork,
        actor: Principal,
        flight: Flight,
        document: DocumentKey,
        gate: str,
        capture_id: str | None = None,
    ) -> OptOut:
        """The opt-out inside the caller's unit of work (which records the audit event);
        ``capture_id``: a no-match capture an officer found to be this traveler's (its image
        goes too)."""
        if not actor.serves(flight.carrier):
            raise PermissionDeniedError("this gate key does not serve this flight's carrier")
        traveler_id = uow.travelers.traveler_for_document(document)
        # The traveler as this flight decides by, as its gallery staging does: its own
        # carrier's copy where a rival carrier holds the details (a carrier that listed him
        # first must not make him required, or free to decline, on another carrier's flight);
        # details the agency set govern every flight.
        listed = {
            s.traveler_id: s for s in uow.flights.manifest_status(flight.id, "", flight.carrier)
        }
        status = listed.get(traveler_id) if traveler_id is not None else None
        if traveler_id is None or status is None:
            raise NotOnManifestError("that document is not on this flight's manifest")
        now = self._clock()
        policy = self._policies.in_force(now)
        if not status.citizenship_class:
            raise ConflictError("the traveler's citizenship class is unknown; update the manifest")
        citizenship = CitizenshipClass(status.citizenship_class)
        age = age_on(status.date_of_birth, now.date()) if status.date_of_birth else None
        if policy.participation(citizenship, age) is Participation.REQUIRED:
            raise OptOutRefusedError(
                f"policy {policy.version} requires biometric capture of"
                f" {citizenship.value.replace('_', ' ')}s; opt-out is not available"
            )
        encounter = new_encounter(
            flight,
            traveler_id,
            EncounterMethod.OPT_OUT,
            gate=gate,
            device=f"key:{actor.key_id}",
            at=now,
            policy=policy,
            citizenship=citizenship,
        )
        if not uow.captures.add_encounter(encounter):
            raise AlreadyProcessedError("this traveler has already been processed on this flight")
        if self._on_encounter is not None:
            self._on_encounter(uow, encounter, flight, None)
        # Declining the photo ends its use now, not at the normal expiry.
        counted, disputed = uow.retention.listings_after(traveler_id, flight.id, now)
        deleted = uow.retention.forget_opted_out(traveler_id, flight.id, now, capture_id)
        kept: dict[str, int | str] = {}
        if "kept_reference_templates" in deleted:
            kept["kept_reference_templates"] = deleted.pop("kept_reference_templates")
            kept["kept_for_flights"] = ",".join(counted)
        if disputed:
            kept["disputed_listings"] = ",".join(disputed)
        if flight.staged:
            self._galleries.restage_in(uow, flight)  # rebuilt without the traveler
        return OptOut(encounter.id, traveler_id, policy.version, deleted, kept)


# Rows of each kind a purge transaction deletes at most (benchmarks/RESULTS.md, "Batched
# purge": the longest write-lock hold stays in the tens of milliseconds).
PURGE_BATCH_SIZE = 200


# The purge's kind for enrolled prints of citizens (deleted whatever their expiry).
CITIZENS_PRINTS = "citizen_fingerprint_templates"
# ... and of travelers the policy takes no prints from by the agency's details (an age under
# or over the policy's bounds, an exempt class: probe C1), whatever their expiry.
EXEMPT_PRINTS = "exempt_fingerprint_templates"


class PurgeService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        audit: AuditTrail,
        galleries: GalleryService | None,
        policies: PolicyService,
        batch_size: int = PURGE_BATCH_SIZE,
        home_state: str = "UTO",
    ) -> None:
        if batch_size < 1:
            raise ValueError("a purge batch deletes at least one row of each kind")
        self._uow = uow
        self._clock = clock
        self._audit = audit
        self._galleries = galleries
        self._policies = policies
        self._batch_size = batch_size
        self._home_state = home_state

    def run(self) -> dict[str, int]:
        """Delete what has expired and record how much of each kind (never whose), in batches
        of at most ``batch_size`` rows of each kind. Each batch is one transaction with its
        own audit record (the deletion and its record stand or fall together), so a large
        backlog never holds the write lock for long, and a run that stops between batches
        has recorded what it deleted and leaves the rest to the next. The batches take the
        kinds whose expiry is stamped first (with the documents, data keys and traveler
        records of the travelers they named), then sweep the biographic kinds left (found
        by a read outside the write lock). Biographic kinds follow the policy in force now.
        Returns the run's totals."""
        now = self._clock()
        policy = self._policies.in_force(now)
        in_transaction(self._uow, lambda uow: uow.retention.refresh_statistics())
        run_id = uuid.uuid4().hex
        totals: dict[str, int] = {}

        def recorded(counts: dict[str, int], uow: UnitOfWork) -> dict[str, int]:
            if any(counts.values()) or not totals:  # a run with nothing due is recorded too
                details: dict[str, int | str] = {**counts, "run": run_id}
                self._audit.record(
                    uow, "purge", "ok", details=details, policy_version=policy.version
                )
            return counts

        def committed(work: Callable[[UnitOfWork], dict[str, int]]) -> bool:
            """Run one batch; whether it deleted anything."""
            counts = in_transaction(self._uow, work)
            for kind, count in counts.items():
                totals[kind] = totals.get(kind, 0) + count
            return any(counts.values())

        def batch(uow: UnitOfWork) -> dict[str, int]:
            return recorded(uow.retention.purge_expired(now, policy, self._batch_size), uow)

        while committed(batch):
            pass

        def citizens(uow: UnitOfWork) -> int:
            # Prints are never kept of a citizen (enrolled before the rule), whatever their
            # expiry: a kind of its own, recorded (and totalled) when there were any.
            gone = uow.retention.purge_citizens_prints(self._home_state, self._batch_size)
            if gone:
                recorded({CITIZENS_PRINTS: gone}, uow)
            return gone

        while gone := in_transaction(self._uow, citizens):
            totals[CITIZENS_PRINTS] = totals.get(CITIZENS_PRINTS, 0) + gone
        if gone := self._exempt_prints(policy, now, recorded):
            totals[EXEMPT_PRINTS] = totals.get(EXEMPT_PRINTS, 0) + gone
        while True:
            with self._uow(read_only=True) as reading:
                due = reading.retention.biographic_due(now, policy, self._batch_size)
            if not due:
                break

            def sweep(uow: UnitOfWork, due: list[str] = due) -> dict[str, int]:
                return recorded(uow.retention.purge_travelers(now, policy, due), uow)

            if not committed(sweep):
                break  # found due, but no longer so (another purge got there first)
        if self._galleries is not None:
            self._galleries.evict_expired(now)
        if any(totals.values()):
            self._uow.scrub()
        return totals

    def _exempt_prints(
        self,
        policy: Policy,
        now: datetime,
        recorded: Callable[[dict[str, int], UnitOfWork], dict[str, int]] | None,
        uow: UnitOfWork | None = None,
    ) -> int:
        """Delete the prints of travelers the agency's details say the policy takes none from
        (:func:`drop_exempt_prints`), a page of ``batch_size`` enrolled travelers at a time:
        found by a read (birth dates opened) outside the write lock, re-checked inside it.
        With ``uow`` (a preview), all in that transaction, left uncommitted."""
        rules, today, after, total = policy.fingerprints, now.date(), "", 0
        while True:
            if uow is not None:
                page = uow.fingerprints.enrolled_travelers(after, self._batch_size)
                if not page:
                    return total
                after = page[-1]
                total += drop_exempt_prints(uow, page, rules, today, None, None, "purge")
                continue
            with self._uow(read_only=True) as reading:
                page = reading.fingerprints.enrolled_travelers(after, self._batch_size)
                if not page:
                    return total
                after = page[-1]
                by_traveler: dict[str, list[StatedDetails]] = {}
                for details in reading.travelers.stated_details(page):
                    by_traveler.setdefault(details.traveler_id, []).append(details)
            due = [t for t, found in by_traveler.items() if agency_exempt(found, rules, today)]
            if not due:
                continue

            def drop(uow: UnitOfWork, due: list[str] = due) -> int:
                gone = drop_exempt_prints(uow, due, rules, today, None, None, "purge")
                if gone and recorded is not None:
                    recorded({EXEMPT_PRINTS: gone}, uow)
                return gone

            total += in_transaction(self._uow, drop)

    def preview(self, as_of: datetime) -> dict[str, int]:
        """What a purge at ``as_of`` would delete, under the policy in force then: the purge
        itself, run and rolled back (nothing is deleted, nothing recorded)."""
        try:
            policy = self._policies.in_force(as_of)
        except NotFoundError:
            raise InvalidInputError("no policy was in force then; choose a later date") from None
        with self._uow() as uow:  # left uncommitted
            counts = uow.retention.purge_expired(as_of, policy)
            citizens = uow.retention.purge_citizens_prints(self._home_state)
            exempt = self._exempt_prints(policy, as_of, None, uow)
            return (
                counts
                | ({CITIZENS_PRINTS: citizens} if citizens else {})
                | ({EXEMPT_PRINTS: exempt} if exempt else {})
            )


ERASURE_REASONS = ("court_order", "mistaken_enrolment")


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What erasing one traveler deleted: counts per kind, never what."""

    traveler_id: str
    reason: str
    erased: dict[str, int]
    galleries_rebuilt: int


class ErasureService:
    """Erase one traveler (a court order, a mistaken enrolment): every record of theirs and
    their data key, so that every sealed copy left anywhere (backups, replicas, a database's
    own log) is unreadable. Audited with counts and the reason, no personal data."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        audit: AuditTrail,
        galleries: GalleryService | None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._audit = audit
        self._galleries = galleries

    def erase(self, actor: Principal, document: DocumentKey, reason: str) -> ErasureReport:
        actor.require(Permission.TRAVELER_ERASE)
        if actor.carrier is not None:
            # A traveler's records span carriers: no key bound to one may erase them all.
            raise PermissionDeniedError("a key bound to a carrier may not erase a traveler")
        if reason not in ERASURE_REASONS:
            raise InvalidInputError(f"the reason is one of: {', '.join(ERASURE_REASONS)}")

        def work(uow: UnitOfWork) -> ErasureReport:
            traveler_id = uow.travelers.traveler_for_document(document)
            if traveler_id is None:
                raise NotFoundError("no traveler is recorded with that document")
            erasure = uow.retention.erase_traveler(traveler_id)
            for flight_id in erasure.staged_flights:
                flight = uow.flights.get(flight_id)
                if flight is not None:
                    self._rebuild(uow, flight)
            self._audit.record(
                uow,
                "traveler erase",
                "ok",
                actor,
                "traveler",
                traveler_id,
                {"reason": reason, **erasure.counts},
            )
            return ErasureReport(
                traveler_id, reason, dict(erasure.counts), len(erasure.staged_flights)
            )

        report = in_transaction(self._uow, work)
        self._uow.scrub()
        return report

    def _rebuild(self, uow: UnitOfWork, flight: Flight) -> None:
        """A staged gallery that held the traveler is rebuilt without them; without a face
        model here (the command line), its version is bumped so every server rebuilds it."""
        if self._galleries is not None:
            self._galleries.restage_in(uow, flight)
        else:
            uow.flights.mark_gallery_staged(flight.id, self._clock(), flight.gallery_expires_at)


class PrivacyReportService:
    def __init__(
        self, reports: ReportQueries, clock: Clock, audit: AuditTrail, policies: PolicyService
    ) -> None:
        self._reports = reports
        self._clock = clock
        self._audit = audit
        self._policies = policies

    def report(
        self, since: datetime, until: datetime | None = None, as_of: datetime | None = None
    ) -> dict[str, object]:
        """``as_of`` (default now): the moment whose holdings and overdue items are counted,
        under the policy in force then; an auditor sees what a purge on that date would find
        overdue."""
        generated = self._clock()
        now = as_of or generated
        end = until or now
        try:
            policy = self._policies.in_force(now)
        except NotFoundError:
            if as_of is None:
                raise
            raise InvalidInputError(
                "no policy was in force at as_of; choose a later date"
            ) from None
        held = self._reports.retention_counts(now, policy)
        purges = [e for e in self._audit.all_events("purge") if since <= e.entry.occurred_at <= end]
        purged: dict[str, int] = {}
        # A run is recorded batch by batch, each event naming its run (events before batching
        # were a run each).
        runs = {str(e.entry.details.get("run", e.sequence)) for e in purges}
        for event in purges:
            for kind, count in event.entry.details.items():
                if isinstance(count, int):
                    purged[kind] = purged.get(kind, 0) + count
        erasures = [
            e
            for e in self._audit.all_events("traveler erase")
            if since <= e.entry.occurred_at <= end
        ]
        activity = self._reports.decision_counts(since, end)
        return {
            "generated_at": generated.isoformat(),
            "as_of": now.isoformat(),
            "period": {"since": since.isoformat(), "until": end.isoformat()},
            "policy_in_force": policy.version,
            "held": {kind: values["held"] for kind, values in held.items()},
            "overdue": {kind: values["overdue"] for kind, values in held.items()},
            "overdue_total": sum(values["overdue"] for values in held.values()),
            # Biometric kinds only: when the oldest still held was recorded.
            "oldest": {
                kind: at.isoformat() if at is not None else None
                for kind, at in self._reports.oldest_held().items()
            },
            "purges": {"runs": len(runs), "deleted": purged},
            "erasures": len(erasures),
            "opt_outs": activity.get("encounters_opt_out", 0),
            "exemptions": _exemptions(self._audit, since, end),
            "manual_processing": activity.get("captures_manual", 0)
            + activity.get("encounters_manual_document_check", 0),
            "decisions": {
                k.removeprefix("captures_"): v
                for k, v in activity.items()
                if k.startswith("captures_")
            },
        }


class FairnessReportService:
    """The live counterpart of ``entryexit evaluate fairness``: how travelers of each sex on
    staged manifests were processed. Counts only, no personal data."""

    def __init__(self, reports: ReportQueries, clock: Clock) -> None:
        self._reports = reports
        self._clock = clock

    def report(self, since: datetime, until: datetime | None = None) -> dict[str, object]:
        end = until or self._clock()
        groups = {}
        for sex, counts in sorted(self._reports.outcomes_by_sex(since, end).items()):
            total = counts.get("travelers_with_photo", 0)
            matched = counts.get(EncounterMethod.BIOMETRIC.value, 0)
            opted_out = counts.get(EncounterMethod.OPT_OUT.value, 0)
            confirmed_misses = counts.get("confirmed_false_non_match", 0)
            eligible = total - opted_out
            groups[sex] = {
                **counts,
                "biometric_match_rate": matched / eligible if eligible else None,
                # Lower bound of the live false non-match rate: only the misses an officer
                # confirmed from the exceptions queue.
                "confirmed_false_non_match_rate": (
                    confirmed_misses / (matched + confirmed_misses)
                    if matched + confirmed_misses
                    else None
                ),
            }
        return {
            "period": {"since": since.isoformat(), "until": end.isoformat()},
            "attribute": "sex (from the manifest)",
            "groups": groups,
            "notes": [
                "Travelers not matched include no-shows and those an officer processed by"
                " document; they bound the false non-match rate from above.",
                "confirmed_false_non_match counts travelers whose gate no-match an officer"
                " resolved as the manifest traveler after a document check (console exceptions"
                " queue); their rate over those matched or so confirmed is a lower bound.",
            ],
        }


def _exemptions(audit: AuditTrail, since: datetime, until: datetime) -> int:
    """Travelers exempted on flights staged in the period: each flight's latest staging
    counts once (re-staging does not count its exempt travelers again)."""
    latest: dict[str, int] = {}
    for event in audit.all_events("gallery staged"):
        if since <= event.entry.occurred_at <= until and event.entry.resource_id:
            latest[event.entry.resource_id] = int(event.entry.details.get("exempt", 0))
    return sum(latest.values())
