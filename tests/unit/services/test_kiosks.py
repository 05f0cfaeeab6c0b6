"""Kiosks over the in-memory fakes: pairing (single use, expiry, throttled guessing), device
sessions with exactly a gate's rights, revocation, captures at a lane with the notice
recorded, preview guidance, and anonymous opt-out requests."""

from __future__ import annotations

import pytest

from entryexit.domain.access import ROLE_PERMISSIONS, Permission, Role
from entryexit.domain.kiosk import KioskState, TravelerMessage, traveler_message
from entryexit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)
from entryexit.services.kiosks import KioskSession
from tests.fakes import FakeClock
from tests.unit.services.world import ADMIN, AUDITOR, OFFICER, SUPERVISOR, World, traveler

NOTICE = "notice-1"


def paired(world: World, carrier: str = "EE", lane: str = "3") -> KioskSession:
    ticket, code = world.services.kiosks.start_pairing()
    world.services.kiosks.pair(SUPERVISOR, code, carrier, "jfk", lane)
    status = world.services.kiosks.pairing_status(ticket)
    assert status is not None
    assert status.session_token is not None
    session = world.services.kiosks.session(status.session_token)
    assert session is not None
    world.session_token = status.session_token  # type: ignore[attr-defined]
    return session


def test_a_supervisor_pairs_a_kiosk_which_then_holds_a_gate_session_for_its_carrier() -> None:
    world = World()
    kiosks = world.services.kiosks
    ticket, code = kiosks.start_pairing()
    assert len(code) == 8
    # Before pairing, the ticket is worth nothing but the wait.
    assert kiosks.session(ticket) is None
    assert kiosks.pairing_status(ticket).state is KioskState.WAITING  # type: ignore[union-attr]

    device = kiosks.pair(SUPERVISOR, f" {code[:4].lower()}-{code[4:]} ", "ee", "jfk", "3")
    assert (device.carrier, device.port, device.lane) == ("EE", "JFK", "3")
    assert kiosks.session(ticket) is None  # paired, but the ticket is not the session

    status = kiosks.pairing_status(ticket)
    assert status is not None
    assert status.state is KioskState.PAIRED
    assert status.session_token is not None
    assert status.session_token != ticket
    # The session token is issued once; the ticket is spent.
    assert kiosks.pairing_status(ticket) is None
    session = kiosks.session(status.session_token)
    assert session is not None
    assert session.principal.role is Role.GATE
    assert session.principal.carrier == "EE"
    assert {p for p in Permission if session.principal.can(p)} == ROLE_PERMISSIONS[Role.GATE]
    assert {"kiosk pair", "kiosk session issue"} <= set(world.actions())
    # Only hashes are stored.
    stored = world.uow.tables.kiosk_devices[device.id]
    assert status.session_token not in (stored.token_hash, stored.csrf_token)
    assert code not in str(stored)


def test_a_pairing_code_works_once_and_only_for_a_few_minutes() -> None:
    world = World()
    kiosks = world.services.kiosks
    _, code = kiosks.start_pairing()
    kiosks.pair(SUPERVISOR, code, "EE", "JFK", "1")
    with pytest.raises(NotFoundError, match="works once"):
        kiosks.pair(ADMIN, code, "EE", "JFK", "2")

    ticket, late = kiosks.start_pairing()
    world.advance(minutes=5, seconds=1)
    with pytest.raises(NotFoundError):
        kiosks.pair(SUPERVISOR, late, "EE", "JFK", "2")
    assert kiosks.pairing_status(ticket) is None  # the kiosk asks for a new code


def test_guessing_pairing_codes_is_blocked_after_five_wrong_ones() -> None:
    world = World()
    kiosks = world.services.kiosks
    _, code = kiosks.start_pairing()
    wrong = "ABCDEFGH" if code != "ABCDEFGH" else "HGFEDCBA"
    for _ in range(4):
        with pytest.raises(NotFoundError):
            kiosks.pair(SUPERVISOR, wrong, "EE", "JFK", "1")
    with pytest.raises(NotFoundError):
        kiosks.pair(SUPERVISOR, "not a code at all", "EE", "JFK", "1")
    # The right code no longer helps this account: it is blocked, without the code checked.
    with pytest.raises(RateLimitedError):
        kiosks.pair(SUPERVISOR, code, "EE", "JFK", "1")
    assert world.actions().count("kiosk pair") == 6
    # Another account is not blocked; this one is again once the block has run out.
    assert kiosks.pair(ADMIN, code, "EE", "JFK", "1").lane == "1"
    world.advance(minutes=15, seconds=1)
    _, fresh = kiosks.start_pairing()
    assert kiosks.pair(SUPERVISOR, fresh, "EE", "JFK", "2").lane == "2"


