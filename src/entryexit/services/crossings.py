"""Entries open admissions, exits close them; overstays are what is left.

An exit is tied to the stay it ends by identity, not only by document: first the traveler's
own open stay (same traveler, found through the document), then a bounded biometric search
of the exit template against the entry templates of other open stays, so that a traveler who
leaves on a new passport still closes the stay they began. The link records how it was made
and its score, so an officer can review it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics.compare import Template, l2_normalise
from entryexit.domain.access import Permission, Principal
from entryexit.domain.admission import (
    Admission,
    ExitLink,
    days_over,
)
from entryexit.domain.model import (
    CitizenshipClass,
    Direction,
    Encounter,
    EncounterMethod,
    Flight,
)
from entryexit.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from entryexit.services.audit import AuditTrail
from entryexit.services.gallery import GalleryService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import (
    Clock,
    CrossingStore,
    FaceAnalyser,
    NewAdmission,
    Store,
    TravelerIdentity,
)
from entryexit.services.thresholds import OperatingThresholds

logger = logging.getLogger(__name__)

# The bounded search looks at this many open stays (newest first) when the document finds none.
LINK_SEARCH_LIMIT = 200_000
PERMANENT_RESIDENT_CLASS = "LPR"


@dataclass(frozen=True, slots=True)
class OverstayRow:
    """Enough to act on: who, on what document, which stay, how many days over."""

    traveler_ref: str
    surname: str
    given_names: str
    nationality: str
    document: str
    admission_class: str
    admitted_on: date | None
    admitted_until: date | None
    exited_on: date | None
    days_over: int


class CrossingService:
    def __init__(
        self,
        store: Store,
        crossings: CrossingStore,
        engine: FaceAnalyser,
        clock: Clock,
        galleries: GalleryService,
        policies: PolicyService,
        thresholds: OperatingThresholds,
        audit: AuditTrail,
    ) -> None:
        self._store = store
        self._crossings = crossings
        self._engine = engine
        self._clock = clock
        self._galleries = galleries
        self._policies = policies
        self._thresholds = thresholds
        self._audit = audit
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="admissions")
        self._pending: list[Future[None]] = []
        self._pending_lock = threading.Lock()

    # --- recording -----------------------------------------------------------------------
    def on_encounter(
        self, encounter: Encounter, flight: Flight, live: NDArray[np.float32] | None
    ) -> None:
        """Queue the admission work for an encounter: it runs on a worker of its own so that a
        bounded biometric search (for an exit on a new document) never delays the gate."""
        future = self._worker.submit(self._record, encounter, flight, live)
        with self._pending_lock:
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(future)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until every queued encounter is recorded (tests, orderly shutdown)."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result(timeout=timeout)

    def _record(
        self, encounter: Encounter, flight: Flight, live: NDArray[np.float32] | None
    ) -> None:
        try:
            self._record_now(encounter, flight, live)
        except Exception as exc:  # logged without personal data; the encounter itself stands
            logger.error("admission update for an encounter failed: %s", type(exc).__name__)
            raise

    def _record_now(
        self, encounter: Encounter, flight: Flight, live: NDArray[np.float32] | None
    ) -> None:
        """Open or close a stay for a non-citizen's encounter. ``live`` is the capture's
        template for a biometric encounter; opt-outs never contribute a template."""
        profile = self._store.traveler_profile(encounter.traveler_id)
        if profile.citizenship_class in (None, CitizenshipClass.CITIZEN):
            return
        template = self._template_for(encounter, flight, live)
        day = encounter.occurred_at.date()
        if flight.direction is Direction.ENTRY:
            rules = self._policies.in_force(encounter.occurred_at).admission
            resident = profile.citizenship_class is CitizenshipClass.PERMANENT_RESIDENT
            admission_class = PERMANENT_RESIDENT_CLASS if resident else rules.default_class
            self._crossings.open_admission(
                NewAdmission(
                    id=str(uuid.uuid4()),
                    traveler_id=encounter.traveler_id,
                    admission_class=admission_class,
                    admitted_on=day,
                    admitted_until=None if resident else rules.admitted_until(admission_class, day),
                    entry_encounter_id=encounter.id,
                    entry_flight_id=flight.id,
                    template=None if template is None else Template(template, "").to_bytes(),
                    template_model=self._engine.model if template is not None else None,
                    created_at=self._clock(),
                )
            )
            return
        self._close(encounter, flight, template, day)

    def _template_for(
        self, encounter: Encounter, flight: Flight, live: NDArray[np.float32] | None
    ) -> NDArray[np.float32] | None:
        if encounter.method is EncounterMethod.OPT_OUT:
            return None
        if live is not None:
            return live
        # A manual document check: the traveler's enrolled reference stands in.
        gallery = self._galleries.gallery_for(flight)
        if encounter.traveler_id in gallery.traveler_ids:
            row = gallery.traveler_ids.index(encounter.traveler_id)
            return np.asarray(gallery.matrix[row], dtype=np.float32)
        return None

    def _close(
        self,
        encounter: Encounter,
        flight: Flight,
        template: NDArray[np.float32] | None,
        day: date,
    ) -> None:
        own = self._crossings.open_admission_of(encounter.traveler_id)
        if own is not None:
            self._crossings.close_admission(
                own.id, encounter.id, flight.id, encounter.traveler_id, day, ExitLink.DOCUMENT, None
            )
            return
        if template is not None:
            candidates = self._crossings.open_admission_templates(
                self._engine.model, encounter.traveler_id, LINK_SEARCH_LIMIT
            )
            if candidates:
                matrix = l2_normalise(
                    np.stack(
                        [
                            Template.from_bytes(t, "", self._engine.dimension).vector
                            for _, t in candidates
                        ]
                    )
                )
                scores = matrix @ template
                best = int(np.argmax(scores))
                policy = self._policies.in_force(encounter.occurred_at)
                threshold = self._thresholds.gallery_threshold(policy.matching)
                if float(scores[best]) >= threshold:
                    admission_id = candidates[best][0]
                    self._crossings.close_admission(
                        admission_id,
                        encounter.id,
                        flight.id,
                        encounter.traveler_id,
                        day,
                        ExitLink.BIOMETRIC,
                        float(scores[best]),
                    )
                    self._audit.record(
                        "exit linked biometrically",
                        "ok",
                        None,
                        "admission",
                        admission_id,
                        {"score": f"{float(scores[best]):.4f}", "model": self._engine.model},
                        policy_version=policy.version,
                    )
                    return
        self._crossings.record_exit_without_entry(
            str(uuid.uuid4()), encounter.traveler_id, encounter.id, flight.id, day, self._clock()
        )

    # --- reading -------------------------------------------------------------------------
    def crossings(self, actor: Principal, traveler_id: str) -> dict[str, Any]:
        if not actor.can(Permission.CROSSINGS_READ):
            raise PermissionDeniedError("this role may not read a traveler's crossings")
        encounters = self._crossings.encounters_of(traveler_id)
        admissions = self._crossings.admissions_of(traveler_id)
        if not encounters and not admissions:
            raise NotFoundError("no crossings are recorded for this traveler")
        today = self._clock().date()
        return {
            "traveler_ref": traveler_id,
            "entries": [_encounter(e) for e in encounters if e.direction is Direction.ENTRY],
            "exits": [_encounter(e) for e in encounters if e.direction is Direction.EXIT],
            "admissions": [_admission(a, today) for a in admissions],
        }

    def update_admission(
        self, actor: Principal, admission_id: str, admission_class: str, until: date | None
    ) -> dict[str, Any]:
        """An officer records the class and end of a stay from the arrival record."""
        if not actor.can(Permission.ADMISSION_WRITE):
            raise PermissionDeniedError("this role may not change admissions")
        cleaned = admission_class.strip().upper()
        if not cleaned or len(cleaned) > 16 or not cleaned.replace("-", "").isalnum():
            raise InvalidInputError("class of admission: 1-16 letters and digits (e.g. B2, F1)")
        updated = self._crossings.update_admission(admission_id, cleaned, until)
        if updated is None:
            raise NotFoundError(f"admission {admission_id} does not exist")
        self._audit.record(
            "admission update", "ok", actor, "admission", admission_id, {"class": cleaned}
        )
        return _admission(updated, self._clock().date())

    def overstays(self, actor: Principal, as_of: date, days: int = 365) -> dict[str, Any]:
        """In-country overstays (open, past admitted-until plus grace), out-of-country
        overstays (left after admitted-until) in the ``days`` before ``as_of``, exit
        confirmation by flight, port, carrier and day, and exits without an entry."""
        if not actor.can(Permission.OVERSTAY_REPORT):
            raise PermissionDeniedError("this role may not read the overstay report")
        policy = self._policies.in_force(
            datetime.combine(as_of, datetime.min.time(), self._clock().tzinfo)
        )
        grace = policy.admission.grace_days
        since = as_of - timedelta(days=days)
        in_country = self._crossings.in_country_overstays(as_of - timedelta(days=grace))
        out_of_country = self._crossings.out_of_country_overstays(since, as_of)
        start = datetime.combine(since, datetime.min.time(), self._clock().tzinfo)
        end = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), self._clock().tzinfo)
        flights = self._crossings.exit_confirmations(start, end)
        identities = self._crossings.traveler_identities(
            [a.traveler_id for a in (*in_country, *out_of_country) if a.traveler_id]
        )
        report = {
            "as_of": as_of.isoformat(),
            "grace_days": grace,
            "policy_version": policy.version,
            "in_country": [_row(a, as_of, identities) for a in in_country],
            "out_of_country": [_row(a, as_of, identities) for a in out_of_country],
            "exit_confirmation": _confirmation_rates(flights),
            "exits_without_entry": [
                {"traveler_ref": t, "exited_on": d.isoformat(), "exit_flight": f}
                for t, d, f in self._crossings.exits_without_entry(since, as_of)
            ],
        }
        self._audit.record(
            "overstay report",
            "ok",
            actor,
            "report",
            None,
            {"in_country": len(in_country), "out_of_country": len(out_of_country)},
        )
        return report


def _row(admission: Admission, as_of: date, identities: dict[str, TravelerIdentity]) -> OverstayRow:
    identity = identities.get(admission.traveler_id or "")
    return OverstayRow(
        traveler_ref=admission.traveler_id or "",
        surname=identity.surname if identity else "",
        given_names=identity.given_names if identity else "",
        nationality=identity.nationality if identity else "",
        document=(
            f"{identity.document.issuing_state} {identity.document.number}" if identity else ""
        ),
        admission_class=admission.admission_class,
        admitted_on=admission.admitted_on,
        admitted_until=admission.admitted_until,
        exited_on=admission.exited_on,
        days_over=days_over(admission, as_of),
    )


def _encounter(encounter: Encounter) -> dict[str, Any]:
    return {
        "encounter_id": encounter.id,
        "flight_id": encounter.flight_id,
        "occurred_at": encounter.occurred_at.isoformat(),
        "method": encounter.method.value,
        "score": encounter.score,
    }


def _admission(admission: Admission, today: date) -> dict[str, Any]:
    return {
        "admission_id": admission.id,
        "class": admission.admission_class or None,
        "admitted_on": admission.admitted_on.isoformat() if admission.admitted_on else None,
        "admitted_until": (
            admission.admitted_until.isoformat() if admission.admitted_until else None
        ),
        "exited_on": admission.exited_on.isoformat() if admission.exited_on else None,
        "exit_link": admission.link.value if admission.link else None,
        "exit_link_score": admission.link_score,
        "exit_without_entry": admission.exit_without_entry,
        "days_over": days_over(admission, today),
    }


def _confirmation_rates(flights: list[Any]) -> dict[str, list[dict[str, Any]]]:
    def rate(done: int, total: int) -> float | None:
        return None if total == 0 else round(done / total, 4)

    groups: dict[str, dict[str, list[int]]] = {"port": {}, "carrier": {}, "day": {}}
    by_flight = []
    for f in flights:
        by_flight.append(
            {
                "flight_id": f.flight_id,
                "flight": f"{f.carrier} {f.number}",
                "port": f.port,
                "departure": f.departure.isoformat(),
                "travelers": f.travelers,
                "confirmed": f.confirmed,
                "rate": rate(f.confirmed, f.travelers),
            }
        )
        for kind, key in (
            ("port", f.port),
            ("carrier", f.carrier),
            ("day", f.departure.date().isoformat()),
        ):
            totals = groups[kind].setdefault(key, [0, 0])
            totals[0] += f.confirmed
            totals[1] += f.travelers
    result: dict[str, list[dict[str, Any]]] = {"by_flight": by_flight}
    for kind, per_key in groups.items():
        result[f"by_{kind}"] = [
            {kind: key, "travelers": total, "confirmed": done, "rate": rate(done, total)}
            for key, (done, total) in sorted(per_key.items())
        ]
    return result
