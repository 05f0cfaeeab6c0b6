"""UN/EDIFACT PAXLST passenger and crew lists (directories D02B and D05B, as airlines send
them under the IATA/WCO API guidelines): parsed into manifest travelers, and written back.

Only the envelope is generic EDIFACT (service string advice, separators, release character,
segment counts); the meaning of each segment is ours. A malformed message raises an error that
names the segment's position and tag. A traveler whose document is missing is reported, not
dropped and not invented.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date

from entryexit.documents.manifest import (
    check_document_nationality,
    check_traveler,
    document_expired,
    home_state_citizen,
    traveler_row,
)
from entryexit.documents.text import MAX_TRAVELERS, excerpt, normalise_state
from entryexit.domain.model import (
    CitizenshipClass,
    DocumentKey,
    DocumentType,
    ManifestTraveler,
    Sex,
)
from entryexit.errors import InvalidInputError

DEFAULT_SEPARATORS = (":", "+", ".", "?", " ", "'")
# Directories whose segments we read. D:03B lays out every segment read here (TDT, LOC, DTM,
# NAD, ATT, NAT, DOC, CNT) as D:02B does, so it is read as D:02B.
SUPPORTED_DIRECTORIES = ("D:02B", "D:03B", "D:05B")
# The longest data element of a PAXLST (FTX free text) is an..512.
MAX_COMPONENT_LENGTH = 512
MAX_ELEMENTS = 99
# A traveler takes at most about 20 segments (NAD, ATT, DTM, GEI, FTX, LOC x 3, COM, EMP,
# NAT, RFF, DOC, DTM, LOC, CPI, QTY ...), so this bounds a message of MAX_TRAVELERS travelers.
MAX_SEGMENTS = 25 * MAX_TRAVELERS + 1_000
# UNT 0074 (number of segments in a message) is n..10.
_SEGMENT_COUNT = re.compile(r"[0-9]{1,10}")
_DATE = re.compile(r"[0-9]{6}|[0-9]{8}")
PASSENGER, CREW = "FL", "FM"
_DOCUMENT_TYPES = {
    "P": DocumentType.PASSPORT,
    "V": DocumentType.VISA,
    "I": DocumentType.ID_CARD,
    "A": DocumentType.ID_CARD,
    "C": DocumentType.PERMANENT_RESIDENT_CARD,
}
_EXPORT_TYPES = {value: key for key, value in _DOCUMENT_TYPES.items() if key != "A"}


class PaxlstError(InvalidInputError):
    code = "invalid-paxlst"


@dataclass(frozen=True, slots=True)
class Segment:
    position: int
    tag: str
    elements: tuple[tuple[str, ...], ...]

    def value(self, element: int, component: int = 0) -> str:
        if element >= len(self.elements) or component >= len(self.elements[element]):
            return ""
        return self.elements[element][component]

    def where(self) -> str:
        return f"segment {self.position} ({self.tag})"


def split_segments(text: str) -> list[Segment]:
    """Split an interchange into segments, honouring UNA and the release character."""
    return list(iter_segments(text))


def iter_segments(text: str) -> Iterator[Segment]:
    """The segments of an interchange, one at a time, in time linear in its length.

    The text between two separators is taken as one slice (never character by character);
    unreleased line breaks are ignored wherever they stand (carriers put one after every
    segment, some wrap long segments), unless the UNA advice makes one a separator. A
    component longer than :data:`MAX_COMPONENT_LENGTH`, a segment with more than
    :data:`MAX_ELEMENTS` elements or components, or more than :data:`MAX_SEGMENTS` segments
    raise :class:`PaxlstError`.
    """
    separators = DEFAULT_SEPARATORS
    # Not stripped at the end: the advice may make a line break the segment terminator.
    body = text.lstrip("\ufeff").lstrip()
    position = 1
    if body.startswith("UNA"):
        if len(body) < 9:
            raise PaxlstError("segment 1 (UNA): the service string advice is cut short")
        advice = body[3:9]
        separators = (advice[0], advice[1], advice[2], advice[3], advice[4], advice[5])
        body = body[9:]
        position = 2
    component, element, _, release, _, terminator = separators
    specials = {component, element, release, terminator} | ({"\r", "\n"} - set(separators))
    special = re.compile("|".join(re.escape(c) for c in sorted(specials)))
    elements: list[tuple[str, ...]] = []
    components: list[str] = []
    parts: list[str] = []
    length = 0
    index, end = 0, len(body)
    while True:
        found = special.search(body, index)
        stop = end if found is None else found.start()
        if stop > index:
            parts.append(body[index:stop])
            length += stop - index
        if length > MAX_COMPONENT_LENGTH:
            raise PaxlstError(
                f"segment {position}: a value longer than {MAX_COMPONENT_LENGTH} characters"
            )
        if found is None:
            break
        char = found.group()
        index = found.end()
        if char == release:
            if index >= end:
                raise PaxlstError(f"segment {position}: the message ends with a release character")
            parts.append(body[index])
            length += 1
            index += 1
            continue
        if char not in separators:
            continue  # a line break: layout, not data
        components.append("".join(parts))
        parts, length = [], 0
        if len(components) > MAX_ELEMENTS:
            raise PaxlstError(f"segment {position}: more than {MAX_ELEMENTS} components")
        if char == component:
            continue
        elements.append(tuple(components))
        components = []
        if len(elements) > MAX_ELEMENTS:
            raise PaxlstError(f"segment {position}: more than {MAX_ELEMENTS} elements")
        if char == terminator:
            if position > MAX_SEGMENTS:
                raise PaxlstError(
                    f"the interchange has more than {MAX_SEGMENTS} segments"
                    f" (a manifest lists at most {MAX_TRAVELERS} travelers)"
                )
            yield _segment(elements, position)
            position += 1
            elements = []
    if "".join(parts).strip() or components or elements:
        raise PaxlstError(f"segment {position}: the last segment has no terminator")


def _segment(elements: list[tuple[str, ...]], position: int) -> Segment:
    tag = elements[0][0].strip()
    if not (len(tag) == 3 and tag.isascii() and tag.isalpha() and tag.isupper()):
        raise PaxlstError(f"segment {position}: {excerpt(tag, 10)} is not a segment tag")
    return Segment(position, tag, tuple(elements[1:]))


@dataclass(frozen=True, slots=True)
class FlaggedTraveler:
    position: int
    role: str
    reason: str


@dataclass(frozen=True, slots=True)
class PaxlstManifest:
    carrier: str
    flight_number: str
    departure_port: str
    arrival_port: str
    travelers: tuple[ManifestTraveler, ...]
    roles: tuple[str, ...]
    flagged: tuple[FlaggedTraveler, ...]
    messages: int

    def as_dict(self) -> dict[str, object]:
        return {
            "carrier": self.carrier,
            "flight_number": self.flight_number,
            "departure_port": self.departure_port,
            "arrival_port": self.arrival_port,
            "messages": self.messages,
            "travelers": [
                {"role": "crew" if role == CREW else "passenger", **traveler_row(t)}
                for t, role in zip(self.travelers, self.roles, strict=True)
            ],
            "flagged": [
                {"segment": f.position, "role": f.role, "reason": f.reason} for f in self.flagged
            ],
        }


@dataclass(slots=True)
class _Person:
    position: int
    role: str
    surname: str
    given_names: str
    sex: str = ""
    birth: str = ""
    nationality: str = ""
    document_type: str = ""
    document_number: str = ""
    expiry: str = ""
    issuing_state: str = ""
    booking_reference: str = ""
    in_document: bool = False
    # The document read is a travel document (not a visa): a later DOC does not replace it.
    travel_document: bool = False


@dataclass(slots=True)
class _State:
    carrier: str = ""
    flight_number: str = ""
    departure: str = ""
    arrival: str = ""
    last_loc: str = ""
    people: list[_Person] = field(default_factory=list)


def _century(text: str, segment: Segment, today: date, *, past: bool) -> date:
    digits = text.strip()
    if _DATE.fullmatch(digits):
        try:
            if len(digits) == 8:
                return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
            year = int(digits[:2])
            if past:
                century = 2000 if 2000 + year <= today.year else 1900
            else:
                century = 2000 if year < (today.year % 100) + 50 else 1900
            return date(century + year, int(digits[2:4]), int(digits[4:]))
        except ValueError:
            pass
    raise PaxlstError(f"{segment.where()}: {excerpt(text)} is not a date (YYMMDD or CCYYMMDD)")


# The character sets of UNB 0001 (the syntax identifier) read here, as Python codecs. UNOA
# and UNOB are subsets of ASCII (read as ASCII); UNOC to UNOK are parts of ISO 8859 (their
# bytes 0x80-0x9F are no characters: refused); UNOW and UNOY are ISO 10646 in UTF-8.
SYNTAX_CHARSETS = {
    "UNOA": "ascii",
    "UNOB": "ascii",
    "UNOC": "iso8859-1",
    "UNOD": "iso8859-2",
    "UNOE": "iso8859-5",
    "UNOF": "iso8859-7",
    "UNOG": "iso8859-3",
    "UNOH": "iso8859-4",
    "UNOI": "iso8859-6",
    "UNOJ": "iso8859-8",
    "UNOK": "iso8859-9",
    "UNOW": "utf-8",
    "UNOY": "utf-8",
}
_BOM = b"\xef\xbb\xbf"
_C1_BYTE = re.compile(rb"[\x80-\x9f]")


def syntax_identifier(data: bytes) -> str | None:
    """UNB 0001 of the interchange (after an optional UNA advice), upper-cased; None when
    the interchange does not start with a UNB (a bare message)."""
    head = data[: 9 + 64].decode("latin-1")  # one character a byte: ASCII-safe to scan
    head = head.removeprefix(_BOM.decode("latin-1")).lstrip()
    component, element = ":", "+"
    if head.startswith("UNA") and len(head) >= 9:
        component, element = head[3], head[4]
        head = head[9:].lstrip()
    if not head.startswith("UNB") or head[3:4] != element:
        return None
    value = head[4:]
    for stop in (component, element):
        value = value.split(stop, 1)[0]
    return value.strip().upper()


def decode_interchange(data: bytes) -> str:
    """The interchange as text, decoded in the character set its UNB declares (UTF-8 when
    there is no UNB). An interchange not valid in that set is refused, naming the first
    offending byte's offset: it is never re-read in another set, which would turn every
    traveler's name into mojibake for one bad byte (review L2)."""
    declared = syntax_identifier(data)
    charset = "utf-8" if declared is None else SYNTAX_CHARSETS.get(declared)
    if charset is None:
        raise PaxlstError(
            f"UNB: syntax identifier {excerpt(declared or '')} is not supported; supported:"
            f" {', '.join(SYNTAX_CHARSETS)}"
        )
    named = declared or "no UNB: UTF-8"
    start = len(_BOM) if data.startswith(_BOM) else 0
    if charset.startswith("iso8859") and (bad := _C1_BYTE.search(data, start)) is not None:
        raise PaxlstError(
            f"byte {bad.start()}: 0x{data[bad.start()]:02X} is no character of {named}"
            f" ({charset}), the character set UNB declares"
        )
    try:
        return data[start:].decode(charset)
    except UnicodeDecodeError as exc:
        raise PaxlstError(
            f"byte {exc.start + start}: 0x{data[exc.start + start]:02X} is not valid {named}"
            f" ({charset}) text; declare the character set the interchange is written in"
        ) from None