def test_only_admins_and_supervisors_pair_kiosks_and_assign_lanes() -> None:
    world = World()
    kiosks = world.services.kiosks
    _, code = kiosks.start_pairing()
    flight = world.flight()
    for actor in (OFFICER, AUDITOR):
        with pytest.raises(PermissionDeniedError):
            kiosks.pair(actor, code, "EE", "JFK", "1")
        with pytest.raises(PermissionDeniedError):
            kiosks.assign_lane(actor, "JFK", "1", flight.id)
    session = paired(world)
    with pytest.raises(PermissionDeniedError):
        kiosks.pair(session.principal, code, "EE", "JFK", "1")  # a kiosk cannot pair another


def test_a_flood_from_one_network_is_capped_there_not_everywhere() -> None:
    world = World()
    kiosks = world.services.kiosks
    for _ in range(kiosks.settings.max_waiting_per_network):
        kiosks.start_pairing("198.51.100.0/24")
    with pytest.raises(RateLimitedError):
        kiosks.start_pairing("198.51.100.0/24")
    kiosks.start_pairing("192.0.2.0/24")  # another network is not held up by it
    world.advance(minutes=6)  # expired codes are forgotten
    kiosks.start_pairing("198.51.100.0/24")


def test_a_full_table_drops_the_oldest_waiting_code_never_refuses_a_new_kiosk() -> None:
    """Probe F7: 20 waiting codes (from 20 networks) used to refuse every further kiosk."""
    world = World()
    kiosks = world.services.kiosks
    _, oldest = kiosks.start_pairing("203.0.113.0/24")
    for i in range(kiosks.settings.max_waiting):
        world.advance(seconds=1)
        kiosks.start_pairing(f"10.{i}.0.0/24")
    ticket, code = kiosks.start_pairing("192.0.2.0/24")  # the real kiosk being installed
    kiosks.pair(SUPERVISOR, code, "EE", "jfk", "4")
    status = kiosks.pairing_status(ticket)
    assert status is not None
    assert status.session_token is not None
    with pytest.raises(NotFoundError):
        kiosks.pair(SUPERVISOR, oldest, "EE", "jfk", "5")  # dropped: its kiosk asks again


def test_a_full_table_drops_a_code_of_the_network_holding_the_most() -> None:
    """Review M4: an attacker with a few /24s and an IPv6 /48 evicts only its own codes."""
    world = World()
    kiosks = world.services.kiosks
    _, real = kiosks.start_pairing("192.0.2.0/24")
    world.advance(seconds=1)
    _, site = kiosks.start_pairing("198.51.100.0/24")
    _, site_too = kiosks.start_pairing("198.51.100.0/24")
    for net in range(3):
        for _ in range(kiosks.settings.max_waiting_per_network):
            world.advance(seconds=1)
            kiosks.start_pairing(f"10.0.{net}.0/24")
    for i in range(3 * kiosks.settings.max_waiting):
        world.advance(seconds=1)
        kiosks.start_pairing(f"2001:db8:7:{i:x}::/64")  # one /48, many /64s
    assert kiosks.pair(SUPERVISOR, real, "EE", "jfk", "1").lane == "1"
    assert kiosks.pair(SUPERVISOR, site, "EE", "jfk", "2").lane == "2"
    assert kiosks.pair(SUPERVISOR, site_too, "EE", "jfk", "3").lane == "3"


def test_a_revoked_kiosk_loses_its_session_at_once() -> None:
    world = World()
    session = paired(world)
    token = world.session_token  # type: ignore[attr-defined]
    assert world.services.kiosks.session(token) is not None
    world.services.kiosks.revoke(SUPERVISOR, session.device.id)
    device = world.uow.tables.kiosk_devices[session.device.id]
    assert device.state is KioskState.REVOKED
    assert world.services.kiosks.session(token) is None
    assert "kiosk revoke" in world.actions()
    with pytest.raises(PermissionDeniedError):
        world.services.kiosks.revoke(OFFICER, session.device.id)


