"""A gate capture in, a decision out: the boarding queue's hot path.

Three steps: *prepare* (who may, which flight, gallery and policy), *decide* (the face model
and the 1:N search, all in memory, before any transaction opens), *record* (one short
transaction: alerts, the capture record, the encounter, the admission hand-off and the audit
event commit together or not at all).

A capture may be a short burst of frames (up to the policy's ``capture.max_frames``): each
frame is gated for quality, the best ones are fused into one probe (``biometrics.fusion``) and
compared at the threshold calibrated for the number of frames fused. A burst is still one
capture: one capture record, at most one encounter, one audit event; of its images only the
best frame fused is ever kept.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics import FaceAnalysis, similarity_matrix
from entryexit.biometrics.decode import slot_owner
from entryexit.biometrics.fusion import BurstAnalysis
from entryexit.documents.text import check_machine_label
from entryexit.domain.access import Permission, Principal
from entryexit.domain.identification import IdentificationRule, identify
from entryexit.domain.model import Decision, EncounterMethod, Flight
from entryexit.domain.policy import DataKind, Policy
from entryexit.errors import (
    IdempotencyKeyReusedError,
    InvalidInputError,
    NoFaceError,
    PermissionDeniedError,
    TransactionConflictError,
)
from entryexit.services.audit import AuditTrail
from entryexit.services.encounters import new_encounter
from entryexit.services.flights import FlightService
from entryexit.services.gallery import GalleryService, StagedGallery
from entryexit.services.policies import PolicyService
from entryexit.services.ports import (
    CaptureRecord,
    Clock,
    FaceAnalyser,
    IdempotencyClaim,
    StoredIdempotency,
)
from entryexit.services.thresholds import OperatingThresholds
from entryexit.services.unit_of_work import (
    EncounterHook,
    UnitOfWork,
    UnitOfWorkFactory,
    in_transaction,
)
from entryexit.services.watchlist import WatchlistService, WatchlistSnapshot

_MAX_LABEL = 64
# A gate's Idempotency-Key: an opaque token (a UUID, most often) of visible ASCII.
_MAX_IDEMPOTENCY_KEY = 128
REASON_COLUMN_LENGTH = 64  # captures.reason in the store
logger = logging.getLogger(__name__)
T = TypeVar("T")

Admission = Callable[[UnitOfWork], tuple[Principal, Flight | None]]
"""Who sends a capture, decided in the capture's one read (the API checks the key there, and
may hand over the flight its carrier check read)."""
EarlyAdmission = Callable[[], Principal | None]
"""Who probably sends a capture, from memory only (see :meth:`CaptureService.submit_burst`);
``None`` when memory cannot say."""
_MAX_REMEMBERED_FLIGHTS = 100_000


@dataclass(frozen=True, slots=True)
class GateOutcome:
    """All a partner's gate ever learns of a capture: never a name, score, photo or
    traveler reference."""

    capture_id: str
    decision: Decision
    reasons: tuple[str, ...]
    already_processed: bool


@dataclass(frozen=True, slots=True)
class CaptureOutcome:
    """Everything known about a decision. What a caller may *see* of it depends on its role:
    a partner's gate sees only what :meth:`seen_by` leaves it."""

    capture_id: str
    decision: Decision
    reasons: tuple[str, ...]
    already_processed: bool
    traveler_id: str | None
    score: float | None
    runner_up_score: float | None
    model: str
    gallery_size: int
    policy_version: str
    threshold: float | None = None
    # An answer to a retry under an Idempotency-Key: the first attempt's outcome, replayed.
    replayed: bool = False
    frames_fused: int = 1

    def seen_by(self, principal: Principal) -> CaptureOutcome | GateOutcome:
        """The one place that decides what a caller sees: without the decision-details
        permission (a partner's gate), only the decision."""
        if principal.can(Permission.DECISION_DETAILS):
            return self
        return GateOutcome(self.capture_id, self.decision, self.reasons, self.already_processed)