def parse_paxlst(data: bytes, today: date, home_state: str) -> PaxlstManifest:
    """Parse an interchange of one or more PAXLST messages (parts of one list are joined),
    decoded in the character set UNB declares (:func:`decode_interchange`)."""
    text = decode_interchange(data)
    state = _State()
    messages = 0
    in_message: Segment | None = None
    count = 0
    empty = True
    for segment in iter_segments(text):
        empty = False
        if in_message is not None:
            count += 1
        tag = segment.tag
        if tag == "UNH":
            if in_message is not None:
                raise PaxlstError(f"{segment.where()}: a message starts before the last one ended")
            message_type = segment.value(1, 0)
            if message_type != "PAXLST":
                raise PaxlstError(
                    f"{segment.where()}: message type {excerpt(message_type)} is not PAXLST"
                )
            directory = f"{segment.value(1, 1)}:{segment.value(1, 2)}"
            if directory not in SUPPORTED_DIRECTORIES:
                raise PaxlstError(
                    f"{segment.where()}: directory {excerpt(directory)} is not supported;"
                    f" supported: {', '.join(SUPPORTED_DIRECTORIES)}"
                )
            in_message, count = segment, 1
        elif tag == "UNT":
            if in_message is None:
                raise PaxlstError(f"{segment.where()}: a message trailer without a header")
            declared = segment.value(0)
            if not _SEGMENT_COUNT.fullmatch(declared):
                raise PaxlstError(
                    f"{segment.where()}: {excerpt(declared)} is not a segment count"
                    " (1 to 10 digits)"
                )
            if int(declared) != count:
                raise PaxlstError(
                    f"{segment.where()}: declares {declared} segments, the message has {count}"
                )
            if segment.value(1) != in_message.value(0):
                raise PaxlstError(f"{segment.where()}: reference does not match its UNH")
            in_message = None
            messages += 1
        elif in_message is not None:
            _interpret(segment, state)
        elif tag not in ("UNB", "UNG", "UNE", "UNZ"):
            raise PaxlstError(f"{segment.where()}: outside any message")
    if empty:
        raise PaxlstError("the message is empty")
    if in_message is not None:
        raise PaxlstError(f"{in_message.where()}: the message has no UNT trailer")
    if messages == 0:
        raise PaxlstError("no PAXLST message (UNH ... UNT) in the interchange")
    travelers, roles, flagged = _travelers(state, today, normalise_state(home_state))
    return PaxlstManifest(
        carrier=state.carrier,
        flight_number=state.flight_number,
        departure_port=state.departure,
        arrival_port=state.arrival,
        travelers=tuple(travelers),
        roles=tuple(roles),
        flagged=tuple(flagged),
        messages=messages,
    )