def test_a_device_session_ends_when_unused_for_12_hours() -> None:
    """Probe s9 K1: a device session had no lifetime; a cookie copied off a kiosk whose lane
    then closed stayed good for ever."""
    world = World()
    paired(world)
    token = world.session_token  # type: ignore[attr-defined]
    # In use (seen at least once a minute is written), it lives on past 12 hours...
    for _ in range(13):
        world.advance(hours=1)
        assert world.services.kiosks.session(token) is not None
    # ...unused for 12 hours, it ends, and the kiosk shows a pairing code again.
    world.advance(hours=11, minutes=59)
    assert world.services.kiosks.session(token) is not None
    world.advance(hours=12)
    assert world.services.kiosks.session(token) is None


def test_a_device_session_ends_7_days_after_it_was_issued_even_in_use() -> None:
    world = World()
    paired(world)
    token = world.session_token  # type: ignore[attr-defined]
    for _ in range(7 * 24 - 1):
        world.advance(hours=1)
        assert world.services.kiosks.session(token) is not None
    world.advance(hours=1)
    assert world.services.kiosks.session(token) is None


def test_a_kiosk_boards_the_lanes_flight_and_records_the_notice_shown() -> None:
    world = World()
    kiosks = world.services.kiosks
    flight = world.boarding(travelers=[traveler("A1")], seeds={"A1": 1})
    session = paired(world)
    with pytest.raises(ConflictError, match="not boarding"):
        kiosks.capture(session, [b"face:1"], NOTICE, "en")
    kiosks.assign_lane(SUPERVISOR, "jfk", "3", flight.id)

    decision = kiosks.capture(session, [b"face:1"], NOTICE, "fr")
    assert (decision.message, decision.reason) == (TravelerMessage.PROCEED, "")
    capture_id = next(iter(world.uow.tables.captures))
    assert world.uow.tables.kiosk_notices[capture_id] == (session.device.id, NOTICE, "fr")
    assert world.uow.tables.captures[capture_id].record.gate == "3"

    stranger = kiosks.capture(session, [b"face:99"], NOTICE, "en")
    assert (stranger.message, stranger.reason) == (TravelerMessage.SEE_OFFICER, "")
    blurred = kiosks.capture(session, [b"blurred:1"], NOTICE, "en")
    assert (blurred.message, blurred.reason) == (TravelerMessage.TRY_AGAIN, "blur")
    again = kiosks.capture(session, [b"face:1"], NOTICE, "en")
    assert again.message is TravelerMessage.SEE_OFFICER  # already boarded: an officer's case


def test_a_capture_names_the_notice_in_force_and_at_most_a_burst() -> None:
    world = World()
    kiosks = world.services.kiosks
    flight = world.boarding(travelers=[traveler("A1")], seeds={"A1": 1})
    session = paired(world)
    kiosks.assign_lane(SUPERVISOR, "JFK", "3", flight.id)
    with pytest.raises(ConflictError, match="notice has changed"):
        kiosks.capture(session, [b"face:1"], "notice-0", "en")
    with pytest.raises(InvalidInputError, match="notice is in"):
        kiosks.capture(session, [b"face:1"], NOTICE, "de")
    with pytest.raises(InvalidInputError, match="frames"):
        kiosks.capture(session, [b"face:1"] * 4, NOTICE, "en")
    with pytest.raises(InvalidInputError, match="frames"):
        kiosks.capture(session, [], NOTICE, "en")
    assert not world.uow.tables.captures


def test_a_lane_is_not_assigned_a_flight_none_of_its_kiosks_serves() -> None:
    """Review L8: a lane of EE's kiosks could be given a ZZ flight; every capture there was
    then refused one by one. Refused at assignment (409), with what the lane serves."""
    world = World()
    kiosks = world.services.kiosks
    ours = world.boarding(travelers=[traveler("E1")], seeds={"E1": 1}, carrier="EE")
    other = world.boarding(travelers=[traveler("Z1")], seeds={"Z1": 2}, carrier="ZZ")
    paired(world, carrier="EE")
    events = len(world.uow.tables.audit_events)
    with pytest.raises(ConflictError, match="no kiosk paired on lane 3 at JFK serves carrier ZZ"):
        kiosks.assign_lane(SUPERVISOR, "jfk", "3", other.id)
    assert kiosks.lane_assignments(SUPERVISOR) == []
    assert len(world.uow.tables.audit_events) == events
    kiosks.assign_lane(SUPERVISOR, "jfk", "3", ours.id)
    kiosks.assign_lane(SUPERVISOR, "jfk", "4", other.id)  # no kiosk there yet
    paired(world, carrier="ZZ", lane="3")  # a lane shared by both carriers' kiosks
    kiosks.assign_lane(SUPERVISOR, "jfk", "3", other.id)
    assert {(a.lane, a.flight_id) for a in kiosks.lane_assignments(SUPERVISOR)} == {
        ("3", other.id),
        ("4", other.id),
    }


