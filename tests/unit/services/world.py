"""Every service wired by ``bootstrap.build_services`` over the in-memory fakes (a fake unit
of work, read models, face analyser, clock and keys): no models, no database. Console
passwords are hashed with a cheap argon2 setting, for speed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from cryptography import x509

from entryexit.bootstrap import build_services, operating_thresholds
from entryexit.config import Settings
from entryexit.domain.access import Principal, Role
from entryexit.domain.model import (
    CitizenshipClass,
    Direction,
    DocumentKey,
    DocumentType,
    Flight,
    ManifestTraveler,
    PhotoSource,
    Sex,
)
from entryexit.services.console_accounts import SessionPolicy
from entryexit.services.flights import NewFlight
from entryexit.services.policies import shipped_policy_text
from tests.fake_storage import FakeBoardQueries, FakeReportQueries, FakeUnitOfWorkFactory
from tests.fakes import FakeAnalyser, FakeClock, FakeFingerprintEngine, StaticKeyProvider

ADMIN = Principal("k-admin", "admin", Role.ADMIN)
OFFICER = Principal("k-officer", "officer", Role.OFFICER)
SUPERVISOR = Principal("k-super", "supervisor", Role.SUPERVISOR)
AUDITOR = Principal("k-auditor", "auditor", Role.AUDITOR)
MANAGER = Principal("k-manager", "watchlist", Role.WATCHLIST_MANAGER)
GATE = Principal("k-gate", "gate", Role.GATE, carrier="EE")
OTHER_GATE = Principal("k-gate-zz", "gate", Role.GATE, carrier="ZZ")
OTHER_CARRIER_OFFICER = Principal("k-desk-zz", "airline desk", Role.OFFICER, carrier="ZZ")

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # FakeClock's first reading, less a second
DEPARTURE = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
THRESHOLD = 0.9
# Cheap enough for unit tests; production uses argon2's defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
# The deployment's home state (Settings.home_state's default): its nationals and passport
# holders are citizens. Travelers of the other classes hold FOREIGN_STATE's passports.
HOME_STATE = "UTO"
FOREIGN_STATE = "XYZ"


def traveler(
    number: str,
    citizenship: CitizenshipClass = CitizenshipClass.FOREIGN_NATIONAL,
    *,
    sex: Sex = Sex.FEMALE,
    born: date = date(1990, 1, 2),
    surname: str = "DOE",
) -> ManifestTraveler:
    """A traveler on a passport: a citizen's the home state's, anyone else's a foreign
    state's (a manifest declaring a home-state passport holder foreign is refused)."""
    state = HOME_STATE if citizenship is CitizenshipClass.CITIZEN else FOREIGN_STATE
    return ManifestTraveler(
        surname=surname,
        given_names="JANE",
        date_of_birth=born,
        sex=sex,
        nationality=state,
        citizenship_class=citizenship,
        document_type=DocumentType.PASSPORT,
        document=DocumentKey(state, number),
        document_expiry=date(2031, 1, 1),
    )