def _interpret(segment: Segment, state: _State) -> None:
    tag = segment.tag
    person = state.people[-1] if state.people else None
    if tag == "TDT" and segment.value(0) == "20":
        journey = segment.value(1).strip().upper()
        carrier = segment.value(4, 0).strip().upper() or journey[:2]
        state.carrier = carrier
        state.flight_number = journey[len(carrier) :] if journey.startswith(carrier) else journey
    elif tag == "LOC":
        qualifier, place = segment.value(0), segment.value(1).strip().upper()
        state.last_loc = qualifier
        if person is None:
            if qualifier == "125":
                state.departure = place
            elif qualifier == "87":
                state.arrival = place
        elif qualifier == "91" and person.in_document:
            person.issuing_state = place
    elif tag == "NAD" and segment.value(0) in (PASSENGER, CREW):
        surname = segment.value(3, 0).strip()
        given = (
            " ".join(part.strip() for part in segment.elements[3][1:] if part.strip())
            if len(segment.elements) > 3
            else ""
        )
        if len(state.people) >= MAX_TRAVELERS:
            raise PaxlstError(
                f"{segment.where()}: a manifest may list at most {MAX_TRAVELERS} travelers"
            )
        state.people.append(_Person(segment.position, segment.value(0), surname, given))
    elif person is None:
        return
    elif tag == "ATT" and segment.value(0) == "2":
        person.sex = segment.value(2, 0).strip().upper()
    elif tag == "DTM":
        qualifier, value = segment.value(0, 0), segment.value(0, 1)
        if qualifier == "329":
            person.birth = value
        elif qualifier == "36" and person.in_document:
            person.expiry = value
    elif tag == "NAT" and segment.value(0) == "2":
        person.nationality = segment.value(1).strip().upper()
    elif tag == "RFF" and segment.value(0, 0) == "AVF":  # the reservation reference
        person.booking_reference = segment.value(0, 1).strip().upper()
    elif tag == "DOC":
        kind = segment.value(0, 0).strip().upper()
        travel = not kind.startswith("V")
        if person.document_number and (person.travel_document or not travel):
            # The first travel document (passport, identity or residence card) stays the
            # traveler's: a visa DOC after it (as API messages carry), or a second document,
            # replaces neither it nor its expiry and issuer (review L3).
            person.in_document = False
            return
        person.in_document = True
        person.travel_document = travel
        person.document_type = kind
        person.document_number = segment.value(1, 0).strip().upper()
        person.expiry = person.issuing_state = ""


