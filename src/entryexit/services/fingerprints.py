"""Fingerprints, the officer's second modality: enrol a non-citizen's fingers, and confirm a
traveler 1:1 against the prints enrolled for their document.

A gate never sees this step (a gate asking for prints would reveal citizenship): both use
cases need an officer's permission. Prints arrive as images (PNG, TIFF or WSQ at a stated
resolution) or as ISO/IEC 19794-2:2005 minutiae records; only the minutiae template is
enrolled, sealed under the traveler's data key, never the image. The live prints an officer
submits on a console case are kept (policy ``keep_case_prints``), sealed under the checked
traveler's data key and bound to that officer, for the case's evidence period, so that the
case page can draw them with the minutiae the matcher paired.
"""

from __future__ import annotations

import functools
import logging
import re
import struct
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar, cast

import numpy as np

from entryexit.biometrics.decode import DecodeSlots, slot_owner
from entryexit.biometrics.fingerprints import (
    FINGERPRINT_CALIBRATION,
    QUALITY_UNKNOWN,
    FingerFusionRule,
    FingerPosition,
    FingerprintEngine,
    FingerprintImage,
    FingerprintTemplate,
    decode_fingerprint,
    fuse_fingers,
)
from entryexit.documents.iso19794_2 import parse_finger_minutiae_record
from entryexit.domain.access import Permission, Principal
from entryexit.domain.fingerprints import (
    CombinedEvidence,
    FingerprintDecision,
    FingerprintRules,
    check_finger,
    combine_face_and_finger,
    decide,
)
from entryexit.domain.model import DocumentKey, EncounterMethod, Flight
from entryexit.domain.policy import DataKind, Policy, age_on
from entryexit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    WorkerUnavailableError,
)
from entryexit.services.audit import AuditTrail
from entryexit.services.citizen_prints import exempt_travelers, says_no_prints
from entryexit.services.console import OPEN_DECISIONS
from entryexit.services.encounters import new_encounter
from entryexit.services.flights import FlightService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import (
    AlertRecord,
    CasePrint,
    Clock,
    StoredFingerprint,
    TravelerProfile,
    WatchlistEntry,
)
from entryexit.services.unit_of_work import (
    EncounterHook,
    UnitOfWork,
    UnitOfWorkFactory,
    in_transaction,
)
from entryexit.services.watchlist import GENERATION as WATCHLIST_GENERATION

logger = logging.getLogger(__name__)

# Enough for both hands; more in one request is a mistake or an attack.
MAX_PRINTS = 10
# The fused score's threshold for a target FAR, for the engine in use.
ThresholdFor = Callable[[str, float], float]
# Runs work off the caller's thread (a daemon thread by default; tests may run it at once).
Background = Callable[[Callable[[], None]], None]
_Method = TypeVar("_Method", bound=Callable[..., Any])


def _in_a_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="fingerprint-preparation", daemon=True).start()


class FingerprintSlots:
    """At most ``count`` prints decoded, extracted or compared at once, over all requests
    (``with slots.taken(): ...``), as the face engine's decode slots bound faces, and shared
    as fairly (:class:`~entryexit.biometrics.decode.DecodeSlots`: a freed slot goes to the
    waiting officer holding fewest): one print of 255 minutiae costs seconds of CPU and
    hundreds of MiB (probe F2), and one officer's flood of them queues others' prints only
    behind those it is running (review L11). A request waits at most ``wait`` seconds for its
    slots, in all (``with slots.request(): ...`` around the use case: each slot waits only for
    what is left of that one wait, review L13), then is refused (503, Retry-After) with
    nothing done; background work waits its turn."""

    def __init__(self, count: int = 2, wait: float = 10.0) -> None:
        if count < 1:
            raise ValueError("at least one fingerprint slot is needed")
        self.count, self.wait = count, wait
        self._fair = DecodeSlots(count)
        self._deadline: ContextVar[float | None] = ContextVar("fingerprint_deadline", default=None)

    @contextmanager
    def request(self, owner: str | None = None) -> Iterator[None]:
        """One request's slots share one wait and are taken for ``owner`` (an officer's key);
        a nested request keeps the outer deadline and owner."""
        if self._deadline.get() is not None:
            yield
            return
        token = self._deadline.set(time.monotonic() + self.wait)
        try:
            with slot_owner(owner):
                yield
        finally:
            self._deadline.reset(token)

    @contextmanager
    def taken(self, background: bool = False) -> Iterator[None]:
        deadline = self._deadline.get()
        if background:
            timeout: float | None = None
        elif deadline is None:
            timeout = self.wait
        else:
            timeout = max(0.0, deadline - time.monotonic())
        if not self._fair.acquire(timeout):
            raise WorkerUnavailableError(
                f"all {self.count} fingerprint slots are busy; send the prints again shortly",
                retry_after=max(1.0, self.wait),
            )
        try:
            yield
        finally:
            self._fair.release()


def _one_wait(method: _Method) -> _Method:
    """The use case's slots share one wait and are its officer's
    (:meth:`FingerprintSlots.request`)."""

    @functools.wraps(method)
    def within(self: FingerprintService, actor: Principal, *args: Any, **kwargs: Any) -> Any:
        with self._slots.request(actor.key_id):
            return method(self, actor, *args, **kwargs)

    return cast(_Method, within)


class PrintFormat(StrEnum):
    IMAGE = "image"
    ISO_19794_2 = "iso19794-2"


