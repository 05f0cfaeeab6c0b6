"""Self-service kiosks: pairing codes, the device a kiosk becomes once paired, the flight a
lane is boarding, and the anonymous opt-out requests travelers make at the camera."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from entryexit.errors import InvalidInputError

# No 0/O, 1/I/L: a code is read off a screen and typed by a person.
PAIRING_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PAIRING_CODE_LENGTH = 8  # 31^8, about 8.5e11 codes: guessing is hopeless once throttled


def normalise_pairing_code(text: str) -> str | None:
    """The code as stored (upper case, no spaces or dashes), or None if it cannot be one."""
    code = "".join(text.split()).replace("-", "").upper()
    if len(code) != PAIRING_CODE_LENGTH or any(c not in PAIRING_ALPHABET for c in code):
        return None
    return code


def checked_lane(port: str, lane: str) -> tuple[str, str]:
    """A port (its 3-5 character location code) and a lane name (1-16 printable characters)."""
    port, lane = port.strip().upper(), lane.strip()
    if not (3 <= len(port) <= 5 and port.isalnum()):
        raise InvalidInputError("a port is its 3- to 5-character location code (for example JFK)")
    if not (1 <= len(lane) <= 16 and lane.isprintable()):
        raise InvalidInputError("a lane is named in 1 to 16 printable characters")
    return port, lane


class KioskState(StrEnum):
    WAITING = "waiting"  # showing a pairing code
    PAIRED = "paired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class KioskDevice:
    """A kiosk: first a pairing code on a screen, then (once an admin or supervisor entered
    the code) a device bound to one carrier, port and lane. Only hashes of its codes and
    session tokens are stored."""

    id: str
    token_hash: str
    csrf_token: str
    created_at: datetime
    code_hash: str | None
    code_expires_at: datetime | None
    carrier: str | None = None
    port: str | None = None
    lane: str | None = None
    paired_at: datetime | None = None
    paired_by: str | None = None
    session_issued_at: datetime | None = None
    revoked_at: datetime | None = None
    last_seen_at: datetime | None = None
    # The network prefix (/24, /64) the pairing code was asked from: codes are capped per one.
    pairing_network: str | None = None

    @property
    def state(self) -> KioskState:
        if self.revoked_at is not None:
            return KioskState.REVOKED
        return KioskState.WAITING if self.paired_at is None else KioskState.PAIRED


def session_expired(
    device: KioskDevice, now: datetime, idle: timedelta, lifetime: timedelta
) -> bool:
    """Whether a paired kiosk's device session has ended: unused for ``idle`` (its last-seen
    time, written at most once a minute, or its issue), or older than ``lifetime`` since it
    was issued. An ended session is not renewed: the kiosk shows a pairing code again."""
    issued = device.session_issued_at
    if issued is None:
        return True
    seen = device.last_seen_at if device.last_seen_at is not None else issued
    return now - seen >= idle or now - issued >= lifetime


# An IPv6 site is commonly given a /48 (65 536 /64s): for eviction, one holder.
EVICTION_PREFIX_V6 = 48


def eviction_group(network: str | None) -> str:
    """Whom a waiting code counts against when the table of waiting codes is full: its /24
    for IPv4, the /48 holding its /64 for IPv6 (the per-network cap stays per /64), else the
    network as given (codes asked from no known network are one group)."""
    if network is None:
        return ""
    try:
        parsed = ipaddress.ip_network(network, strict=False)
    except ValueError:
        return network
    if parsed.version == 6 and parsed.prefixlen > EVICTION_PREFIX_V6:
        parsed = parsed.supernet(new_prefix=EVICTION_PREFIX_V6)
    return str(parsed)


def code_to_evict(waiting: Iterable[KioskDevice]) -> KioskDevice | None:
    """The waiting code a full table drops for a new kiosk: the oldest of the group
    (``eviction_group``) holding the most waiting codes; between groups holding as many, the
    one whose oldest code is oldest. A flood thus evicts its own codes: a kiosk on another
    network, holding fewer, keeps its code unless someone holds as many networks (/24s, /48s)
    as the table has places (set ENTRYEXIT_KIOSK_NETWORKS in production)."""
    groups: dict[str, list[KioskDevice]] = {}
    for device in sorted(waiting, key=lambda d: (d.created_at, d.id)):
        groups.setdefault(eviction_group(device.pairing_network), []).append(device)
    if not groups:
        return None
    largest = min(
        groups.values(), key=lambda codes: (-len(codes), codes[0].created_at, codes[0].id)
    )
    return largest[0]


@dataclass(frozen=True, slots=True)
class LaneAssignment:
    """The flight a lane is boarding now (one per lane; reassigning replaces it)."""

    port: str
    lane: str
    flight_id: str
    assigned_at: datetime
    assigned_by: str


@dataclass(frozen=True, slots=True)
class LaneWarning:
    """A lane boarding a flight of one carrier where kiosks of another are paired: their
    captures are refused one by one (a kiosk acts for its own carrier only). Lanes are shared
    over a day, so this is said, not refused (review L9)."""

    port: str
    lane: str
    flight_id: str
    flight_carrier: str
    kiosk_carriers: tuple[str, ...]  # the paired kiosks' carriers that are not the flight's


def lane_warnings(
    devices: Iterable[KioskDevice],
    assignments: Iterable[LaneAssignment],
    carrier_of: Callable[[str], str | None],
) -> list[LaneWarning]:
    """The lanes whose flight (``carrier_of`` its id; None: gone) is not of every paired
    kiosk's carrier there, in port and lane order."""
    carriers: dict[tuple[str, str], set[str]] = {}
    for device in devices:
        if device.state is KioskState.PAIRED and device.port and device.lane and device.carrier:
            carriers.setdefault((device.port, device.lane), set()).add(device.carrier)
    found = []
    for assignment in assignments:
        flight_carrier = carrier_of(assignment.flight_id)
        others = carriers.get((assignment.port, assignment.lane), set()) - {flight_carrier}
        if flight_carrier is not None and others:
            found.append(
                LaneWarning(
                    assignment.port,
                    assignment.lane,
                    assignment.flight_id,
                    flight_carrier,
                    tuple(sorted(others)),
                )
            )
    return sorted(found, key=lambda w: (w.port, w.lane))