def _travelers(
    state: _State, today: date, home_state: str
) -> tuple[list[ManifestTraveler], list[str], list[FlaggedTraveler]]:
    """Each listed person as a traveler, checked by the one manifest validation
    (:func:`~entryexit.documents.manifest.check_traveler`); a person who fails it, whose
    document expired, or whose document an earlier person already holds is flagged for an
    officer instead, with the reason."""
    travelers: list[ManifestTraveler] = []
    roles: list[str] = []
    flagged: list[FlaggedTraveler] = []
    holders: dict[DocumentKey, int] = {}
    for person in state.people:
        try:
            traveler = _traveler(person, today, home_state)
        except InvalidInputError as exc:
            flagged.append(FlaggedTraveler(person.position, person.role, exc.message))
            continue
        holder = holders.get(traveler.document)
        if holder is not None:
            flagged.append(
                FlaggedTraveler(
                    person.position,
                    person.role,
                    f"the same travel document as the traveler at segment {holder}",
                )
            )
            continue
        holders[traveler.document] = person.position
        if document_expired(traveler, today):
            flagged.append(
                FlaggedTraveler(
                    person.position,
                    person.role,
                    f"the travel document expired on {traveler.document_expiry.isoformat()}",
                )
            )
            continue
        travelers.append(traveler)
        roles.append(person.role)
    return travelers, roles, flagged