@dataclass(frozen=True, slots=True)
class SubmittedPrint:
    """One finger as a scanner sends it: an image at ``ppi``, or a minutiae record."""

    finger: int
    data: bytes
    format: PrintFormat = PrintFormat.IMAGE
    ppi: float | None = None


@dataclass(frozen=True, slots=True)
class EnrolledFinger:
    finger: int
    quality: int | None


@dataclass(frozen=True, slots=True)
class FingerprintEnrolment:
    traveler_id: str
    engine: str
    fingers: tuple[EnrolledFinger, ...]


@dataclass(frozen=True, slots=True)
class FingerScore:
    finger: int
    score: float


@dataclass(frozen=True, slots=True)
class FingerprintVerification:
    """The officer's 1:1 result: fingers compared (those submitted that are enrolled), each
    finger's score, their fusion and the threshold it met or not."""

    decision: FingerprintDecision
    traveler_id: str
    engine: str
    fingers: tuple[FingerScore, ...]
    fused_score: float
    threshold: float
    fusion: FingerFusionRule
    # The encounter a match recorded on the flight named (None: no flight, no match, or the
    # traveler is not on that flight's manifest, or was already recorded on it).
    encounter_id: str | None = None
    # The console case the match closed (its capture id), when the check was made from one.
    resolved_case: str | None = None
    # Watchlist alerts the live prints raised (for an officer to disposition).
    alerts: int = 0


@dataclass(frozen=True, slots=True)
class FingerprintCandidate:
    """A traveler on the flight whose enrolled prints resemble the live ones: a proposal for
    the officer to check against that traveler's document, never a decision."""

    traveler_id: str
    fused_score: float
    fingers: tuple[FingerScore, ...]
    # Whether the fused score reaches the 1:1 threshold (it may still be a stranger: a
    # search over N travelers gives a stranger N chances).
    meets_threshold: bool


@dataclass(frozen=True, slots=True)
class FingerprintSearch:
    candidates: tuple[FingerprintCandidate, ...]
    searched: int
    engine: str
    threshold: float
    alerts: int = 0


@dataclass(frozen=True, slots=True)
class PrintSide:
    """One side of a drawn comparison: the 500 ppi frame and the minutiae in it (x, y, angle
    in radians with y down), and the print's quality (NFIQ 2, None where not measured)."""

    width: int
    height: int
    minutiae: tuple[tuple[float, float, float], ...]
    quality: int | None


@dataclass(frozen=True, slots=True)
class CasePrintView:
    """A live finger kept on a case, against the same finger enrolled: the score the check
    gave, and the minutiae the matcher paired (row in ``live``, row in ``enrolled``, the
    pair's strength 0..1: a stranger's prints pair as many minutiae, weakly).
    ``enrolled`` is None once that finger is no longer enrolled (purged or re-enrolled by
    another engine); enrolled images are never kept, so that side is its minutiae only."""

    id: str
    finger: int
    score: float
    checked_at: datetime
    live: PrintSide
    enrolled: PrintSide | None
    pairs: tuple[tuple[int, int, float], ...]
    has_image: bool

    @property
    def pair_strength(self) -> float:
        """The mean strength of the pairs (0 without any)."""
        return sum(p[2] for p in self.pairs) / len(self.pairs) if self.pairs else 0.0


# How many candidates a search proposes, best first.
MAX_CANDIDATES = 5
# A watchlist entry's prints are compared at the rarest calibrated false match rate: a list of
# N entries then gives about N x 1e-4 false alerts per submission (each read by an officer).
WATCHLIST_FAR = 1e-4
WATCHLIST_SOURCE = "fingerprint"
# Why enrolled prints were replaced: a code (e.g. ``injured_finger``), never free text, since
# it is kept in the audit log.
REASON_CODE = re.compile(r"[a-z_]{3,40}")
# Decoded references kept between searches: the engine caches its comparison structures
# (about 12 ms a print to build) by template identity, so a flight's prints are prepared once.
REFERENCE_CACHE = 20_000