@dataclass(frozen=True, slots=True)
class KioskOptOutRequest:
    """A traveler at a kiosk asked not to be photographed. Anonymous: no identity is known
    yet; the officer at the manual lane records the opt-out against the document."""

    id: str
    device_id: str
    port: str
    lane: str
    flight_id: str | None
    requested_at: datetime
    notice_version: str
    language: str
    handled_at: datetime | None = None
    handled_by: str | None = None


class TravelerMessage(StrEnum):
    """What a kiosk tells a traveler of a decision, and all it tells."""

    PROCEED = "proceed"
    SEE_OFFICER = "see_officer"
    TRY_AGAIN = "try_again"


# Quality reasons a traveler can act on; anything else is "please try again" without advice.
GUIDANCE_REASONS = frozenset(
    {"no_face", "too_far", "pose", "too_dark", "too_bright", "blur", "more_than_one"}
)


def traveler_message(decision: str, reasons: tuple[str, ...]) -> tuple[TravelerMessage, str]:
    """The message for a gate decision: a match proceeds; a recapture is tried again with the
    first reason the traveler can act on; anything else (no match, an officer's review, a
    watchlist hold, a second pass) reads alike, "please see the officer", never why."""
    if decision == "match" and "already_processed" not in reasons:
        return TravelerMessage.PROCEED, ""
    if decision == "recapture":
        reason = next((r for r in reasons if r in GUIDANCE_REASONS), "")
        return TravelerMessage.TRY_AGAIN, reason
    return TravelerMessage.SEE_OFFICER, ""
