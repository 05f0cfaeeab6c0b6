"""Self-service kiosks: pairing from the console, device sessions with a gate's rights, the
quality check that guides a traveler, captures with the notice shown, and anonymous opt-out
requests for the officer at the manual lane.

A kiosk never holds an API key. It shows a one-time code; an admin or supervisor enters the
code in the console with the carrier, port and lane; the kiosk's next poll turns its pairing
ticket into a device session (a fresh token, so a ticket seen before pairing is worth
nothing after). Only SHA-256 hashes of codes, tickets and session tokens are stored.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from entryexit.domain.access import Permission, Principal, Role
from entryexit.domain.kiosk import (
    PAIRING_ALPHABET,
    PAIRING_CODE_LENGTH,
    KioskDevice,
    KioskOptOutRequest,
    KioskState,
    LaneAssignment,
    LaneWarning,
    TravelerMessage,
    checked_lane,
    code_to_evict,
    lane_warnings,
    normalise_pairing_code,
    session_expired,
    traveler_message,
)
from entryexit.domain.policy import PrivacyNotice
from entryexit.domain.throttle import FailureLockout, TokenBuckets
from entryexit.errors import (
    ConflictError,
    InvalidInputError,
    NoFaceError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)
from entryexit.services.audit import AuditTrail
from entryexit.services.callers import for_caller
from entryexit.services.captures import CaptureService
from entryexit.services.flights import FlightService
from entryexit.services.policies import PolicyService
from entryexit.services.ports import Clock
from entryexit.services.unit_of_work import UnitOfWork, UnitOfWorkFactory, in_transaction

if TYPE_CHECKING:
    from entryexit.biometrics.engine import FrameQuality


@runtime_checkable
class FrameChecker(Protocol):
    """The face engine's quality gate without the embedding (``FaceEngine.check_frame``)."""

    def check_frame(self, data: bytes, scale: float = 1.0) -> FrameQuality: ...


@dataclass(frozen=True, slots=True)
class KioskSettings:
    code_lifetime: timedelta = timedelta(minutes=5)
    # Kiosks showing a code at once: bounds what a guess can hit and what a flood can store.
    # Past it the oldest waiting code is dropped (its kiosk asks again), never a new kiosk
    # refused: otherwise anyone reaching /kiosk could keep every real kiosk from pairing.
    max_waiting: int = 20
    # Kiosks showing a code at once from one network (/24 IPv4, /64 IPv6): a flood from one
    # place cannot take the whole table.
    max_waiting_per_network: int = 5
    pair_failures_before_block: int = 5
    pair_failure_window: timedelta = timedelta(minutes=5)
    pair_block: timedelta = timedelta(minutes=15)
    # A device session's last-seen time is written at most this often.
    touch_every: timedelta = timedelta(seconds=60)
    # A device session ends when unused this long (a lane closed overnight)...
    session_idle: timedelta = timedelta(hours=12)
    # ...and this long after it was issued, used or not: a copied cookie is worth at most
    # this long. The kiosk then shows a pairing code again (a supervisor re-pairs it).
    session_lifetime: timedelta = timedelta(days=7)
    max_frames: int = 3
    max_scale: float = 8.0
    # Opt-out requests stand for travelers at a lane: a few a minute per kiosk at most. Per
    # device: one every 10 s on average, 3 at once; and at most 5 of a kiosk's waiting for
    # an officer (its next traveler is sent to the manual lane all the same). Past either,
    # 429: one kiosk session cannot bury every officer's list (probe s9 K2).
    opt_out_rate: float = 0.1
    opt_out_burst: float = 3.0
    max_pending_opt_outs: int = 5


@dataclass(frozen=True, slots=True)
class KioskSession:
    """A paired kiosk, acting with exactly a gate's rights for its carrier."""

    device: KioskDevice
    principal: Principal
    csrf_token: str

    @property
    def port(self) -> str:
        assert self.device.port is not None
        return self.device.port

    @property
    def lane(self) -> str:
        assert self.device.lane is not None
        return self.device.lane


@dataclass(frozen=True, slots=True)
class PairingStatus:
    state: KioskState
    # Set once, when the pairing ticket becomes a device session: the new cookie's token.
    session_token: str | None = None