def _traveler(person: _Person, today: date, home_state: str) -> ManifestTraveler:
    where = Segment(person.position, "NAD", ())
    if not person.document_number:
        raise PaxlstError("no travel document (DOC)")
    missing = [
        name
        for name, value in (
            ("surname", person.surname),
            ("date of birth (DTM+329)", person.birth),
            ("document expiry (DTM+36)", person.expiry),
        )
        if not value
    ]
    if missing:
        raise PaxlstError("missing " + ", ".join(missing))
    issuing = person.issuing_state or person.nationality
    if not issuing:
        raise PaxlstError("no issuing state or nationality")
    document_type = _DOCUMENT_TYPES.get(person.document_type[:1], DocumentType.PASSPORT)
    draft = ManifestTraveler(
        surname=person.surname.upper(),
        given_names=person.given_names.upper(),
        date_of_birth=_century(person.birth, where, today, past=True),
        sex=Sex(person.sex) if person.sex in ("M", "F") else Sex.UNSPECIFIED,
        nationality=person.nationality or issuing,
        citizenship_class=CitizenshipClass.FOREIGN_NATIONAL,
        document_type=document_type,
        document=DocumentKey(issuing, person.document_number),
        document_expiry=_century(person.expiry, where, today, past=False),
        booking_reference=person.booking_reference or None,
    )
    checked = check_traveler(draft, today)
    check_document_nationality(checked, home_state)
    return replace(
        checked,
        citizenship_class=_citizenship(checked, home_state),
    )


def _citizenship(traveler: ManifestTraveler, home_state: str) -> CitizenshipClass:
    """PAXLST carries no citizenship class: the receiving state's nationals and the holders
    of its passports or identity cards are citizens
    (:func:`~entryexit.documents.manifest.home_state_citizen`), holders of a residence card
    permanent residents, everyone else foreign nationals."""
    if home_state_citizen(
        traveler.nationality,
        traveler.document_type,
        traveler.document.issuing_state,
        home_state,
    ):
        return CitizenshipClass.CITIZEN
    if traveler.document_type is DocumentType.PERMANENT_RESIDENT_CARD:
        return CitizenshipClass.PERMANENT_RESIDENT
    return CitizenshipClass.FOREIGN_NATIONAL


def _escape(value: str, separators: str = ":+?'") -> str:
    return "".join(f"?{c}" if c in separators else c for c in value)


def export_paxlst(
    carrier: str,
    flight_number: str,
    departure_port: str,
    arrival_port: str,
    departure: date,
    travelers: list[ManifestTraveler],
    reference: str = "1",
) -> str:
    """Write a D05B PAXLST message (one part) that :func:`parse_paxlst` reads back."""
    body = [
        f"UNH+{reference}+PAXLST:D:05B:UN:IATA",
        "BGM+745",
        f"TDT+20+{_escape(carrier + flight_number)}+++{_escape(carrier)}",
        f"LOC+125+{_escape(departure_port)}",
        f"DTM+189:{departure.strftime('%y%m%d')}0000:201",
        f"LOC+87+{_escape(arrival_port)}",
    ]
    for traveler in travelers:
        names = ":".join(
            _escape(part) for part in [traveler.surname, *traveler.given_names.split()]
        )
        body += [
            f"NAD+FL+++{names}",
            f"ATT+2++{traveler.sex.value}",
            f"DTM+329:{traveler.date_of_birth.strftime('%Y%m%d')}",
            f"NAT+2+{_escape(traveler.nationality)}",
            *(
                [f"RFF+AVF:{_escape(traveler.booking_reference)}"]
                if traveler.booking_reference
                else []
            ),
            f"DOC+{_EXPORT_TYPES.get(traveler.document_type, 'P')}:110:111"
            f"+{_escape(traveler.document.number)}",
            f"DTM+36:{traveler.document_expiry.strftime('%Y%m%d')}",
            f"LOC+91+{_escape(traveler.document.issuing_state)}",
        ]
    body.append(f"CNT+42:{len(travelers)}")
    body.append(f"UNT+{len(body) + 1}+{reference}")
    # The character set declared is the one written: UNOA while every character is ASCII,
    # else UTF-8 (UNOW), which parse_paxlst then reads (and nothing else).
    syntax = "UNOA" if all(segment.isascii() for segment in body) else "UNOW"
    envelope = [
        f"UNB+{syntax}:4+ENTRYEXIT+RECEIVER+{departure.strftime('%y%m%d')}:0000+{reference}",
        *body,
        f"UNZ+1+{reference}",
    ]
    return "UNA:+.? '\n" + "".join(f"{segment}'\n" for segment in envelope)