class FingerprintService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        engine: Callable[[], FingerprintEngine],
        clock: Clock,
        policies: PolicyService,
        audit: AuditTrail,
        threshold_for: ThresholdFor,
        fusion: FingerFusionRule = FingerFusionRule.MEAN,
        on_encounter: EncounterHook | None = None,
        max_watchlist_print_entries: int = 500,
        background: Background = _in_a_thread,
        face_calibration: Callable[[], Mapping[float, float] | None] = lambda: None,
        finger_calibration: Callable[[str], Mapping[float, float]] = (
            lambda engine: FINGERPRINT_CALIBRATION[engine]
        ),
        home_state: str = "UTO",
        slots: FingerprintSlots | None = None,
    ) -> None:
        self._slots = slots or FingerprintSlots()
        # The engine is opened on first use: a deployment without fingerprints never loads
        # the native library.
        self._engine_factory = engine
        self._engine: FingerprintEngine | None = None
        self._max_watchlist_print_entries = max_watchlist_print_entries
        self._uow = uow
        self._clock = clock
        self._policies = policies
        self._audit = audit
        self._threshold_for = threshold_for
        self._fusion = fusion
        self._on_encounter = on_encounter
        self._references: OrderedDict[tuple[str, datetime], FingerprintTemplate] = OrderedDict()
        self._references_lock = threading.Lock()
        self._background = background
        self._face_calibration = face_calibration
        self._finger_calibration = finger_calibration
        self._home_state = home_state
        self._preparations: dict[str, threading.Event] = {}
        self._watchlist: dict[str, tuple[bytes, dict[int, FingerprintTemplate]]] = {}

    @property
    def engine(self) -> FingerprintEngine:
        if self._engine is None:
            self._engine = self._engine_factory()
        return self._engine

    # --- enrolment -----------------------------------------------------------------------
    @_one_wait
    def enrol(
        self,
        actor: Principal,
        document: DocumentKey,
        prints: Sequence[SubmittedPrint],
        reason: str | None = None,
    ) -> FingerprintEnrolment:
        """Enrol the fingers the policy asks of this traveler. The document must be known
        (on a manifest: its class and birth date decide); a traveler the policy takes no
        prints from (citizens, the exempt ages) is refused, and nothing is stored. A national
        of the home state, or the holder of its passport, is a citizen whatever class a
        manifest stored.

        A finger already enrolled is replaced only by a supervisor giving a ``reason`` code,
        audited as a re-enrolment: an officer swapping in someone else's prints would make the
        impostor match and the holder fail, so it is refused (409)."""
        actor.require(Permission.FINGERPRINT_ENROL)
        if reason is not None and not REASON_CODE.fullmatch(reason):
            raise InvalidInputError("reason must be a code of 3-40 lower-case letters or '_'")
        _check_count(prints)
        now = self._clock()
        policy = self._policies.in_force(now)
        rules = policy.fingerprints
        with self._uow(read_only=True) as uow:
            profile, citizen = self._profile(uow, document)
            disputed = self._disputed(uow, document, rules, now.date())
        citizenship, born = profile.citizenship_class, profile.date_of_birth
        age = age_on(born, now.date()) if born else None
        if citizen or not rules.takes_prints(citizenship, age) or disputed == "":
            raise ConflictError(
                f"the policy in force ({policy.version}) takes no fingerprints from this traveler"
            )
        if disputed is not None:
            raise ConflictError(
                "the traveler's details are disputed between carriers, and one side's would"
                f" take no prints: resolve manifest conflict {disputed} first"
            )
        assert citizenship is not None  # takes_prints says so
        wanted = set(rules.fingers)
        unexpected = sorted({p.finger for p in prints} - wanted)
        if unexpected:
            raise InvalidInputError(
                f"finger {unexpected[0]} is not one the policy takes ({sorted(wanted)})"
            )
        templates = [self._template(p) for p in prints]
        keep = rules.retention(citizenship)
        engine = self.engine.key

        def store(uow: UnitOfWork) -> str:
            # Again under the write lock: a manifest that showed the traveler to be a citizen
            # (or changed the class) while the prints were extracted deleted nothing, since
            # there was nothing yet; storing now would keep a citizen's prints.
            current, citizen_now = self._profile(uow, document)
            if (
                citizen_now
                or (current.citizenship_class, current.date_of_birth) != (citizenship, born)
                or self._disputed(uow, document, rules, now.date()) is not None
            ):
                raise ConflictError(
                    "the traveler's details changed while the prints were read; enrol again"
                )
            submitted = {int(t.finger) for t in templates}
            replaced = sorted(
                submitted & {f.finger for f in uow.fingerprints.of_document(document, engine)}
            )
            if replaced and not actor.can(Permission.FINGERPRINT_REENROL):
                raise ConflictError(
                    f"finger {replaced[0]} is already enrolled for this document; replacing"
                    " enrolled prints is a supervisor's step, with a reason"
                )
            if replaced and reason is None:
                raise InvalidInputError("replacing enrolled prints needs a reason code")
            traveler_id = ""
            for template in templates:
                _, traveler_id = uow.fingerprints.enrol(
                    document,
                    int(template.finger),
                    engine,
                    template.to_bytes(),
                    template.quality,
                    now,
                    now + keep,
                )
            details = {"fingers": ",".join(str(int(t.finger)) for t in templates), "engine": engine}
            if replaced:
                details |= {"replaced": ",".join(map(str, replaced)), "reason": str(reason)}
            self._audit.record(
                uow,
                "fingerprint re-enrol" if replaced else "fingerprint enrol",
                "ok",
                actor,
                "traveler",
                traveler_id,
                details,
                policy_version=policy.version,
            )
            return traveler_id

        traveler_id = in_transaction(self._uow, store)
        return FingerprintEnrolment(
            traveler_id,
            engine,
            tuple(EnrolledFinger(int(t.finger), t.quality) for t in templates),
        )

    def _citizens(
        self, uow: UnitOfWork, traveler_ids: set[str], sealed: bool = True
    ) -> frozenset[str]:
        """Those of ``traveler_ids`` who are citizens (the one rule enrolment applies, the
        purge's on clear columns): one query for the batch, then (``sealed``) the sealed
        nationality of the rest only."""
        return uow.travelers.citizens(traveler_ids, self._home_state, sealed=sealed)

    def _disputed(
        self, uow: UnitOfWork, document: DocumentKey, rules: FingerprintRules, today: date
    ) -> str | None:
        """Strictest wins while details are disputed (probe C1): the id of an open manifest
        conflict whose proposed details would make the policy take no prints from the
        document's traveler; "" when details in force on another of their documents would;
        None when every side's details allow prints. Details the agency set decide alone (no
        proposal against them is counted)."""
        traveler = uow.travelers.traveler_for_document(document)
        if traveler is None:
            return None
        for details in uow.travelers.stated_details({traveler}, proposed=True):
            if says_no_prints(rules, details, today):
                return details.conflict_id or ""
        return None

    def _profile(self, uow: UnitOfWork, document: DocumentKey) -> tuple[TravelerProfile, bool]:
        """The document's traveler's profile, and whether they are a citizen."""
        traveler = uow.travelers.traveler_for_document(document)
        if traveler is None:
            raise NotFoundError("this document is on no manifest: enrol prints once it is")
        return uow.travelers.profile(traveler), bool(self._citizens(uow, {traveler}))

    # --- the officer's 1:1 -----------------------------------------------------------------
    @_one_wait
    def verify(
        self,
        actor: Principal,
        document: DocumentKey,
        prints: Sequence[SubmittedPrint],
        flight_id: str | None = None,
        device: str = "",
        capture_id: str | None = None,
    ) -> FingerprintVerification:
        """Compare live prints with those enrolled for ``document``, finger by finger, and
        fuse the scores (mean of the engine's normalised scores: 0.18% two-finger EER against
        0.40% for the max, benchmarks/RESULTS.md). Fingers without an enrolled print are not
        compared; none in common is an error the officer can act on. With ``flight_id``, a
        match of a traveler on that flight's manifest is their biometric encounter (model:
        the fingerprint engine; score: the fused score), in the audit event's transaction.
        With ``capture_id`` (the check is made from that console case on ``flight_id``), the
        encounter is linked to the capture and the match closes the case as confirmed, in the
        same transaction; a no-match leaves the case open for the officer."""
        actor.require(Permission.FINGERPRINT_VERIFY)
        _check_count(prints)
        if capture_id is not None and flight_id is None:
            raise InvalidInputError("a case's fingerprint check names the case's flight")
        now = self._clock()
        policy = self._policies.in_force(now)
        with self._uow(read_only=True) as uow:
            if flight_id is not None:
                FlightService.served_in(uow, actor, flight_id)
            if capture_id is not None:
                _open_case(uow, capture_id, flight_id)
        engine = self.engine
        with self._uow(read_only=True) as uow:
            enrolled = {f.finger: f for f in uow.fingerprints.of_document(document, engine.key)}
            holders = {f.traveler_id for f in enrolled.values()}
            citizen = bool(self._citizens(uow, holders))
            exempt = bool(exempt_travelers(uow, holders, policy.fingerprints, now.date()))
        if not enrolled:
            raise NotFoundError("no fingerprints are enrolled for this document")
        if citizen:
            # Enrolled before the citizen rule, or before a manifest showed the class: never
            # compared (the retention purge deletes them).
            raise ConflictError(
                "this document's holder is a citizen: prints enrolled for them are not used"
                " (they are deleted at the next purge)"
            )
        if exempt:
            # Enrolled before the details in force said so (a birth date or class corrected,
            # an age passed): never compared; deleted once the agency's details say so.
            raise ConflictError(
                f"the policy in force ({policy.version}) takes no fingerprints from this"
                " document's holder by the details in force (age or class): prints enrolled"
                " for them are not used"
            )
        compared = [p for p in prints if p.finger in enrolled]
        if not compared:
            raise InvalidInputError(
                f"none of the fingers sent is enrolled (enrolled: {sorted(enrolled)})"
            )
        read = {p.finger: self._read(p) for p in prints}
        probes = {finger: template for finger, (template, _) in read.items()}
        scores = [self._score(probes[p.finger], enrolled[p.finger]) for p in compared]
        hits = self._watchlist_hits(probes) if flight_id is not None else []
        # Encoded before the transaction opens: what a case check may keep of each finger.
        kept_images = (
            {f: image.to_png() for f, (_, image) in read.items() if image is not None}
            if capture_id is not None and policy.fingerprints.keep_case_prints
            else {}
        )
        fused = fuse_fingers([s.score for s in scores], self._fusion)
        threshold = self._threshold_for(engine.key, policy.fingerprints.target_far)
        decision = decide(fused, threshold)
        traveler_id = next(iter(enrolled.values())).traveler_id

        def record(uow: UnitOfWork) -> tuple[str | None, str | None, int]:
            encounter_id = resolved = None
            if flight_id is not None and decision is FingerprintDecision.MATCH:
                if capture_id is not None:
                    _open_case(uow, capture_id, flight_id)
                encounter_id = self._record_encounter(
                    uow, flight_id, traveler_id, fused, device, now, policy, capture_id
                )
            if encounter_id is not None and capture_id is not None:
                if not uow.cases.resolve(capture_id, "confirmed", actor.key_id, now):
                    raise ConflictError("another officer resolved this case first")
                resolved = capture_id
            alerts = 0
            if flight_id is not None:  # an alert belongs to a flight; hits need one too
                # Only prints that are the document holder's name him: anyone's prints shown
                # with an innocent traveler's passport must not tie that traveler to the list.
                holder = traveler_id if decision is FingerprintDecision.MATCH else None
                alerts = self._raise_alerts(
                    uow, hits, flight_id, holder, capture_id, engine.key, policy, now
                )
            details = {"fingers": ",".join(str(s.finger) for s in scores), "engine": engine.key}
            if capture_id is not None:
                details["capture"] = capture_id
                details["encounter"] = encounter_id or ""
                kept = self._keep_case_prints(
                    uow,
                    actor,
                    capture_id,
                    traveler_id,
                    scores,
                    probes,
                    kept_images,
                    engine.key,
                    policy,
                    now,
                )
                details["kept"] = str(kept)
            self._audit.record(
                uow,
                "fingerprint verify",
                decision.value,
                actor,
                "flight" if flight_id else "traveler",
                flight_id or traveler_id,
                details,
                policy_version=policy.version,
            )
            return encounter_id, resolved, alerts

        encounter_id, resolved_case, alerts = in_transaction(self._uow, record)
        return FingerprintVerification(
            decision,
            traveler_id,
            engine.key,
            tuple(scores),
            fused,
            threshold,
            self._fusion,
            encounter_id,
            resolved_case,
            alerts,
        )

    def _keep_case_prints(
        self,
        uow: UnitOfWork,
        actor: Principal,
        capture_id: str,
        traveler_id: str,
        scores: Sequence[FingerScore],
        probes: Mapping[int, FingerprintTemplate],
        images: Mapping[int, bytes],
        engine: str,
        policy: Policy,
        now: datetime,
    ) -> int:
        """Keep the compared live fingers of a case check for the case's evidence period (the
        capture's image and record retention from the capture, whichever ends first), unless
        the policy keeps none or that period is already over; returns how many were kept."""
        case = uow.cases.get(capture_id)
        if case is None or not policy.fingerprints.keep_case_prints:
            return 0
        # The capture's own periods: a no-match's traveler is unknown, so the shortest.
        citizenship = (
            uow.travelers.profile(case.traveler_id).citizenship_class
            if case.traveler_id is not None
            else None
        )
        expires_at = case.received_at + min(
            policy.retention(DataKind.CAPTURE_IMAGES, citizenship),
            policy.retention(DataKind.CAPTURE_RECORDS, citizenship),
        )
        if expires_at <= now:
            return 0
        for score in scores:
            image = images.get(score.finger)
            uow.fingerprints.keep_case_print(
                CasePrint(
                    id=str(uuid.uuid4()),
                    capture_id=capture_id,
                    traveler_id=traveler_id,
                    finger=score.finger,
                    engine=engine,
                    officer_id=actor.key_id,
                    score=score.score,
                    template=probes[score.finger].to_bytes(),
                    has_image=image is not None,
                    created_at=now,
                    expires_at=expires_at,
                    image=image,
                ),
                now,
            )
        return len(scores)

    # --- the case page's drawing of kept prints ----------------------------------------------
    @_one_wait
    def case_prints(self, actor: Principal, capture_id: str) -> tuple[CasePrintView, ...]:
        """The live prints this officer submitted on the case, each against the same finger
        enrolled, with the minutiae the matcher paired (computed here, for display, never on
        the comparison path). Only the officer who took them sees them (not another officer,
        not a supervisor reading the case); a non-empty answer is an audited view."""
        actor.require(Permission.CASE_PRINTS_VIEW)
        with self._uow(read_only=True) as uow:
            flight_id = _case_flight(uow, actor, capture_id)
            kept = [
                p for p in uow.fingerprints.case_prints(capture_id) if p.officer_id == actor.key_id
            ]
            # A citizen's enrolled prints (from before the rule), or those of a traveler the
            # policy now takes no prints from (age, class), are not drawn or paired.
            holders = {p.traveler_id for p in kept}
            citizens = self._citizens(uow, holders) | exempt_travelers(
                uow,
                holders,
                self._policies.in_force(self._clock()).fingerprints,
                self._clock().date(),
            )
            enrolled = {
                (stored.traveler_id, stored.engine, stored.finger): stored
                for traveler, engine in {(p.traveler_id, p.engine) for p in kept}
                if traveler not in citizens
                for stored in uow.fingerprints.of_traveler(traveler, engine)
            }
        if not kept:
            return ()
        views = []
        for p in kept:
            live = FingerprintTemplate.from_bytes(p.template)
            stored = enrolled.get((p.traveler_id, p.engine, p.finger))
            reference = self._reference(stored) if stored is not None else None
            pairs: tuple[tuple[int, int, float], ...] = ()
            if reference is not None and p.engine == self.engine.key:
                with self._slots.taken():
                    pairs = self.engine.paired_minutiae(live, reference)
            views.append(
                CasePrintView(
                    p.id,
                    p.finger,
                    p.score,
                    p.created_at,
                    _side(live),
                    _side(reference) if reference is not None else None,
                    pairs,
                    p.has_image,
                )
            )
        self._audit.record_alone(
            "fingerprint case prints view",
            "ok",
            actor,
            "capture",
            capture_id,
            {"prints": len(views), "flight": flight_id},
        )
        return tuple(views)

    def case_print_image(self, actor: Principal, capture_id: str, print_id: str) -> bytes:
        """A kept live print of the case as a PNG, for the officer who took it; the view is
        audited in the same transaction. Another officer, another case's print, a purged one:
        refused."""
        actor.require(Permission.CASE_PRINTS_VIEW)

        def view(uow: UnitOfWork) -> bytes:
            _case_flight(uow, actor, capture_id)
            kept = uow.fingerprints.case_print_image(print_id)
            if kept is None or kept.capture_id != capture_id or kept.image is None:
                raise NotFoundError("no print image is kept for this case (purged, or none)")
            if kept.officer_id != actor.key_id:
                raise PermissionDeniedError(
                    "only the officer who took these prints on this case may see them"
                )
            self._audit.record(
                uow,
                "fingerprint image view",
                "ok",
                actor,
                "capture",
                capture_id,
                {"print": print_id, "finger": str(kept.finger)},
            )
            return kept.image

        return in_transaction(self._uow, view)

    def _record_encounter(
        self,
        uow: UnitOfWork,
        flight_id: str,
        traveler_id: str,
        score: float,
        device: str,
        now: datetime,
        policy: Policy,
        capture_id: str | None = None,
    ) -> str | None:
        flight = FlightService.get_in(uow, flight_id)
        # Only a traveler this flight expects is recorded as boarding (or leaving) on it.
        if not uow.flights.has_traveler(flight.id, traveler_id):
            return None
        encounter = new_encounter(
            flight,
            traveler_id,
            EncounterMethod.BIOMETRIC,
            gate="fingerprint",
            device=device or "fingerprint",
            at=now,
            policy=policy,
            citizenship=uow.travelers.profile(traveler_id).citizenship_class,
            score=score,
            model=self.engine.key,
            capture_id=capture_id,
        )
        if not uow.captures.add_encounter(encounter):
            return None  # already recorded on this flight
        if self._on_encounter is not None:
            self._on_encounter(uow, encounter, flight, None)
        return encounter.id

    def with_face(
        self, verification: FingerprintVerification, face_score: float | None
    ) -> CombinedEvidence | None:
        """The face score of the same person (the gate capture against the verified
        traveler's reference) and the fused finger score, as evidence together: for the
        officer to read beside the fingerprint decision, which it never changes. None without
        a face score or a face calibration (a deployment with explicit face thresholds)."""
        face_table = self._face_calibration() if face_score is not None else None
        if face_score is None or face_table is None:
            return None
        return combine_face_and_finger(
            face_score,
            face_table,
            verification.fused_score,
            self._finger_calibration(verification.engine),
            self._policies.in_force(self._clock()).fingerprints.target_far,
        )

    # --- the officer's 1:N over a flight --------------------------------------------------
    @_one_wait
    def search(
        self, actor: Principal, flight_id: str, prints: Sequence[SubmittedPrint]
    ) -> FingerprintSearch:
        """Without a document in hand: compare the live prints with those of every traveler
        on the flight (finger by finger, fused as in :meth:`verify`) and propose the best
        few. Nothing is recorded but the audit event: an officer confirms a candidate with the
        document, by :meth:`verify`."""
        actor.require(Permission.FINGERPRINT_VERIFY)
        _check_count(prints)
        now = self._clock()
        policy = self._policies.in_force(now)
        engine = self.engine
        with self._uow(read_only=True) as uow:
            FlightService.served_in(uow, actor, flight_id)
            enrolled = uow.fingerprints.of_flight(flight_id, engine.key)
            # A citizen's prints (enrolled before the rule) are never searched: decided for
            # the whole flight in one query on clear columns, opening nobody's details
            # (review L10); a national shown only by sealed details is left out below.
            # So is a traveler of a class the policy exempts; the ages (sealed birth dates)
            # are checked below, for the candidates named only.
            holders = {f.traveler_id for f in enrolled}
            citizens = self._citizens(uow, holders, sealed=False) | exempt_travelers(
                uow, holders, policy.fingerprints, now.date(), sealed=False
            )
            enrolled = [f for f in enrolled if f.traveler_id not in citizens]
        probes = {p.finger: self._template(p) for p in prints}
        hits = self._watchlist_hits(probes)
        by_traveler: dict[str, list[FingerScore]] = {}
        for stored in enrolled:
            probe = probes.get(stored.finger)
            if probe is None:
                continue
            by_traveler.setdefault(stored.traveler_id, []).append(self._score(probe, stored))
        threshold = self._threshold_for(engine.key, policy.fingerprints.target_far)
        ranked = sorted(
            (
                (fuse_fingers([s.score for s in scores], self._fusion), traveler, scores)
                for traveler, scores in by_traveler.items()
            ),
            key=lambda item: -item[0],
        )
        # Only the travelers the answer names have their sealed nationality opened (a
        # home-state national whose stored class and passports say otherwise: data from
        # before manifests were checked); one found is dropped, the next in rank taken.
        picked: list[tuple[float, str, list[FingerScore]]] = []
        nationals: set[str] = set()
        with self._uow(read_only=True) as uow:
            while len(picked) < MAX_CANDIDATES and len(picked) + len(nationals) < len(ranked):
                start = len(picked) + len(nationals)
                batch = ranked[start : start + MAX_CANDIDATES - len(picked)]
                named = {traveler for _, traveler, _ in batch}
                found = self._citizens(uow, named) | exempt_travelers(
                    uow, named, policy.fingerprints, now.date()
                )
                nationals |= found
                picked += [item for item in batch if item[1] not in found]
        searched = len(by_traveler) - len(nationals)
        candidates = tuple(
            FingerprintCandidate(traveler, fused, tuple(scores), fused >= threshold)
            for fused, traveler, scores in picked
        )

        def record(uow: UnitOfWork) -> int:
            alerts = self._raise_alerts(
                uow, hits, flight_id, None, None, engine.key, policy, self._clock()
            )
            self._audit.record(
                uow,
                "fingerprint search",
                "ok",
                actor,
                "flight",
                flight_id,
                {"searched": searched, "proposed": len(candidates)},
                policy_version=policy.version,
            )
            return alerts

        alerts = in_transaction(self._uow, record)
        return FingerprintSearch(candidates, searched, engine.key, threshold, alerts)

    # --- watchlist prints ------------------------------------------------------------------
    @_one_wait
    def add_to_watchlist(
        self,
        actor: Principal,
        prints: Sequence[SubmittedPrint],
        category: str,
        reason_code: str,
    ) -> str:
        """A watchlist entry of prints (the watchlist manager's; one entry, one or more
        fingers, sealed with the entry's own key like a face entry). Live prints submitted
        with a flight (a case's 1:1, a flight search) are searched against it; a hit is an
        alert for an officer, never a decision."""
        actor.require(Permission.WATCHLIST_MANAGE)
        _check_count(prints)
        category, reason_code = _label(category, "category"), _label(reason_code, "reason code")
        templates = [self._template(p) for p in prints]
        engine = self.engine.key
        entry = WatchlistEntry(
            str(uuid.uuid4()), category, reason_code, engine, actor.key_id, self._clock()
        )

        def store(uow: UnitOfWork) -> None:
            listed = len(uow.watchlist.templates(engine))
            if listed >= self._max_watchlist_print_entries:
                raise ConflictError(
                    f"the watchlist holds {listed} entries with prints, its limit"
                    " (ENTRYEXIT_WATCHLIST_PRINT_ENTRIES_MAX): every officer check compares"
                    " the live prints with each of them"
                )
            uow.watchlist.add_entry(entry, _bundle(templates))
            uow.generations.bump(WATCHLIST_GENERATION)
            self._audit.record(
                uow,
                "watchlist add",
                "ok",
                actor,
                "watchlist_entry",
                entry.id,
                {
                    "category": category,
                    "reason_code": reason_code,
                    "fingers": ",".join(str(int(t.finger)) for t in templates),
                },
            )

        in_transaction(self._uow, store)
        return entry.id

    def _watchlist_hits(self, probes: Mapping[int, FingerprintTemplate]) -> list[tuple[str, float]]:
        """(entry, fused score) of every print entry the live prints reach, before any
        transaction opens (the list is small; its entries are decoded once per process)."""
        engine = self.engine
        with self._uow(read_only=True) as uow:
            entries = uow.watchlist.templates(engine.key)
        with self._references_lock:  # forget removed entries
            for gone in self._watchlist.keys() - {entry_id for entry_id, _ in entries}:
                del self._watchlist[gone]
        if not entries:
            return []
        threshold = self._threshold_for(engine.key, WATCHLIST_FAR)
        hits = []
        for entry_id, blob in entries:
            listed = self._watchlist_entry(entry_id, blob)
            common = [f for f in probes if f in listed]
            if not common:
                continue
            scores = []
            for f in common:
                with self._slots.taken():
                    scores.append(
                        float(np.asarray(engine.compare(probes[f], [listed[f]])).ravel()[0])
                    )
            fused = fuse_fingers(scores, self._fusion)
            if fused >= threshold:
                hits.append((entry_id, fused))
        return hits

    def _watchlist_entry(self, entry_id: str, blob: bytes) -> dict[int, FingerprintTemplate]:
        with self._references_lock:
            cached = self._watchlist.get(entry_id)
        if cached is not None and cached[0] == blob:
            return cached[1]
        by_finger = {int(t.finger): t for t in _unbundle(blob)}
        with self._references_lock:
            self._watchlist[entry_id] = (blob, by_finger)
        return by_finger

    def _raise_alerts(
        self,
        uow: UnitOfWork,
        hits: Sequence[tuple[str, float]],
        flight_id: str,
        traveler_id: str | None,
        capture_id: str | None,
        engine: str,
        policy: Policy,
        now: datetime,
    ) -> int:
        raised = 0
        for entry_id, score in hits:
            alert = AlertRecord(
                id=str(uuid.uuid4()),
                source=WATCHLIST_SOURCE,
                flight_id=flight_id,
                traveler_id=traveler_id,
                capture_id=capture_id,
                watchlist_entry_id=entry_id,
                score=score,
                model=engine,
                policy_version=policy.version,
                created_at=now,
                status="open",
            )
            if not uow.watchlist.add_alert(alert):
                continue
            raised += 1
            self._audit.record(
                uow,
                "watchlist alert",
                "open",
                None,
                "alert",
                alert.id,
                {"source": WATCHLIST_SOURCE, "score": f"{score:.4f}", "entry": entry_id},
                policy_version=policy.version,
            )
        return raised

    # --- a flight's prints prepared before its first search ---------------------------------
    def prepare_when_staged(self, uow: UnitOfWork, flight: Flight, gallery: object) -> None:
        """The staging hook: once a flight's gallery is staged, its travelers' enrolled prints
        are opened and prepared for comparison (MCC cylinders, the bozorth3 structure) off the
        request path, so the officer's first search does not pay for them. Nothing is done
        for a flight without enrolled prints (the engine is not even loaded)."""
        if not uow.fingerprints.travelers_enrolled(flight.id):
            return
        done = threading.Event()
        with self._references_lock:
            running = self._preparations.get(flight.id)
            if running is not None and not running.is_set():
                return  # a rerun of the staging transaction, or a quick re-stage
            self._preparations[flight.id] = done
        self._background(lambda: self._prepare_then_signal(flight.id, done))

    def _prepare_then_signal(self, flight_id: str, done: threading.Event) -> None:
        try:
            self.prepare_flight(flight_id)
        except Exception:
            # Not fatal: the flight's first search prepares what this did not.
            logger.exception("preparing a staged flight's fingerprints failed")
        finally:
            done.set()

    def prepare_flight(self, flight_id: str) -> int:
        """Open and prepare every enrolled print of the flight's travelers (kept in this
        process's caches); returns how many."""
        engine = self.engine
        with self._uow(read_only=True) as uow:
            enrolled = uow.fingerprints.of_flight(flight_id, engine.key)
        for stored in enrolled:
            reference = self._reference(stored)
            with self._slots.taken(background=True):
                engine.prepare(reference)
        return len(enrolled)

    def wait_prepared(self, flight_id: str, timeout: float) -> bool:
        """Whether the preparation started at the flight's staging has finished (waiting up
        to ``timeout`` seconds); ``True`` when none was started."""
        with self._references_lock:
            done = self._preparations.get(flight_id)
        return done is None or done.wait(timeout)

    def _score(self, probe: FingerprintTemplate, stored: StoredFingerprint) -> FingerScore:
        """One live finger against the same finger enrolled."""
        reference = self._reference(stored)
        with self._slots.taken():
            (score,) = np.asarray(self.engine.compare(probe, [reference]), dtype=np.float64).ravel()
        return FingerScore(stored.finger, float(score))

    def _reference(self, stored: StoredFingerprint) -> FingerprintTemplate:
        key = (stored.id, stored.created_at)
        with self._references_lock:
            cached = self._references.get(key)
            if cached is not None:
                self._references.move_to_end(key)
                return cached
        template = FingerprintTemplate.from_bytes(stored.template)
        with self._references_lock:
            self._references[key] = template
            while len(self._references) > REFERENCE_CACHE:
                self._references.popitem(last=False)
        return template

    # --- one print to a template -----------------------------------------------------------
    def _template(self, submitted: SubmittedPrint) -> FingerprintTemplate:
        return self._read(submitted)[0]

    def _read(
        self, submitted: SubmittedPrint
    ) -> tuple[FingerprintTemplate, FingerprintImage | None]:
        """The print's template, and its decoded 500 ppi image (None for a minutiae record)."""
        finger = FingerPosition(check_finger(submitted.finger))
        if submitted.format is PrintFormat.ISO_19794_2:
            return self._template_from_record(submitted.data, finger), None
        if submitted.ppi is None:
            raise InvalidInputError(f"finger {int(finger)}: an image needs its resolution (ppi)")
        engine = self.engine
        with self._slots.taken():
            image = decode_fingerprint(submitted.data, submitted.ppi)
            quality, template = engine.read(image, finger)  # one run of the extractor
        if template is None:
            reasons = ", ".join(r.value for r in quality.reasons)
            raise InvalidInputError(f"finger {int(finger)}: recapture the print ({reasons})")
        return template, image

    def _template_from_record(self, data: bytes, finger: FingerPosition) -> FingerprintTemplate:
        """The view of an ISO/IEC 19794-2 record for ``finger`` (or its only view when the
        record does not name the finger)."""
        record = parse_finger_minutiae_record(data)
        views = [v for v in record.views if v.finger_position == int(finger)] or [
            v for v in record.views if v.finger_position == 0
        ]
        if not views:
            named = sorted({v.finger_position for v in record.views})
            raise InvalidInputError(
                f"finger {int(finger)}: the record holds fingers {named}, not this one"
            )
        view = views[0]
        minutiae = np.array(
            [(m.x, m.y, m.angle, int(m.kind), m.quality) for m in view.minutiae],
            dtype=np.float64,
        ).reshape(-1, 5)
        frame = (record.width, record.height, record.x_ppi, record.y_ppi)
        return self.engine.from_iso_minutiae(minutiae, frame, finger, view.quality or 255)


