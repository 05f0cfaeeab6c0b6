"""The core vocabulary: flights, travelers on a manifest, decisions and encounters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class Direction(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"


class CitizenshipClass(StrEnum):
    CITIZEN = "citizen"
    PERMANENT_RESIDENT = "permanent_resident"
    FOREIGN_NATIONAL = "foreign_national"


class Sex(StrEnum):
    FEMALE = "F"
    MALE = "M"
    UNSPECIFIED = "X"


class DocumentType(StrEnum):
    PASSPORT = "passport"
    VISA = "visa"
    PERMANENT_RESIDENT_CARD = "permanent_resident_card"
    ID_CARD = "id_card"


class PhotoSource(StrEnum):
    PASSPORT = "passport"
    VISA = "visa"
    CHIP = "chip"
    ENCOUNTER = "encounter"


class Decision(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    RECAPTURE = "recapture"
    MANUAL = "manual"


class EncounterMethod(StrEnum):
    BIOMETRIC = "biometric"
    MANUAL_DOCUMENT_CHECK = "manual_document_check"
    OPT_OUT = "opt_out"


@dataclass(frozen=True, slots=True)
class Flight:
    id: str
    carrier: str
    number: str
    scheduled_departure: datetime
    origin: str
    destination: str
    direction: Direction
    created_at: datetime
    gallery_version: int = 0
    gallery_staged_at: datetime | None = None
    gallery_expires_at: datetime | None = None

    @property
    def staged(self) -> bool:
        return self.gallery_version > 0


@dataclass(frozen=True, slots=True)
class DocumentKey:
    """A travel document is identified by its issuing state and number."""

    issuing_state: str
    number: str


@dataclass(frozen=True, slots=True)
class ManifestTraveler:
    """One expected traveler as the carrier declared them."""

    surname: str
    given_names: str
    date_of_birth: date
    sex: Sex
    nationality: str
    citizenship_class: CitizenshipClass
    document_type: DocumentType
    document: DocumentKey
    document_expiry: date
    # The carrier's booking (reservation) reference: travelers who share one are related, so a
    # capture whose two best candidates share it goes to an officer (see identification).
    booking_reference: str | None = None


@dataclass(frozen=True, slots=True)
class ManifestChange:
    added: int
    removed: int
    updated: int
    total: int
    # Documents whose new details were not applied: another carrier (or the agency) set
    # them first, and a carrier-bound uploader may not rewrite them. Each is a conflict for
    # the agency to review (``conflicts``: recorded or brought up to date by this upload).
    details_kept: int = 0
    conflicts: int = 0
    # Disputed documents beyond the conflicts one upload may open (review C3): listed with
    # the details in force like the others, no conflict recorded (the agency is told this
    # count in the upload's audit event; the carrier is told nothing, as for the others).
    conflicts_over_limit: int = 0


# Who set a document's details, where no carrier did: the agency's own (unbound) keys and
# the command line. Carrier codes are 2-3 letters or digits, so it names no carrier.
AGENCY = "(agency)"


class ConflictSide(StrEnum):
    """Which details a resolved manifest conflict put in force."""

    KEPT = "kept"  # the details in force stay
    PROPOSED = "proposed"  # the challenging carrier's details replace them
    SUPERSEDED = "superseded"  # the agency's own manifest set the details meanwhile


@dataclass(frozen=True, slots=True)
class ManifestConflict:
    """A carrier's manifest brought details for a document that another carrier (or the
    agency) set first: they were not applied, and wait here for the agency. ``held_by`` is
    who set the details in force (None: before this was recorded); ``kept`` and
    ``proposed`` are None once the traveler's data key is shredded."""

    id: str
    document_id: str
    flight_id: str
    proposed_by: str
    held_by: str | None
    kept: ManifestTraveler | None
    proposed: ManifestTraveler | None
    created_at: datetime
    resolved_at: datetime | None = None
    resolution: ConflictSide | None = None
    # The document's traveler (not shown: the API names the document).
    traveler_id: str = ""


@dataclass(frozen=True, slots=True)
class StagingReport:
    flight_id: str
    gallery_version: int
    travelers: int
    with_photo: int
    added: int
    removed: int
    unchanged: int
    without_photo: tuple[DocumentKey, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Encounter:
    id: str
    flight_id: str
    traveler_id: str
    direction: Direction
    method: EncounterMethod
    gate: str
    device: str
    occurred_at: datetime
    score: float | None
    model: str | None
    policy_version: str
    capture_id: str | None
    expires_at: datetime | None = None