class World:
    def __init__(
        self,
        *,
        gallery_threshold: float = THRESHOLD,
        match_threshold: float = THRESHOLD,
        watchlist_threshold: float | None = None,
        session_policy: SessionPolicy | None = None,
        hasher: PasswordHasher = FAST_HASHER,
        trusted_cscas: list[x509.Certificate] | None = None,
    ) -> None:
        self.uow = FakeUnitOfWorkFactory()
        self.reports = FakeReportQueries(self.uow.database)
        self.boards = FakeBoardQueries(self.uow.database)
        self.clock = FakeClock()
        self.engine = FakeAnalyser()
        self.keys = StaticKeyProvider()
        settings = Settings(
            data_dir=Path("/nonexistent/entryexit-unit-tests"),
            gallery_threshold=gallery_threshold,
            match_threshold=match_threshold,
            watchlist_threshold=watchlist_threshold,
        )
        services = build_services(
            settings,
            uow=self.uow,
            reports=self.reports,
            boards=self.boards,
            engine=self.engine,
            keys=self.keys,
            clock=self.clock,
            session_policy=session_policy or SessionPolicy(),
            password_hasher=hasher,
            trusted_cscas=trusted_cscas or [],
            fingerprint_engine=FakeFingerprintEngine,
        )
        self.services = services
        self.thresholds = operating_thresholds(settings, self.engine)
        self.audit = services.audit
        self.policies = services.policies
        self.flights = services.flights
        self.accounts = services.accounts
        self.galleries = services.galleries
        self.watchlist = services.watchlist
        self.crossings = services.crossings
        self.opt_outs = services.opt_outs
        self.enrolment = services.enrolment
        self.captures = services.captures
        self.purge = services.purge
        self.privacy = services.privacy
        self.fairness = services.fairness
        self.verifications = services.verifications
        self.console = services.console
        self.fingerprints = services.fingerprints

    # --- arranging -------------------------------------------------------------------------
    def flight(
        self,
        direction: Direction = Direction.ENTRY,
        travelers: list[ManifestTraveler] | None = None,
        *,
        carrier: str = "EE",
        number: str = "12",
        departure: datetime = DEPARTURE,
    ) -> Flight:
        flight = self.flights.create(
            NewFlight(carrier, number, departure, "AAA", "BBB", direction), OFFICER
        )
        if travelers:
            self.flights.put_manifest(flight.id, travelers, OFFICER)
        return flight

    def enrol(self, number: str, seed: int, source: PhotoSource = PhotoSource.PASSPORT) -> str:
        """Enrol ``face:<seed>`` for the document ``number`` (:meth:`document`); returns the
        traveler id."""
        return self.enrolment.enrol(
            self.document(number), f"face:{seed}".encode(), source
        ).traveler_id

    def document(self, number: str) -> DocumentKey:
        """The stored document numbered ``number`` (whichever state issued it: a citizen's
        is the home state's, a foreign national's a foreign state's); one not stored yet is
        taken to be the home state's."""
        found = [key for key in self.uow.tables.documents if key.number == number]
        assert len(found) <= 1, f"several documents numbered {number}: {found}"
        return found[0] if found else DocumentKey(HOME_STATE, number)

    def boarding(
        self,
        direction: Direction = Direction.ENTRY,
        travelers: list[ManifestTraveler] | None = None,
        *,
        seeds: dict[str, int] | None = None,
        carrier: str = "EE",
        number: str = "12",
        departure: datetime = DEPARTURE,
    ) -> Flight:
        """A flight with a manifest, reference photos (``seeds``: document number -> face
        seed) and a staged gallery."""
        flight = self.flight(
            direction, travelers, carrier=carrier, number=number, departure=departure
        )
        for document, seed in (seeds or {}).items():
            self.enrol(document, seed)
        self.galleries.stage(flight.id, OFFICER)
        return self.flights.get(flight.id)

    def traveler_id(self, number: str) -> str:
        with self.uow(read_only=True) as uow:
            found = uow.travelers.traveler_for_document(self.document(number))
        assert found is not None
        return found

    def load_policy(self, text: str) -> None:
        self.policies.load(text, ADMIN)

    def load_shipped(self, name: str) -> None:
        self.load_policy(shipped_policy_text(name))

    def actions(self) -> list[str]:
        """The committed audit log's actions, in order."""
        return [e.entry.action for e in self.uow.tables.audit_events]

    def advance(self, **delta: float) -> None:
        self.clock.now += timedelta(**delta)


def policy_with(version: str, **admission: object) -> str:
    """The shipped default policy under a new version, effective from 2026-02-01, with
    ``[admission]`` settings replaced (e.g. ``grace_days=3``)."""
    text = shipped_policy_text("default.toml")
    text = text.replace('version = "default-2"', f'version = "{version}"')
    text = text.replace(
        "effective_from = 2026-01-01T00:00:00Z", "effective_from = 2026-02-01T00:00:00Z"
    )
    for key, value in admission.items():
        rendered = f'"{value}"' if isinstance(value, str) else str(value)
        lines = text.splitlines()
        lines = [f"{key} = {rendered}" if line.startswith(f"{key} = ") else line for line in lines]
        text = "\n".join(lines) + "\n"
    return text