@dataclass(frozen=True, slots=True)
class _Context:
    """What a capture is judged against, fixed before the model runs."""

    principal: Principal
    flight: Flight
    gallery: StagedGallery
    policy: Policy
    # rules[k - 1] is the rule for a probe fused from k frames; len(rules) is how many frames
    # a probe may fuse (the policy's limit, or fewer where no threshold is calibrated).
    rules: tuple[IdentificationRule, ...]
    capture_id: str
    received_at: datetime
    gate: str
    device: str
    watchlist: WatchlistSnapshot | None = None


@dataclass(frozen=True, slots=True)
class _Verdict:
    """The model's answer, before the store has a say (duplicates, open alerts)."""

    decision: Decision
    reasons: tuple[str, ...] = ()
    traveler_id: str | None = None
    score: float | None = None
    runner_up: float | None = None
    keep_image: bool = False
    live: NDArray[np.float32] | None = None
    watchlist_hits: list[tuple[str, float]] = field(default_factory=list)
    frames_fused: int = 1
    # Which frame's image the record may keep (the best one fused; the only one of a single
    # capture).
    kept_frame: int = 0
    # The threshold the top candidate was held to (its reference count's), when searched.
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class _IdempotentRequest:
    """A capture sent under an ``Idempotency-Key``: the key is the caller's own (scoped to
    its API key), the digest what it was first sent with."""

    scope: str
    key: str
    flight_id: str
    digest: str