def _check_count(prints: Sequence[SubmittedPrint]) -> None:
    if not prints:
        raise InvalidInputError("send at least one fingerprint")
    if len(prints) > MAX_PRINTS:
        raise InvalidInputError(f"at most {MAX_PRINTS} fingerprints in one request")
    fingers = [check_finger(p.finger) for p in prints]
    if len(set(fingers)) != len(fingers):
        raise InvalidInputError("the same finger is sent twice")


_BUNDLE_LENGTH = struct.Struct(">I")


def _bundle(templates: Sequence[FingerprintTemplate]) -> bytes:
    """Several fingers' templates as one watchlist template (length-prefixed)."""
    parts = [t.to_bytes() for t in templates]
    return b"".join(_BUNDLE_LENGTH.pack(len(part)) + part for part in parts)


def _unbundle(blob: bytes) -> list[FingerprintTemplate]:
    templates, offset = [], 0
    while offset < len(blob):
        (length,) = _BUNDLE_LENGTH.unpack_from(blob, offset)
        offset += _BUNDLE_LENGTH.size
        templates.append(FingerprintTemplate.from_bytes(blob[offset : offset + length]))
        offset += length
    return templates


def _label(value: str, what: str) -> str:
    """As the face watchlist's labels: short codes, never free text about a person."""
    text = value.strip()
    if not text or len(text) > 32 or not text.replace("-", "").replace("_", "").isalnum():
        raise InvalidInputError(f"{what}: 1-32 letters, digits, '-' or '_'")
    return text