def test_a_kiosk_of_one_carrier_cannot_board_anothers_flight() -> None:
    world = World()
    kiosks = world.services.kiosks
    other = world.boarding(travelers=[traveler("Z1")], seeds={"Z1": 1}, carrier="ZZ")
    kiosks.assign_lane(SUPERVISOR, "JFK", "3", other.id)  # before any kiosk was paired there
    session = paired(world, carrier="EE")
    with pytest.raises(PermissionDeniedError):
        kiosks.capture(session, [b"face:1"], NOTICE, "en")
    assert not world.uow.tables.captures
    # Nor file opt-out requests on it (they would reach ZZ's officers from EE's kiosk).
    with pytest.raises(PermissionDeniedError):
        kiosks.request_opt_out(session, NOTICE, "en")
    assert not kiosks.opt_out_requests(OFFICER)


@pytest.mark.parametrize(
    ("frame", "scale", "ready", "advice"),
    [
        (b"face:1", 1.0, True, ""),
        (b"empty", 1.0, False, "no_face"),
        (b"far:1", 1.0, False, "too_far"),
        (b"far:1", 2.0, True, ""),  # the same face, in a frame half the capture's size
        (b"two:1", 1.0, False, "more_than_one"),
        (b"blurred:1", 1.0, False, "blur"),
    ],
)
def test_the_preview_check_guides_the_traveler(
    frame: bytes, scale: float, ready: bool, advice: str
) -> None:
    world = World()
    guidance = world.services.kiosks.check_frame(paired(world), frame, scale)
    assert (guidance.ready, guidance.advice) == (ready, advice)


def test_an_opt_out_request_is_anonymous_and_waits_for_an_officer() -> None:
    world = World()
    kiosks = world.services.kiosks
    flight = world.boarding(travelers=[traveler("A1")], seeds={"A1": 1})
    session = paired(world)
    kiosks.assign_lane(SUPERVISOR, "JFK", "3", flight.id)
    request = kiosks.request_opt_out(session, NOTICE, "fr")
    assert (request.port, request.lane, request.flight_id) == ("JFK", "3", flight.id)
    assert (request.notice_version, request.language) == (NOTICE, "fr")
    assert not world.uow.tables.captures  # no photo was taken
    event = next(e for e in world.uow.tables.audit_events if e.entry.action.startswith("kiosk opt"))
    assert set(event.entry.details) <= {"port", "lane", "notice", "request"}

    assert [r.id for r in kiosks.opt_out_requests(OFFICER)] == [request.id]
    with pytest.raises(PermissionDeniedError):
        kiosks.opt_out_requests(session.principal)  # a gate reads nothing back
    with pytest.raises(PermissionDeniedError):
        kiosks.opt_out_requests(AUDITOR)
    kiosks.handle_opt_out_request(OFFICER, request.id)
    assert kiosks.opt_out_requests(OFFICER) == []
    with pytest.raises(NotFoundError):
        kiosks.handle_opt_out_request(OFFICER, request.id)
    assert "kiosk opt-out request handled" in world.actions()


@pytest.mark.parametrize(
    ("decision", "reasons", "message"),
    [
        ("match", (), TravelerMessage.PROCEED),
        ("match", ("already_processed",), TravelerMessage.SEE_OFFICER),
        ("no_match", ("below_threshold",), TravelerMessage.SEE_OFFICER),
        ("manual", ("officer_review",), TravelerMessage.SEE_OFFICER),
        ("manual", ("no_reference_photos",), TravelerMessage.SEE_OFFICER),
        ("recapture", ("too_far",), TravelerMessage.TRY_AGAIN),
    ],
)
def test_anything_but_a_match_reads_please_see_the_officer(
    decision: str, reasons: tuple[str, ...], message: TravelerMessage
) -> None:
    assert traveler_message(decision, reasons)[0] is message
    if message is TravelerMessage.SEE_OFFICER:
        assert traveler_message(decision, reasons)[1] == ""