class CaptureService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        engine: FaceAnalyser,
        galleries: GalleryService,
        thresholds: OperatingThresholds,
        clock: Clock,
        policies: PolicyService,
        audit: AuditTrail,
        watchlist: WatchlistService | None = None,
        on_encounter: EncounterHook | None = None,
    ) -> None:
        self._uow = uow
        self._engine = engine
        self._galleries = galleries
        self._thresholds = thresholds
        self._clock = clock
        self._policies = policies
        self._audit = audit
        self._watchlist = watchlist
        self._on_encounter = on_encounter
        # Flights' carriers as captures' reads found them: an early caller (see
        # submit_burst) who served the carrier may have its model start before the read.
        self._carriers: dict[str, str] = {}
        self._busy = 0
        self._busy_lock = threading.Lock()
        # The capture's read beside the model (submit_burst): started on first use, shut
        # down by close() (the service's shutdown), started again if used after it.
        self._reads: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the threads of the capture's read beside the model (at the service's
        shutdown); a capture after this starts them again."""
        with self._busy_lock:
            reads, self._reads = self._reads, None
        if reads is not None:
            reads.shutdown(wait=True)

    def _submit_read(self, read: Callable[..., T], *args: Any) -> Future[T]:
        """``read`` on a capture-read thread. Submitted under the lock ``close`` swaps the pool
        under: a capture racing the shutdown lands before the swap (``close`` waits for it)
        or after it (a new pool), never on a pool already shut down."""
        with self._busy_lock:
            if self._reads is None:
                self._reads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="capture-read")
            return self._reads.submit(read, *args)

    def process(
        self,
        principal: Principal,
        flight_id: str,
        photo: bytes,
        gate: str,
        device: str,
        idempotency_key: str | None = None,
    ) -> CaptureOutcome:
        """Decide on a capture of one frame (see :meth:`process_burst`)."""
        return self.process_burst(principal, flight_id, [photo], gate, device, idempotency_key)

    def process_burst(
        self,
        principal: Principal,
        flight_id: str,
        frames: Sequence[bytes],
        gate: str,
        device: str,
        idempotency_key: str | None = None,
    ) -> CaptureOutcome:
        """One capture from one to ``capture.max_frames`` frames of one traveler. With an
        ``idempotency_key``, a retry of the same request (same caller, flight, gate, device
        and frames) gets the first attempt's outcome and records nothing new, whichever
        instance answers it; the same key for a different request is refused
        (:class:`IdempotencyKeyReusedError`)."""
        return self.submit_burst(
            lambda _: (principal, None), flight_id, frames, gate, device, idempotency_key
        )[1]

    def submit_burst(
        self,
        admit: Admission,
        flight_id: str,
        frames: Sequence[bytes],
        gate: str,
        device: str,
        idempotency_key: str | None = None,
        early: EarlyAdmission | None = None,
    ) -> tuple[Principal, CaptureOutcome]:
        """:meth:`process_burst` for a caller whom ``admit`` names in the capture's read:
        the caller and its outcome.

        ``early``: who the caller probably is, from memory (the key's row as last read, its
        secret checked, and the cheap checks). When it names a caller who served this
        flight's carrier before, and no other capture is in the service, the capture's read
        runs on another thread *while* the model runs, so the capture waits for the longer of
        the two, not their sum. The read's checks are the same as ever and come first: a key
        revoked (or a row changed) since it was last read wastes one model run, and nothing
        is written or answered but the refusal."""
        with self._busy_lock:
            self._busy += 1
            alone = self._busy == 1
        try:
            if alone and early is not None and len(frames) == 1:
                principal = early()
                carrier = self._carriers.get(flight_id)
                if (
                    principal is not None
                    and carrier is not None
                    and principal.serves(carrier)
                    and principal.can(Permission.CAPTURE_SUBMIT)
                ):
                    return self._overlapped(
                        admit, flight_id, frames[0], gate, device, idempotency_key, principal
                    )
            return self._serial(admit, flight_id, frames, gate, device, idempotency_key)
        finally:
            with self._busy_lock:
                self._busy -= 1

    def _serial(
        self,
        admit: Admission,
        flight_id: str,
        frames: Sequence[bytes],
        gate: str,
        device: str,
        idempotency_key: str | None,
    ) -> tuple[Principal, CaptureOutcome]:
        confirmed = self._confirm(admit, flight_id, frames, gate, device, idempotency_key)
        if len(frames) == 1:
            return self._finish(confirmed, frames, lambda context: self._decide(context, frames[0]))
        return self._finish(confirmed, frames, lambda context: self._decide_burst(context, frames))

    def _overlapped(
        self,
        admit: Admission,
        flight_id: str,
        photo: bytes,
        gate: str,
        device: str,
        idempotency_key: str | None,
        remembered: Principal,
    ) -> tuple[Principal, CaptureOutcome]:
        # In this request's context (its request id, what its audit has recorded).
        confirming = self._submit_read(
            contextvars.copy_context().run,
            self._confirm,
            admit,
            flight_id,
            [photo],
            gate,
            device,
            idempotency_key,
        )
        try:
            with slot_owner(remembered.key_id):
                analysed = self._analyse(photo)
        except BaseException:
            # The read's answer comes first: a refused caller learns nothing of its image.
            confirming.result()
            raise
        return self._finish(
            confirming.result(), [photo], lambda context: self._judge(context, analysed)
        )

    def _finish(
        self,
        confirmed: tuple[_Context, _IdempotentRequest | None, StoredIdempotency | None],
        frames: Sequence[bytes],
        verdict_of: Callable[[_Context], _Verdict],
    ) -> tuple[Principal, CaptureOutcome]:
        """After the capture's read: an earlier attempt's outcome replayed, or the verdict
        (the model's work, or its result) recorded in one transaction."""
        context, request, earlier = confirmed
        if request is not None and earlier is not None:
            return context.principal, _replay(request, earlier)
        verdict = verdict_of(context)
        kept = frames[verdict.kept_frame]
        return context.principal, in_transaction(
            self._uow, lambda uow: self._record(uow, context, verdict, kept, request)
        )

    def _confirm(
        self,
        admit: Admission,
        flight_id: str,
        frames: Sequence[bytes],
        gate: str,
        device: str,
        idempotency_key: str | None,
    ) -> tuple[_Context, _IdempotentRequest | None, StoredIdempotency | None]:
        """The capture's read (caller, flight, watchlist), its frame count checked, and an
        earlier attempt under its Idempotency-Key, if any."""
        context = self._prepare(admit, flight_id, gate, device)
        limit = context.policy.capture.max_frames
        if not frames:
            raise InvalidInputError("a capture needs at least one frame")
        if len(frames) > limit:
            raise InvalidInputError(
                f"a capture holds at most {limit} frames under policy {context.policy.version};"
                f" {len(frames)} were sent"
            )
        request = (
            None
            if idempotency_key is None
            else _idempotent_request(context, idempotency_key, frames)
        )
        earlier = None
        if request is not None:
            with self._uow(read_only=True) as uow:
                earlier = uow.captures.find_idempotency(request.scope, request.key)
        return context, request, earlier

    # --- prepare ---------------------------------------------------------------------------
    def _prepare(self, admit: Admission, flight_id: str, gate: str, device: str) -> _Context:
        # One read for all the store must say before the model runs: the caller's key, the
        # flight (its carrier, its gallery's version) and the watchlist's generation.
        with self._uow(read_only=True) as uow:
            principal, flight = admit(uow)
            if not principal.can(Permission.CAPTURE_SUBMIT):
                raise PermissionDeniedError("this key may not submit captures")
            gate, device = _label(gate, "gate"), _label(device, "device")
            if flight is None or flight.id != flight_id:
                flight = FlightService.get_in(uow, flight_id)
            if not principal.serves(flight.carrier):
                raise PermissionDeniedError("this gate key does not serve this flight's carrier")
            if len(self._carriers) < _MAX_REMEMBERED_FLIGHTS:
                self._carriers[flight.id] = flight.carrier
            watchlist = self._watchlist.current(uow) if self._watchlist is not None else None
        gallery = self._galleries.gallery_for(flight)
        received_at = self._clock()
        policy = self._policies.in_force(received_at)
        point = policy.matching
        fusable = self._thresholds.fusable_frames(point, policy.capture.max_frames)
        return _Context(
            principal=principal,
            flight=flight,
            gallery=gallery,
            policy=policy,
            rules=tuple(
                self._thresholds.identification_rule(point, frames)
                for frames in range(1, fusable + 1)
            ),
            capture_id=str(uuid.uuid4()),
            received_at=received_at,
            gate=gate,
            device=device,
            watchlist=watchlist,
        )

    # --- decide (model work; no transaction is open) ---------------------------------------
    def _decide(self, context: _Context, photo: bytes) -> _Verdict:
        # The engine's decode slots are shared fairly between keys (one key's largest frames
        # cannot queue every other gate behind them); the key is checked by now.
        with slot_owner(context.principal.key_id):
            return self._judge(context, self._analyse(photo))

    def _analyse(self, photo: bytes) -> FaceAnalysis | _Verdict:
        """The model's work on one frame (needs nothing from the store): its analysis, or
        the recapture it calls for."""
        try:
            analysis = self._engine.analyse(photo)
        except NoFaceError:
            return _Verdict(Decision.RECAPTURE, ("no_face",))
        if not analysis.quality.acceptable:
            return _Verdict(Decision.RECAPTURE, tuple(r.value for r in analysis.quality.reasons))
        return analysis

    def _judge(self, context: _Context, analysed: FaceAnalysis | _Verdict) -> _Verdict:
        if isinstance(analysed, _Verdict):
            return analysed
        return self._search(context, analysed.template.vector, 1, (), 0)

    def _decide_burst(self, context: _Context, frames: Sequence[bytes]) -> _Verdict:
        with slot_owner(context.principal.key_id):
            burst: BurstAnalysis = self._engine.analyse_burst(frames, len(context.rules))
        if burst.probe is None:
            # No frame passed: a recapture, with every frame's reasons (each named once).
            reasons = dict.fromkeys(r for check in burst.frames for r in check.reasons)
            return _Verdict(Decision.RECAPTURE, tuple(reasons))
        # Frames left out are named in the outcome, so the gate can tell what went wrong.
        refused = tuple(
            f"frame_{index + 1}_{reason}"
            for index, check in enumerate(burst.frames)
            for reason in check.reasons
        )
        probe = burst.probe
        return self._search(context, probe.vector, probe.count, refused, probe.frames[0])

    def _search(
        self,
        context: _Context,
        live: NDArray[np.float32],
        frames: int,
        notes: tuple[str, ...],
        kept_frame: int,
    ) -> _Verdict:
        gallery = context.gallery
        if len(gallery) == 0:
            return _Verdict(Decision.MANUAL, ("no_reference_photos", *notes))
        # The threshold for the number of frames actually fused, never the single frame's.
        rule = context.rules[frames - 1]
        result = identify(
            similarity_matrix(live, gallery.matrix)[0],
            rule,
            gallery.related,
            gallery.reference_counts or None,
        )
        hits = (
            self._watchlist.capture_hits(live, context.watchlist)
            if self._watchlist is not None
            else []
        )
        if not result.matched or result.index is None:
            # The officer doing the document check sees this photo beside the candidates, so
            # it is kept (sealed) until the policy's capture-image retention ends.
            return _Verdict(
                Decision.NO_MATCH,
                (result.reason.value if result.reason else "no_match", *notes),
                score=result.score,
                runner_up=result.runner_up_score,
                keep_image=True,
                live=live,
                watchlist_hits=hits,
                frames_fused=frames,
                kept_frame=kept_frame,
                threshold=result.threshold,
            )
        return _Verdict(
            Decision.MATCH,
            notes,
            traveler_id=gallery.traveler_ids[result.index],
            score=result.score,
            runner_up=result.runner_up_score,
            live=live,
            watchlist_hits=hits,
            frames_fused=frames,
            kept_frame=kept_frame,
            threshold=result.threshold,
        )

    # --- record (one short transaction) ---------------------------------------------------
    def _record(
        self,
        uow: UnitOfWork,
        context: _Context,
        verdict: _Verdict,
        photo: bytes,
        request: _IdempotentRequest | None = None,
    ) -> CaptureOutcome:
        if request is not None:
            # Claimed first: a concurrent retry (any instance) waits here for this one.
            earlier = uow.captures.claim_idempotency(
                IdempotencyClaim(
                    request.scope,
                    request.key,
                    request.flight_id,
                    request.digest,
                    context.capture_id,
                    context.received_at,
                )
            )
            if earlier is not None:
                return _replay(request, earlier)
        outcome, expires_at = self._record_capture(uow, context, verdict, photo)
        if request is not None:
            # The key lives as long as the capture record it answers for.
            uow.captures.settle_idempotency(
                request.scope, request.key, _outcome_json(outcome), expires_at
            )
        return outcome

    def _record_capture(
        self, uow: UnitOfWork, context: _Context, verdict: _Verdict, photo: bytes
    ) -> tuple[CaptureOutcome, datetime | None]:
        flight = context.flight
        if self._watchlist is not None and verdict.watchlist_hits:
            self._watchlist.raise_capture_alerts(
                uow, flight, context.capture_id, verdict.traveler_id, verdict.watchlist_hits
            )
        decision, reasons = verdict.decision, verdict.reasons
        keep_image, already, citizenship = verdict.keep_image, False, None
        traveler_id = verdict.traveler_id
        if decision is Decision.MATCH and traveler_id is not None:
            if verdict.watchlist_hits or WatchlistService.has_open_alert(uow, traveler_id):
                # An officer decides; the gate learns only that it is an officer's case.
                decision, keep_image = Decision.MANUAL, True
                reasons = ("officer_review", *verdict.reasons)
            else:
                citizenship = uow.travelers.citizenship_class(traveler_id, flight)
                encounter = new_encounter(
                    flight,
                    traveler_id,
                    EncounterMethod.BIOMETRIC,
                    gate=context.gate,
                    device=context.device,
                    at=context.received_at,
                    policy=context.policy,
                    citizenship=citizenship,
                    score=verdict.score,
                    model=context.gallery.model,
                    capture_id=context.capture_id,
                )
                already = not uow.captures.add_encounter(encounter)
                if already:
                    reasons = ("already_processed",)
                elif self._on_encounter is not None:
                    self._on_encounter(
                        uow, encounter, flight, verdict.live, frames=verdict.frames_fused
                    )
        # Records of a capture whose traveler is unknown get the shortest retention.
        policy, received_at = context.policy, context.received_at
        expires_at = received_at + policy.retention(DataKind.CAPTURE_RECORDS, citizenship)
        uow.captures.add_capture(
            CaptureRecord(
                id=context.capture_id,
                flight_id=flight.id,
                gate=context.gate,
                device=context.device,
                received_at=received_at,
                decision=decision.value,
                reason=_stored_reason(reasons),
                score=verdict.score,
                traveler_id=traveler_id,
                model=context.gallery.model,
                policy_version=policy.version,
                expires_at=expires_at,
                image=photo if keep_image else None,
                image_expires_at=received_at
                + policy.retention(DataKind.CAPTURE_IMAGES, citizenship),
            )
        )
        self._audit.record(
            uow,
            "capture",
            "ok",
            context.principal,
            "flight",
            flight.id,
            {
                "capture": context.capture_id,
                "decision": decision.value,
                "frames_fused": verdict.frames_fused,
            },
            policy_version=policy.version,
        )
        logger.debug("capture %s on flight %s: %s", context.capture_id, flight.id, decision.value)
        outcome = CaptureOutcome(
            context.capture_id,
            decision,
            reasons,
            already,
            traveler_id,
            verdict.score,
            verdict.runner_up,
            context.gallery.model,
            len(context.gallery),
            policy.version,
            verdict.threshold
            if verdict.threshold is not None
            else context.rules[verdict.frames_fused - 1].threshold,
            frames_fused=verdict.frames_fused,
        )
        return outcome, expires_at


def _stored_reason(reasons: tuple[str, ...]) -> str | None:
    """The reasons as the capture record keeps them: comma-separated, as many as fit its
    column (a burst's frame notes can run past it; the outcome carries them all)."""
    kept = ""
    for reason in reasons:
        candidate = f"{kept},{reason}" if kept else reason
        if len(candidate) > REASON_COLUMN_LENGTH:
            break
        kept = candidate
    return kept or None


def _label(value: str, what: str) -> str:
    return check_machine_label(value, what, _MAX_LABEL)


def _idempotent_request(context: _Context, key: str, frames: Sequence[bytes]) -> _IdempotentRequest:
    if (
        not key
        or len(key) > _MAX_IDEMPOTENCY_KEY
        or not key.isascii()
        or not all(33 <= ord(c) <= 126 for c in key)
    ):
        raise InvalidInputError(
            f"Idempotency-Key must be 1 to {_MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        )
    digest = hashlib.sha256()
    fields = (context.flight.id.encode(), context.gate.encode(), context.device.encode())
    for part in (*fields, *frames):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return _IdempotentRequest(context.principal.key_id, key, context.flight.id, digest.hexdigest())


def _replay(request: _IdempotentRequest, earlier: StoredIdempotency) -> CaptureOutcome:
    if earlier.flight_id != request.flight_id or earlier.request_digest != request.digest:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was sent with a different capture (flight, gate, device or"
            " image); send each new capture with a new key"
        )
    if earlier.outcome is None:
        # Only an uncommitted claim has no outcome, and no reader sees one: run again.
        raise TransactionConflictError("an earlier attempt with this key is not settled")
    stored = json.loads(earlier.outcome)
    return CaptureOutcome(
        capture_id=earlier.capture_id,
        decision=Decision(stored["decision"]),
        reasons=tuple(stored["reasons"]),
        already_processed=bool(stored["already_processed"]),
        traveler_id=stored["traveler_id"],
        score=stored["score"],
        runner_up_score=stored["runner_up_score"],
        model=stored["model"],
        gallery_size=int(stored["gallery_size"]),
        policy_version=stored["policy_version"],
        threshold=stored["threshold"],
        replayed=True,
        frames_fused=int(stored.get("frames_fused", 1)),
    )


def _outcome_json(outcome: CaptureOutcome) -> str:
    return json.dumps(
        {
            "decision": outcome.decision.value,
            "reasons": list(outcome.reasons),
            "already_processed": outcome.already_processed,
            "traveler_id": outcome.traveler_id,
            "score": _number(outcome.score),
            "runner_up_score": _number(outcome.runner_up_score),
            "model": outcome.model,
            "gallery_size": outcome.gallery_size,
            "policy_version": outcome.policy_version,
            "threshold": _number(outcome.threshold),
            "frames_fused": outcome.frames_fused,
        },
        sort_keys=True,
    )


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)
