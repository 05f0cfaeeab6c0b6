"""Opt-outs, the purge that enforces retention, and the privacy report that proves it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from entryexit.domain.access import Permission, Principal
from entryexit.domain.model import DocumentKey, EncounterMethod, Flight
from entryexit.domain.policy import Participation, age_on
from entryexit.errors import ConflictError, NotFoundError, PermissionDeniedError
from entryexit.services.audit import AuditTrail
from entryexit.services.encounters import new_encounter
from entryexit.services.flights import FlightService
from entryexit.services.gallery import GalleryService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import Clock
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
                {"encounter": opt_out.encounter_id},
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
        self, uow: UnitOfWork, actor: Principal, flight: Flight, document: DocumentKey, gate: str
    ) -> OptOut:
        """The opt-out inside the caller's unit of work (which records the audit event)."""
        if not actor.serves(flight.carrier):
            raise PermissionDeniedError("this gate key does not serve this flight's carrier")
        traveler_id = uow.travelers.traveler_for_document(document)
        on_manifest = {s.traveler_id for s in uow.flights.manifest_status(flight.id, "")}
        if traveler_id is None or traveler_id not in on_manifest:
            raise NotOnManifestError("that document is not on this flight's manifest")
        now = self._clock()
        policy = self._policies.in_force(now)
        profile = uow.travelers.profile(traveler_id)
        if profile.citizenship_class is None:
            raise ConflictError("the traveler's citizenship class is unknown; update the manifest")
        age = age_on(profile.date_of_birth, now.date()) if profile.date_of_birth else None
        if policy.participation(profile.citizenship_class, age) is Participation.REQUIRED:
            raise OptOutRefusedError(
                f"policy {policy.version} requires biometric capture of"
                f" {profile.citizenship_class.value.replace('_', ' ')}s; opt-out is not available"
            )
        encounter = new_encounter(
            flight,
            traveler_id,
            EncounterMethod.OPT_OUT,
            gate=gate,
            device=f"key:{actor.key_id}",
            at=now,
            policy=policy,
            citizenship=profile.citizenship_class,
        )
        if not uow.captures.add_encounter(encounter):
            raise AlreadyProcessedError("this traveler has already been processed on this flight")
        if self._on_encounter is not None:
            self._on_encounter(uow, encounter, flight, None)
        if flight.staged:
            self._galleries.restage_in(uow, flight)  # rebuilt without the traveler
        return OptOut(encounter.id, traveler_id, policy.version)


class PurgeService:
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

    def run(self) -> dict[str, int]:
        """Delete what has expired and record how much of each kind (never whose), in one
        transaction: the deletion and its record stand or fall together."""
        now = self._clock()

        def purge(uow: UnitOfWork) -> dict[str, int]:
            counts = uow.retention.purge_expired(now)
            counts["fingerprint_templates"] = uow.fingerprints.purge_expired(now)
            self._audit.record(uow, "purge", "ok", details=counts)
            return counts

        counts = in_transaction(self._uow, purge)
        if self._galleries is not None:
            self._galleries.evict_expired(now)
        return counts


class PrivacyReportService:
    def __init__(
        self, reports: ReportQueries, clock: Clock, audit: AuditTrail, policies: PolicyService
    ) -> None:
        self._reports = reports
        self._clock = clock
        self._audit = audit
        self._policies = policies

    def report(self, since: datetime, until: datetime | None = None) -> dict[str, object]:
        now = self._clock()
        end = until or now
        held = self._reports.retention_counts(now)
        purges = [e for e in self._audit.all_events("purge") if since <= e.entry.occurred_at <= end]
        purged: dict[str, int] = {}
        for event in purges:
            for kind, count in event.entry.details.items():
                if isinstance(count, int):
                    purged[kind] = purged.get(kind, 0) + count
        activity = self._reports.decision_counts(since, end)
        return {
            "generated_at": now.isoformat(),
            "period": {"since": since.isoformat(), "until": end.isoformat()},
            "policy_in_force": self._policies.in_force(now).version,
            "held": {kind: values["held"] for kind, values in held.items()},
            "overdue": {kind: values["overdue"] for kind, values in held.items()},
            "overdue_total": sum(values["overdue"] for values in held.values()),
            "purges": {"runs": len(purges), "deleted": purged},
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
