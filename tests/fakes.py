"""In-memory fakes of the services' ports, for fast unit tests without models or databases."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from entryexit.biometrics import FaceAnalysis, Template
from entryexit.biometrics.compare import l2_normalise
from entryexit.biometrics.detect import Detection
from entryexit.biometrics.embed import SFACE_MANIFEST
from entryexit.biometrics.quality import QualityReason, QualityReport
from entryexit.domain.access import StoredApiKey
from entryexit.domain.audit import GENESIS_HASH, AuditEntry, AuditEvent, chain
from entryexit.domain.model import (
    DocumentKey,
    Encounter,
    EncounterMethod,
    Flight,
    ManifestChange,
    ManifestTraveler,
    PhotoSource,
)
from entryexit.errors import ImageDecodeError, NoFaceError
from entryexit.services.ports import (
    CaptureRecord,
    ManifestStatus,
    StoredPolicy,
    StoredTemplate,
    TravelerProfile,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class FakeStore:
    keys: dict[str, StoredApiKey] = field(default_factory=dict)
    flights: dict[str, Flight] = field(default_factory=dict)
    travelers_by_document: dict[DocumentKey, str] = field(default_factory=dict)
    manifests: dict[str, dict[DocumentKey, ManifestTraveler]] = field(default_factory=dict)
    templates: list[tuple[str, StoredTemplate]] = field(default_factory=list)
    captures: list[CaptureRecord] = field(default_factory=list)
    encounters: list[Encounter] = field(default_factory=list)
    stored_policies: list[StoredPolicy] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)

    def ping(self) -> None:
        return None

    def count_api_keys(self) -> int:
        return len(self.keys)

    def add_api_key(self, key: StoredApiKey) -> None:
        self.keys[key.prefix] = key

    def find_api_key(self, prefix: str) -> StoredApiKey | None:
        return self.keys.get(prefix)

    def add_flight(self, flight: Flight) -> None:
        self.flights[flight.id] = flight

    def get_flight(self, flight_id: str) -> Flight | None:
        return self.flights.get(flight_id)

    def _traveler(self, document: DocumentKey) -> str:
        return self.travelers_by_document.setdefault(document, str(uuid.uuid4()))

    def replace_manifest(
        self, flight_id: str, travelers: list[ManifestTraveler], now: datetime
    ) -> ManifestChange:
        before = self.manifests.get(flight_id, {})
        after = {t.document: t for t in travelers}
        for document in after:
            self._traveler(document)
        self.manifests[flight_id] = after
        return ManifestChange(
            added=len(after.keys() - before.keys()),
            removed=len(before.keys() - after.keys()),
            updated=len(after.keys() & before.keys()),
            total=len(after),
        )

    def manifest_status(self, flight_id: str, model: str) -> list[ManifestStatus]:
        with_photo = {t.traveler_id for _, t in self.templates if t.model == model}
        done = {e.traveler_id for e in self.encounters if e.flight_id == flight_id}
        return [
            ManifestStatus(
                traveler_id=self._traveler(document),
                document=document,
                surname=traveler.surname,
                given_names=traveler.given_names,
                citizenship_class=traveler.citizenship_class.value,
                has_photo=self._traveler(document) in with_photo,
                processed=self._traveler(document) in done,
                date_of_birth=traveler.date_of_birth,
                opted_out=any(
                    e.flight_id == flight_id
                    and e.traveler_id == self._traveler(document)
                    and e.method is EncounterMethod.OPT_OUT
                    for e in self.encounters
                ),
            )
            for document, traveler in self.manifests.get(flight_id, {}).items()
        ]

    def add_reference_template(
        self,
        document: DocumentKey,
        source: PhotoSource,
        vector: bytes,
        model: str,
        now: datetime,
        expires_at: datetime | None = None,
        image: bytes | None = None,
    ) -> tuple[str, str]:
        traveler_id = self._traveler(document)
        template_id = str(uuid.uuid4())
        self.templates.append((template_id, StoredTemplate(traveler_id, vector, model)))
        return template_id, traveler_id

    def gallery_templates(self, flight_id: str, model: str) -> list[StoredTemplate]:
        on_manifest = {self._traveler(d) for d in self.manifests.get(flight_id, {})}
        return [t for _, t in self.templates if t.traveler_id in on_manifest and t.model == model]

    def mark_gallery_staged(
        self, flight_id: str, now: datetime, expires_at: datetime | None = None
    ) -> int:
        flight = self.flights[flight_id]
        self.flights[flight_id] = replace(
            flight,
            gallery_version=flight.gallery_version + 1,
            gallery_staged_at=now,
            gallery_expires_at=expires_at,
        )
        return self.flights[flight_id].gallery_version

    def add_capture(self, capture: CaptureRecord) -> None:
        self.captures.append(capture)

    def add_encounter(self, encounter: Encounter) -> bool:
        if any(
            e.flight_id == encounter.flight_id and e.traveler_id == encounter.traveler_id
            for e in self.encounters
        ):
            return False
        self.encounters.append(encounter)
        return True

    def list_encounters(self, flight_id: str) -> list[Encounter]:
        return [e for e in self.encounters if e.flight_id == flight_id]

    def traveler_for_document(self, document: DocumentKey) -> str | None:
        return self.travelers_by_document.get(document)

    def traveler_profile(self, traveler_id: str) -> TravelerProfile:
        for manifest in self.manifests.values():
            for document, traveler in manifest.items():
                if self.travelers_by_document.get(document) == traveler_id:
                    return TravelerProfile(traveler.citizenship_class, traveler.date_of_birth)
        return TravelerProfile(None, None)

    def add_policy(self, policy: StoredPolicy, effective_from: datetime, now: datetime) -> bool:
        if any(p.version == policy.version for p in self.stored_policies):
            return False
        self.stored_policies.append(policy)
        return True

    def policies(self) -> list[StoredPolicy]:
        return list(self.stored_policies)

    def append_audit(self, entry: AuditEntry) -> AuditEvent:
        previous = self.audit[-1].hash if self.audit else GENESIS_HASH
        event = chain(entry, len(self.audit) + 1, previous)
        self.audit.append(event)
        return event

    def audit_events(
        self,
        after_sequence: int = 0,
        limit: int = 100,
        action: str | None = None,
        actor_key_id: str | None = None,
    ) -> list[AuditEvent]:
        found = [
            e
            for e in self.audit
            if e.sequence > after_sequence
            and (action is None or e.entry.action == action)
            and (actor_key_id is None or e.entry.actor_key_id == actor_key_id)
        ]
        return found[:limit]

    def audit_head(self) -> tuple[int, str] | None:
        return None


def unit_vector(seed: int, dimension: int = 8) -> np.ndarray:
    return l2_normalise(np.random.default_rng(seed).normal(size=dimension))[0]


class FakeAnalyser:
    """Maps photo bytes to prepared analyses: ``b"face:<seed>"`` is a good face whose
    template is ``unit_vector(seed)``; ``b"blurred:<seed>"`` the same face, too blurred;
    ``b"empty"`` has no face; anything else is undecodable."""

    model = "fake-model"
    dimension = 8
    recipe = "flip"
    recognizer = replace(SFACE_MANIFEST, key="fake-model", dimension=8)

    def analyse_reference(self, data: bytes) -> FaceAnalysis:
        return self.analyse(data)

    def analyse(self, data: bytes) -> FaceAnalysis:
        text = data.decode("ascii", errors="replace")
        if text == "empty":
            raise NoFaceError("no face was found in the image")
        kind, _, seed = text.partition(":")
        if kind not in ("face", "blurred") or not seed.isdigit():
            raise ImageDecodeError("the data is not a readable JPEG or PNG image")
        reasons = (QualityReason.BLUR,) if kind == "blurred" else ()
        landmarks = np.array([[40, 50], [72, 50], [56, 70], [44, 90], [68, 90]], dtype=float)
        return FaceAnalysis(
            template=Template(unit_vector(int(seed)), self.model),
            quality=QualityReport(30.0, 0.0, 0.0, 100.0, 120.0, 0.9, reasons),
            subject=Detection(20, 20, 70, 90, landmarks, 0.9),
            other_faces=(),
            image_width=200,
            image_height=200,
        )


class StaticKeyProvider:
    """Fixed, known keys (tests only); ``add_kek`` makes a new current KEK for rotations."""

    def __init__(self) -> None:
        self._keks = {"k1": b"\x01" * 32}
        self._current = "k1"

    def current_kek(self) -> tuple[str, bytes]:
        return self._current, self._keks[self._current]

    def kek(self, kek_id: str) -> bytes:
        return self._keks[kek_id]

    def audit_key(self) -> bytes:
        return b"\x02" * 32

    def index_key(self) -> bytes:
        return b"\x03" * 32

    def add_kek(self, kek_id: str) -> None:
        self._keks[kek_id] = bytes([len(self._keks) + 1]) * 32
        self._current = kek_id

    def forget_kek(self, kek_id: str) -> None:
        del self._keks[kek_id]