@dataclass(frozen=True, slots=True)
class Guidance:
    """The quality gate's verdict on a preview frame: ready to capture, or what to change."""

    ready: bool
    advice: str  # "" when ready; else a reason code (no_face, too_far, pose, ...)


@dataclass(frozen=True, slots=True)
class KioskDecision:
    """All a traveler is shown of a capture."""

    message: TravelerMessage
    reason: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _principal(device: KioskDevice) -> Principal:
    return Principal(device.id, f"kiosk {device.port} {device.lane}", Role.GATE, device.carrier)


def _carrier(text: str) -> str:
    carrier = text.strip().upper()
    if not (2 <= len(carrier) <= 3 and carrier.isalnum()):
        raise InvalidInputError("a carrier is its 2- or 3-character airline code")
    return carrier


class KioskService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        audit: AuditTrail,
        policies: PolicyService,
        flights: FlightService,
        captures: CaptureService,
        frames: FrameChecker | None,
        settings: KioskSettings | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._audit = audit
        self._policies = policies
        self._flights = flights
        self._captures = captures
        self._frames = frames
        self.settings = settings or KioskSettings()
        s = self.settings
        self._opt_out_buckets = TokenBuckets(s.opt_out_rate, s.opt_out_burst)
        # Per person entering codes: a supervisor's account cannot be used to guess them.
        self._pair_failures = FailureLockout(
            s.pair_failures_before_block,
            s.pair_failure_window.total_seconds(),
            s.pair_block.total_seconds(),
        )

    # --- pairing (the kiosk's side) ---------------------------------------------------------
    def start_pairing(self, network: str | None = None) -> tuple[str, str]:
        """A new kiosk waiting to be paired, asking from ``network`` (its address's /24 or
        /64): returns (ticket token for its cookie, code to show). Refused while too many
        kiosks of that network are waiting; when too many are waiting in all, a code of the
        network (/24, IPv6 /48) holding the most is dropped instead (``code_to_evict``)."""
        now = self._clock()
        code = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(PAIRING_CODE_LENGTH))
        ticket = secrets.token_urlsafe(32)
        device = KioskDevice(
            id=str(uuid.uuid4()),
            token_hash=_hash(ticket),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            code_hash=_hash(code),
            code_expires_at=now + self.settings.code_lifetime,
            pairing_network=network,
        )
        s = self.settings

        def start(uow: UnitOfWork) -> None:
            uow.kiosks.delete_expired_codes(now)
            if network is not None and (
                uow.kiosks.count_waiting(now, network) >= s.max_waiting_per_network
            ):
                raise RateLimitedError(
                    "too many kiosks on this network are waiting to be paired; try later", 60
                )
            waiting = uow.kiosks.waiting(now)
            while len(waiting) >= s.max_waiting:
                victim = code_to_evict(waiting)
                if victim is None:
                    break
                uow.kiosks.delete_waiting(victim.id)
                waiting.remove(victim)
            uow.kiosks.add_device(device)

        in_transaction(self._uow, start)
        return ticket, code

    def pairing_status(self, ticket: str | None) -> PairingStatus | None:
        """Where a waiting kiosk stands; None if its ticket is unknown, expired or revoked.
        The first poll after pairing issues the device session (a new token)."""
        if not ticket:
            return None
        now = self._clock()

        def check(uow: UnitOfWork) -> PairingStatus | None:
            device = uow.kiosks.device_by_token(_hash(ticket))
            if device is None or device.state is KioskState.REVOKED:
                return None
            if device.state is KioskState.WAITING:
                expired = device.code_expires_at is None or device.code_expires_at <= now
                return None if expired else PairingStatus(KioskState.WAITING)
            if device.session_issued_at is not None:
                return PairingStatus(KioskState.PAIRED)
            token = secrets.token_urlsafe(32)
            uow.kiosks.issue_session(device.id, _hash(token), now)
            self._audit.record(
                uow, "kiosk session issue", "ok", _principal(device), "kiosk", device.id
            )
            return PairingStatus(KioskState.PAIRED, token)

        return in_transaction(self._uow, check)

    def session(self, token: str | None) -> KioskSession | None:
        """The paired, unrevoked kiosk holding this session token, or None."""
        if not token:
            return None
        now = self._clock()
        with self._uow(read_only=True) as uow:
            device = uow.kiosks.device_by_token(_hash(token))
        if device is None or device.state is not KioskState.PAIRED:
            return None
        if device.session_issued_at is None:
            return None  # a pairing ticket is not a session, even once its kiosk is paired
        s = self.settings
        if session_expired(device, now, s.session_idle, s.session_lifetime):
            return None
        seen = device.last_seen_at
        if seen is None or now - seen >= self.settings.touch_every:
            in_transaction(self._uow, lambda uow: uow.kiosks.touch(device.id, now))
        return KioskSession(device, _principal(device), device.csrf_token)

    def credential_holder(self, token: str) -> Principal | None:
        """Whom a kiosk cookie (a pairing ticket or a device session, live or not) names, for
        the audit event of a refused request; None for an unknown token or a kiosk not yet
        paired. Never an authorisation: :meth:`session` is."""
        with self._uow(read_only=True) as uow:
            device = uow.kiosks.device_by_token(_hash(token))
        if device is None or device.paired_at is None:
            return None
        return _principal(device)

    @staticmethod
    def csrf_valid(session: KioskSession, presented: str | None) -> bool:
        return presented is not None and secrets.compare_digest(session.csrf_token, presented)

    # --- pairing and lanes (the console's side) -------------------------------------------
    def pair(self, actor: Principal, code: str, carrier: str, port: str, lane: str) -> KioskDevice:
        actor.require(Permission.KIOSK_MANAGE)
        carrier = _carrier(carrier)
        port, lane = checked_lane(port, lane)
        now = self._clock()
        moment = now.timestamp()
        blocked = self._pair_failures.blocked_for(actor.key_id, moment)
        if blocked > 0:
            self._audit.record_alone("kiosk pair", "blocked", actor, "kiosk")
            raise RateLimitedError(
                "too many wrong pairing codes; wait before trying again", blocked
            )
        normalised = normalise_pairing_code(code)

        def pair(uow: UnitOfWork) -> KioskDevice | None:
            device = (
                uow.kiosks.device_by_code(_hash(normalised)) if normalised is not None else None
            )
            live = (
                device is not None
                and device.state is KioskState.WAITING
                and device.code_expires_at is not None
                and device.code_expires_at > now
            )
            if device is None or not live:
                return None
            uow.kiosks.pair(device.id, carrier, port, lane, now, actor.key_id)
            self._audit.record(
                uow,
                "kiosk pair",
                "ok",
                actor,
                "kiosk",
                device.id,
                {"carrier": carrier, "port": port, "lane": lane},
            )
            return uow.kiosks.get_device(device.id)

        paired = in_transaction(self._uow, pair)
        if paired is None:
            self._pair_failures.failure(actor.key_id, moment)
            self._audit.record_alone("kiosk pair", "denied", actor, "kiosk")
            raise NotFoundError(
                "no kiosk is showing this code (a code works once, for"
                f" {int(self.settings.code_lifetime.total_seconds() // 60)} minutes)"
            )
        self._pair_failures.success(actor.key_id)
        return paired

    def devices(self, actor: Principal) -> list[KioskDevice]:
        actor.require(Permission.KIOSK_MANAGE)
        with self._uow(read_only=True) as uow:
            return uow.kiosks.devices()

    def revoke(self, actor: Principal, device_id: str) -> None:
        actor.require(Permission.KIOSK_MANAGE)
        now = self._clock()

        def revoke(uow: UnitOfWork) -> None:
            device = uow.kiosks.get_device(device_id)
            if device is None or device.state is KioskState.WAITING:
                raise NotFoundError("no such kiosk")
            if device.state is KioskState.REVOKED:
                return
            uow.kiosks.revoke(device_id, now)
            self._audit.record(uow, "kiosk revoke", "ok", actor, "kiosk", device_id)

        in_transaction(self._uow, revoke)

    def assign_lane(self, actor: Principal, port: str, lane: str, flight_id: str) -> None:
        """Say which flight a lane is boarding now (replacing the one before); refused (409)
        when the lane has paired kiosks and none of them serves the flight's carrier."""
        actor.require(Permission.KIOSK_MANAGE)
        port, lane = checked_lane(port, lane)
        flight = self._flights.get(flight_id)
        assignment = LaneAssignment(port, lane, flight.id, self._clock(), actor.key_id)

        def assign(uow: UnitOfWork) -> None:
            serving = {
                device.carrier
                for device in uow.kiosks.devices()
                if device.state is KioskState.PAIRED and (device.port, device.lane) == (port, lane)
            }
            if serving and flight.carrier not in serving:
                # Every capture of the lane's kiosks would be refused by the carrier check.
                raise ConflictError(
                    f"no kiosk paired on lane {lane} at {port} serves carrier {flight.carrier}"
                    f" (they serve {', '.join(sorted(str(c) for c in serving))}): assign the"
                    f" flight to a lane with a kiosk of {flight.carrier}, or pair one here"
                )
            uow.kiosks.assign_lane(assignment)
            self._audit.record(
                uow, "lane assign", "ok", actor, "flight", flight.id, {"port": port, "lane": lane}
            )

        in_transaction(self._uow, assign)

    def lane_assignments(self, actor: Principal) -> list[LaneAssignment]:
        actor.require(Permission.KIOSK_MANAGE)
        with self._uow(read_only=True) as uow:
            return uow.kiosks.lane_assignments()

    def lane_warnings(self, actor: Principal) -> list[LaneWarning]:
        """Lanes boarding a flight of one carrier with kiosks of another paired there (their
        captures are refused), shown after a pairing or an assignment and on the kiosks page:
        lanes are shared over a day, so neither is refused for it (review L9)."""
        actor.require(Permission.KIOSK_MANAGE)
        with self._uow(read_only=True) as uow:

            def carrier_of(flight_id: str) -> str | None:
                flight = uow.flights.get(flight_id)
                return None if flight is None else flight.carrier

            return lane_warnings(uow.kiosks.devices(), uow.kiosks.lane_assignments(), carrier_of)

    # --- the traveler's screen -------------------------------------------------------------
    def notice(self) -> PrivacyNotice:
        return self._policies.in_force(self._clock()).notice

    def lane_flight(self, session: KioskSession) -> str | None:
        with self._uow(read_only=True) as uow:
            assignment = uow.kiosks.lane_assignment(session.port, session.lane)
        return None if assignment is None else assignment.flight_id

    def check_frame(self, session: KioskSession, frame: bytes, scale: float) -> Guidance:
        """The quality gate on a preview frame ``scale`` times smaller than the capture."""
        session.principal.require(Permission.CAPTURE_SUBMIT)
        if self._frames is None:
            raise ConflictError("this service has no face engine to check frames with")
        if not 1.0 <= scale <= self.settings.max_scale:
            raise InvalidInputError(f"scale is between 1 and {self.settings.max_scale:g}")
        try:
            # The kiosk's own share of the decode slots (its device id), as its captures.
            with for_caller(session.principal):
                checked = self._frames.check_frame(frame, scale)
        except NoFaceError:
            return Guidance(False, "no_face")
        if checked.people > 1:
            return Guidance(False, "more_than_one")
        reasons = [r.value for r in checked.quality.reasons]
        if not reasons:
            return Guidance(True, "")
        return Guidance(False, reasons[0])

    def _checked_notice(self, notice_version: str, language: str) -> PrivacyNotice:
        notice = self.notice()
        if notice_version != notice.version:
            raise ConflictError("the privacy notice has changed: show the current one first")
        if language not in notice.languages:
            raise InvalidInputError(f"the notice is in {', '.join(notice.languages)}")
        return notice

    def capture(
        self,
        session: KioskSession,
        frames: Sequence[bytes],
        notice_version: str,
        language: str,
    ) -> KioskDecision:
        """Decide on a capture at the kiosk's lane and record the notice shown before it.
        ``frames`` is a burst of up to ``max_frames``; the capture service takes the first
        until it accepts bursts."""
        if not 1 <= len(frames) <= self.settings.max_frames:
            raise InvalidInputError(f"send 1 to {self.settings.max_frames} frames")
        self._checked_notice(notice_version, language)
        flight_id = self.lane_flight(session)
        if flight_id is None:
            raise ConflictError("this lane is not boarding a flight now")
        device = f"kiosk {session.device.id[:8]}"
        outcome = self._captures.process(
            session.principal, flight_id, frames[0], session.lane, device
        )
        at = self._clock()
        in_transaction(
            self._uow,
            lambda uow: uow.kiosks.record_capture_notice(
                outcome.capture_id, session.device.id, notice_version, language, at
            ),
        )
        message, reason = traveler_message(outcome.decision.value, outcome.reasons)
        return KioskDecision(message, reason)

    def request_opt_out(
        self, session: KioskSession, notice_version: str, language: str
    ) -> KioskOptOutRequest:
        """A traveler declined the photo: an anonymous request for the manual lane."""
        session.principal.require(Permission.OPT_OUT_RECORD)
        self._checked_notice(notice_version, language)
        device_id = session.device.id
        wait = self._opt_out_buckets.take(device_id, self._clock().timestamp())
        if wait > 0:
            raise RateLimitedError(
                "this kiosk asks for the officer too often; send the traveler to the manual lane",
                wait,
            )
        flight_id = self.lane_flight(session)
        request = KioskOptOutRequest(
            id=str(uuid.uuid4()),
            device_id=session.device.id,
            port=session.port,
            lane=session.lane,
            flight_id=flight_id,
            requested_at=self._clock(),
            notice_version=notice_version,
            language=language,
        )

        def record(uow: UnitOfWork) -> None:
            pending = uow.kiosks.count_opt_out_requests(True, device_id)
            if pending >= self.settings.max_pending_opt_outs:
                raise RateLimitedError(
                    f"{pending} requests from this kiosk are waiting for an officer; send the"
                    " traveler to the manual lane",
                    60,
                )
            if flight_id is not None:
                flight = FlightService.get_in(uow, flight_id)
                if not session.principal.serves(flight.carrier):
                    raise PermissionDeniedError(
                        "this kiosk does not serve the carrier of the flight its lane boards"
                    )
            uow.kiosks.add_opt_out_request(request)
            self._audit.record(
                uow,
                "kiosk opt-out request",
                "ok",
                session.principal,
                "kiosk",
                session.device.id,
                {"port": request.port, "lane": request.lane, "notice": notice_version},
            )

        in_transaction(self._uow, record)
        return request

    # --- the officer's side -------------------------------------------------------------
    def opt_out_requests(
        self, actor: Principal, pending_only: bool = True, limit: int | None = None
    ) -> list[KioskOptOutRequest]:
        """Newest first; at most ``limit``."""
        actor.require(Permission.KIOSK_REQUESTS)
        with self._uow(read_only=True) as uow:
            return uow.kiosks.opt_out_requests(pending_only, limit)

    def pending_opt_out_requests(
        self, actor: Principal, limit: int
    ) -> tuple[list[KioskOptOutRequest], int]:
        """The ``limit`` newest requests waiting for an officer, and how many wait in all."""
        actor.require(Permission.KIOSK_REQUESTS)
        with self._uow(read_only=True) as uow:
            return uow.kiosks.opt_out_requests(True, limit), uow.kiosks.count_opt_out_requests(True)

    def handle_opt_out_request(self, actor: Principal, request_id: str) -> None:
        actor.require(Permission.KIOSK_REQUESTS)
        now = self._clock()

        def handle(uow: UnitOfWork) -> None:
            if not uow.kiosks.handle_opt_out_request(request_id, now, actor.key_id):
                raise NotFoundError("no such pending kiosk request")
            self._audit.record(
                uow, "kiosk opt-out request handled", "ok", actor, "kiosk_request", request_id
            )

        in_transaction(self._uow, handle)


__all__ = [
    "FrameChecker",
    "Guidance",
    "KioskDecision",
    "KioskService",
    "KioskSession",
    "KioskSettings",
    "PairingStatus",
]