def test_a_lane_boarding_one_carriers_flight_with_anothers_kiosks_is_warned_of() -> None:
    """Review L9: lanes are shared over a day, so neither a pairing nor an assignment is
    refused for it, but the console says which lanes will refuse their kiosks' captures. Both
    directions: a ZZ kiosk paired onto a lane boarding EE's flight, and an EE flight assigned
    to a lane holding kiosks of EE and ZZ."""
    world = World()
    kiosks = world.services.kiosks
    ours = world.boarding(travelers=[traveler("E1")], seeds={"E1": 1}, carrier="EE")
    paired(world, carrier="EE")
    kiosks.assign_lane(SUPERVISOR, "jfk", "3", ours.id)
    assert kiosks.lane_warnings(SUPERVISOR) == []

    paired(world, carrier="ZZ", lane="3")  # accepted: the lane may board a ZZ flight later
    (warning,) = kiosks.lane_warnings(SUPERVISOR)
    assert (warning.port, warning.lane, warning.flight_id) == ("JFK", "3", ours.id)
    assert (warning.flight_carrier, warning.kiosk_carriers) == ("EE", ("ZZ",))

    paired(world, carrier="EE", lane="4")
    paired(world, carrier="ZZ", lane="4")
    kiosks.assign_lane(SUPERVISOR, "jfk", "4", ours.id)  # accepted: an EE kiosk serves it
    assert [(w.lane, w.kiosk_carriers) for w in kiosks.lane_warnings(SUPERVISOR)] == [
        ("3", ("ZZ",)),
        ("4", ("ZZ",)),
    ]
    # Lane 3 now boards ZZ's flight: its EE kiosk is the one refused.
    other = world.boarding(travelers=[traveler("Z1")], seeds={"Z1": 2}, carrier="ZZ", number="77")
    kiosks.assign_lane(SUPERVISOR, "jfk", "3", other.id)
    assert [
        (w.lane, w.flight_carrier, w.kiosk_carriers) for w in kiosks.lane_warnings(SUPERVISOR)
    ] == [
        ("3", "ZZ", ("EE",)),
        ("4", "EE", ("ZZ",)),
    ]
    with pytest.raises(PermissionDeniedError):
        kiosks.lane_warnings(OFFICER)


def test_a_flooding_kiosk_files_a_few_opt_out_requests_then_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Probe s9 K2: one kiosk session filed 400 anonymous opt-out requests in 18 s, each a
    line on every officer's Kiosks page. Per kiosk now: 3 at once, then one every 10 s, and
    at most 5 waiting for an officer; another kiosk is not held back."""
    world = World()
    # Time stands still but for the test's own steps (the fake clock ticks at every read).
    monkeypatch.setattr(FakeClock, "__call__", lambda self: self.now)
    kiosks = world.services.kiosks
    flooding = paired(world)
    other = paired(world, lane="4")

    def ask(session: KioskSession) -> bool:
        try:
            kiosks.request_opt_out(session, NOTICE, "en")
        except RateLimitedError:
            return False
        return True

    assert [ask(flooding) for _ in range(10)] == [True] * 3 + [False] * 7
    assert ask(other)
    world.advance(seconds=10)
    assert [ask(flooding) for _ in range(3)] == [True, False, False]
    world.advance(seconds=10)
    assert ask(flooding)  # 5 waiting now
    world.advance(minutes=5)  # tokens again, but 5 of this kiosk's wait for an officer
    with pytest.raises(RateLimitedError, match="5 requests from this kiosk are waiting"):
        kiosks.request_opt_out(flooding, NOTICE, "en")
    assert ask(other)
    waiting = kiosks.opt_out_requests(OFFICER)
    assert len(waiting) == 7
    kiosks.handle_opt_out_request(OFFICER, next(r.id for r in waiting if r.lane == "3"))
    assert ask(flooding)  # an officer closed one: room for the next traveler


def test_the_officers_see_the_newest_requests_and_how_many_more_wait() -> None:
    world = World()
    kiosks = world.services.kiosks
    sessions = [paired(world, lane=str(lane)) for lane in range(1, 5)]
    for _ in range(4):
        for session in sessions:
            kiosks.request_opt_out(session, NOTICE, "en")
        world.advance(seconds=30)
    shown, waiting = kiosks.pending_opt_out_requests(OFFICER, 5)
    assert waiting == 16
    assert shown == kiosks.opt_out_requests(OFFICER)[:5]
    times = [r.requested_at for r in kiosks.opt_out_requests(OFFICER)]
    assert times == sorted(times, reverse=True)
    with pytest.raises(PermissionDeniedError):
        kiosks.pending_opt_out_requests(AUDITOR, 5)
