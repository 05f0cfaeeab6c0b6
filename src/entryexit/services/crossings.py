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
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics.compare import Template, l2_normalise
from entryexit.documents.text import excerpt
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
from entryexit.domain.policy import OperatingPoint
from entryexit.errors import (
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from entryexit.services.audit import AuditTrail
from entryexit.services.gallery import GalleryService
from entryexit.services.jobs import Leadership
from entryexit.services.policies import PolicyService
from entryexit.services.ports import (
    Clock,
    FaceAnalyser,
    NewAdmission,
    TravelerIdentity,
)
from entryexit.services.thresholds import OperatingThresholds
from entryexit.services.unit_of_work import (
    OutboxMessage,
    ReportQueries,
    UnitOfWork,
    UnitOfWorkFactory,
    in_transaction,
)

logger = logging.getLogger(__name__)

# The bounded search looks at this many open stays (newest first) when the document finds none.
LINK_SEARCH_LIMIT = 200_000
PERMANENT_RESIDENT_CLASS = "LPR"
ADMISSION_WORK = "admission"
PARK_AFTER_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class FailedCrossing:
    """Admission work the worker gave up on, as an officer sees it (identifiers only)."""

    id: str
    direction: str
    flight_id: str
    flight: str
    traveler_ref: str
    encounter_id: str
    occurred_at: datetime
    attempts: int
    parked_at: datetime

    @property
    def exit_not_linked(self) -> bool:
        return self.direction == Direction.EXIT.value


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


# An overstay report is about stays: a day decades away is a mistake (and a day near the
# calendar's end would overflow the report's date arithmetic).
MAX_REPORT_SPAN = timedelta(days=3660)


class CrossingService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        reports: ReportQueries,
        engine: FaceAnalyser,
        clock: Clock,
        galleries: GalleryService,
        policies: PolicyService,
        thresholds: OperatingThresholds,
        audit: AuditTrail,
        leadership: Leadership | None = None,
    ) -> None:
        self._uow = uow
        self._leadership = leadership
        self._reports = reports
        self._engine = engine
        self._clock = clock
        self._galleries = galleries
        self._policies = policies
        self._thresholds = thresholds
        self._audit = audit
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._drain_lock = threading.Lock()

    # --- recording -----------------------------------------------------------------------
    def enqueue(
        self,
        uow: UnitOfWork,
        encounter: Encounter,
        flight: Flight,
        live: NDArray[np.float32] | None,
        /,
        frames: int = 1,
    ) -> None:
        """Hand the admission work for an encounter to the worker, in the encounter's own
        transaction (the outbox): a crash delays it, never loses it, and a bounded biometric
        search (for an exit on a new document) never delays the gate. ``frames``: how many
        frames the live template fuses (its 1:N threshold depends on it)."""
        uow.outbox.add(
            OutboxMessage(
                id=str(uuid.uuid4()),
                kind=ADMISSION_WORK,
                payload={
                    "encounter_id": encounter.id,
                    "traveler_id": encounter.traveler_id,
                    "flight_id": flight.id,
                    "method": encounter.method.value,
                    "occurred_at": encounter.occurred_at.isoformat(),
                    "frames": str(frames),
                },
                created_at=self._clock(),
                template=None if live is None else Template(live, "").to_bytes(),
            )
        )
        uow.after_commit(self._wake.set)

    def start_worker(self, poll_seconds: float = 5.0) -> None:
        """Record admissions in the background; also picks up work left by a crash or by
        another process."""
        if self._worker is not None:
            return
        self._stop.clear()

        def drain() -> dict[str, int]:
            applied = 0
            while (done := self.process_pending()) and not self._stop.is_set():
                applied += done
            return {"applied": applied}

        def run() -> None:
            while not self._stop.is_set():
                try:
                    # In a fleet only the leader drains (one at a time across every process);
                    # the others take the lead when it dies, at their next round.
                    if self._leadership is None:
                        drain()
                    else:
                        self._leadership.run(drain)
                except Exception as exc:  # logged without personal data; retried next round
                    logger.error("admission worker: %s", type(exc).__name__)
                self._wake.wait(poll_seconds)
                self._wake.clear()
            if self._leadership is not None:
                self._leadership.release()

        self._worker = threading.Thread(target=run, name="admissions", daemon=True)
        self._worker.start()

    def stop_worker(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=30)
            self._worker = None

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until every queued encounter is recorded (tests, orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while True:
            self.process_pending()
            with self._uow(read_only=True) as uow:
                if uow.outbox.count_pending() == 0:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("admission work is still pending")
            time.sleep(0.02)

    def process_pending(self, limit: int = 50) -> int:
        """Record up to ``limit`` queued encounters, each in one transaction with the removal
        of its outbox message (so each is applied exactly once). A message whose work fails
        is counted, and parked after a few attempts, so that it cannot hold up the others.
        Returns how many were applied."""
        done = 0
        with self._drain_lock:
            for _ in range(limit):
                with self._uow(read_only=True) as uow:
                    pending = uow.outbox.pending_ids(ADMISSION_WORK, 1)
                if not pending:
                    break
                message_id = pending[0]
                try:
                    in_transaction(self._uow, partial(self._process_one, message_id=message_id))
                except Exception as exc:  # one bad message must not stop every admission
                    parked = in_transaction(
                        self._uow,
                        partial(
                            self._record_failure,
                            message_id=message_id,
                            error=type(exc).__name__,
                        ),
                    )
                    logger.error(
                        "admission work %s failed (%s)%s",
                        message_id,
                        type(exc).__name__,
                        "; parked for an operator" if parked else "; will retry",
                    )
                    if not parked:
                        break  # retried on the next round, after the others have had a turn
                    continue
                done += 1
        return done

    def _record_failure(self, uow: UnitOfWork, message_id: str, error: str) -> bool:
        """Count the failure; once the message is parked, the crossing it carries is an
        officer's alert (the console's alerts page) and an audit event, in the same
        transaction: an exit that was not linked to its stay must not look like an
        overstay to anyone without a person having seen why."""
        parked = uow.outbox.record_failure(message_id, PARK_AFTER_ATTEMPTS, self._clock())
        if parked:
            work = next(
                (w for w in uow.outbox.parked(ADMISSION_WORK, 1000) if w.id == message_id), None
            )
            payload = work.payload if work is not None else {}
            flight = uow.flights.get(payload.get("flight_id", ""))
            self._audit.record(
                uow,
                "admission work failed",
                "parked",
                None,
                "encounter",
                payload.get("encounter_id"),
                {
                    "direction": flight.direction.value if flight else "unknown",
                    "flight": payload.get("flight_id", ""),
                    "error": error,
                    "attempts": PARK_AFTER_ATTEMPTS,
                },
            )
        return parked

    # --- failed admission work: an officer's alert -------------------------------------
    def failed_crossings(self, actor: Principal, limit: int = 200) -> list[FailedCrossing]:
        """Crossings whose admission work was given up on: exits not linked to the stay
        they end (the traveler would read as an overstay) and entries with no stay opened."""
        actor.require(Permission.ALERT_READ)
        with self._uow(read_only=True) as uow:
            parked = uow.outbox.parked(ADMISSION_WORK, limit)
            flights = {
                flight_id: uow.flights.get(flight_id)
                for flight_id in {w.payload.get("flight_id", "") for w in parked}
            }
        failed = []
        for work in parked:
            flight = flights.get(work.payload.get("flight_id", ""))
            failed.append(
                FailedCrossing(
                    id=work.id,
                    direction=flight.direction.value if flight else "unknown",
                    flight_id=work.payload.get("flight_id", ""),
                    flight=f"{flight.carrier} {flight.number}" if flight else "",
                    traveler_ref=work.payload.get("traveler_id", ""),
                    encounter_id=work.payload.get("encounter_id", ""),
                    occurred_at=datetime.fromisoformat(work.payload["occurred_at"])
                    if "occurred_at" in work.payload
                    else work.created_at,
                    attempts=work.attempts,
                    parked_at=work.parked_at,
                )
            )
        return failed

    def retry_failed(self, actor: Principal, work_id: str) -> None:
        """An officer puts failed admission work back in the queue (once its cause, such as
        a missing key file, is fixed); the worker tries it again at once."""
        actor.require(Permission.ADMISSION_WRITE)

        def retry(uow: UnitOfWork) -> None:
            if not uow.outbox.retry(work_id):
                raise NotFoundError(f"no failed crossing {excerpt(work_id)} is waiting")
            self._audit.record(uow, "admission work retry", "ok", actor, "outbox", work_id)
            uow.after_commit(self._wake.set)

        in_transaction(self._uow, retry)

    def _process_one(self, uow: UnitOfWork, message_id: str) -> bool:
        pending = [m for m in uow.outbox.pending(ADMISSION_WORK, 1) if m.id == message_id]
        if not pending:
            return False  # done by another worker meanwhile
        message = pending[0]
        flight = uow.flights.get(message.payload["flight_id"])
        if flight is not None:
            live = (
                None
                if message.template is None
                else Template.from_bytes(message.template, "", self._engine.dimension).vector
            )
            # Work queued before the payload carried it: a frame count not known.
            frames = message.payload.get("frames")
            self._record_now(
                uow,
                _encounter_of(message, flight),
                flight,
                live,
                int(frames) if frames is not None and frames.isdigit() else None,
            )
        uow.outbox.complete(message.id, self._clock())
        return True

    def _record_now(
        self,
        uow: UnitOfWork,
        encounter: Encounter,
        flight: Flight,
        live: NDArray[np.float32] | None,
        frames: int | None = 1,
    ) -> None:
        """Open or close a stay for a non-citizen's encounter. ``live`` is the capture's
        template for a biometric encounter (fused from ``frames`` frames, None: unknown);
        opt-outs never contribute a template."""
        profile = uow.travelers.profile(encounter.traveler_id)
        if profile.citizenship_class in (None, CitizenshipClass.CITIZEN):
            return
        template, photos = self._template_for(encounter, flight, live, frames)
        day = encounter.occurred_at.date()
        if flight.direction is Direction.ENTRY:
            rules = self._policies.in_force(encounter.occurred_at).admission
            resident = profile.citizenship_class is CitizenshipClass.PERMANENT_RESIDENT
            admission_class = PERMANENT_RESIDENT_CLASS if resident else rules.default_class
            uow.admissions.open(
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
                    template_photos=photos,
                )
            )
            return
        self._close(uow, encounter, flight, template, frames if live is not None else 1, day)

    def _template_for(
        self,
        encounter: Encounter,
        flight: Flight,
        live: NDArray[np.float32] | None,
        frames: int | None,
    ) -> tuple[NDArray[np.float32] | None, int | None]:
        """The encounter's template and how many photos it fuses: a single-frame capture is
        one photo; a fused burst is not calibrated as an entry (None: the strictest
        threshold); an enrolled reference counts its reference photos."""
        if encounter.method is EncounterMethod.OPT_OUT:
            return None, None
        if live is not None:
            return live, 1 if frames == 1 else None
        # A manual document check: the traveler's enrolled reference stands in.
        if not flight.staged:
            return None, None
        gallery = self._galleries.gallery_for(flight)
        if encounter.traveler_id in gallery.traveler_ids:
            row = gallery.traveler_ids.index(encounter.traveler_id)
            photos = gallery.reference_counts[row] if gallery.reference_counts else None
            return np.asarray(gallery.matrix[row], dtype=np.float32), photos
        return None, None

    def _close(
        self,
        uow: UnitOfWork,
        encounter: Encounter,
        flight: Flight,
        template: NDArray[np.float32] | None,
        probe_frames: int | None,
        day: date,
    ) -> None:
        own = uow.admissions.open_of(encounter.traveler_id)
        if own is not None:
            uow.admissions.close(
                own.id, encounter.id, flight.id, encounter.traveler_id, day, ExitLink.DOCUMENT, None
            )
            return
        if template is not None:
            candidates = uow.admissions.open_templates(
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
                threshold = self._link_threshold(
                    policy.matching,
                    probe_frames,
                    uow.admissions.template_photos(candidates[best][0]),
                )
                if float(scores[best]) >= threshold:
                    admission_id = candidates[best][0]
                    uow.admissions.close(
                        admission_id,
                        encounter.id,
                        flight.id,
                        encounter.traveler_id,
                        day,
                        ExitLink.BIOMETRIC,
                        float(scores[best]),
                    )
                    self._audit.record(
                        uow,
                        "exit linked biometrically",
                        "ok",
                        None,
                        "admission",
                        admission_id,
                        {"score": f"{float(scores[best]):.4f}", "model": self._engine.model},
                        policy_version=policy.version,
                    )
                    return
        uow.admissions.record_exit_without_entry(
            str(uuid.uuid4()), encounter.traveler_id, encounter.id, flight.id, day, self._clock()
        )

    def _link_threshold(
        self, point: OperatingPoint, probe_frames: int | None, entry_photos: int | None
    ) -> float:
        """The gate's rule for the exit capture against the best stay's entry template: a
        single frame is held to the threshold of the photos the entry template fuses (unknown:
        the strictest); a fused exit burst to its frame count's threshold, or the strictest
        single-frame one where that count is not calibrated; never laxer than the gate."""
        if probe_frames == 1:
            return self._thresholds.gallery_threshold(point, 1, entry_photos)
        strictest = self._thresholds.gallery_threshold(point)
        if probe_frames is None:
            return strictest
        try:
            return max(strictest, self._thresholds.gallery_threshold(point, probe_frames))
        except ConfigurationError:
            return strictest

    # --- reading -------------------------------------------------------------------------
    def crossings(self, actor: Principal, traveler_id: str) -> dict[str, Any]:
        if not actor.can(Permission.CROSSINGS_READ):
            raise PermissionDeniedError("this role may not read a traveler's crossings")
        with self._uow(read_only=True) as uow:
            encounters = uow.captures.encounters_of_traveler(traveler_id)
            admissions = uow.admissions.of_traveler(traveler_id)
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

        def update(uow: UnitOfWork) -> Admission:
            updated = uow.admissions.update(admission_id, cleaned, until)
            if updated is None:
                raise NotFoundError(f"admission {excerpt(admission_id)} does not exist")
            self._audit.record(
                uow, "admission update", "ok", actor, "admission", admission_id, {"class": cleaned}
            )
            return updated

        return _admission(in_transaction(self._uow, update), self._clock().date())

    def overstays(self, actor: Principal, as_of: date, days: int = 365) -> dict[str, Any]:
        """In-country overstays (open, past admitted-until plus grace), out-of-country
        overstays (left after admitted-until) in the ``days`` before ``as_of``, exit
        confirmation by flight, port, carrier and day, and exits without an entry."""
        if not actor.can(Permission.OVERSTAY_REPORT):
            raise PermissionDeniedError("this role may not read the overstay report")
        today = self._clock().date()
        if not today - MAX_REPORT_SPAN <= as_of <= today + MAX_REPORT_SPAN:
            raise InvalidInputError(
                f"as_of must be within {MAX_REPORT_SPAN.days} days of today ({today})"
            )
        policy = self._policies.in_force(
            datetime.combine(as_of, datetime.min.time(), self._clock().tzinfo)
        )
        grace = policy.admission.grace_days
        since = as_of - timedelta(days=days)
        in_country = self._reports.in_country_overstays(as_of - timedelta(days=grace))
        out_of_country = self._reports.out_of_country_overstays(since, as_of)
        start = datetime.combine(since, datetime.min.time(), self._clock().tzinfo)
        end = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), self._clock().tzinfo)
        flights = self._reports.exit_confirmations(start, end)
        identities = self._reports.traveler_identities(
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
                for t, d, f in self._reports.exits_without_entry(since, as_of)
            ],
        }
        self._audit.record_alone(
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


def _encounter_of(message: OutboxMessage, flight: Flight) -> Encounter:
    """What the admission work needs of the encounter the message was written with."""
    payload = message.payload
    return Encounter(
        id=payload["encounter_id"],
        flight_id=flight.id,
        traveler_id=payload["traveler_id"],
        direction=flight.direction,
        method=EncounterMethod(payload["method"]),
        gate="",
        device="",
        occurred_at=datetime.fromisoformat(payload["occurred_at"]),
        score=None,
        model=None,
        policy_version="",
        capture_id=None,
    )