def _side(template: FingerprintTemplate) -> PrintSide:
    m = template.minutiae
    return PrintSide(
        template.width,
        template.height,
        tuple((float(x), float(y), float(a)) for x, y, a in m[:, :3]),
        None if template.quality == QUALITY_UNKNOWN else template.quality,
    )


def _case_flight(uow: UnitOfWork, actor: Principal, capture_id: str) -> str:
    """The case's flight, if the actor serves its carrier."""
    case = uow.cases.get(capture_id)
    if case is None:
        raise NotFoundError(f"capture {capture_id} does not exist")
    flight = FlightService.get_in(uow, case.flight_id)
    if not actor.serves(flight.carrier):
        raise PermissionDeniedError("this account does not serve this flight's carrier")
    return flight.id


def _open_case(uow: UnitOfWork, capture_id: str, flight_id: str | None) -> None:
    case = uow.cases.get(capture_id)
    # Only a capture the gate could not decide is a case (as ConsoleService's): a match
    # already recorded its traveler's encounter.
    if case is None or case.flight_id != flight_id or case.decision not in OPEN_DECISIONS:
        raise NotFoundError(f"capture {capture_id} is not a case of this flight")
    if case.resolution is not None:
        raise ConflictError(f"this case was already resolved ({case.resolution})")
