"""Retention of biographic data, the erasure of one traveler and what an opt-out deletes, on
both databases; and, on SQLite, that erased bytes do not survive in the database files."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, event, select, text

from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.tables import (
    AdmissionRow,
    Base,
    CaptureRow,
    DataKeyRow,
    DocumentRow,
    OutboxRow,
    ReferenceTemplateRow,
)
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.domain.admission import ExitLink
from entryexit.domain.model import (
    CitizenshipClass,
    Direction,
    DocumentKey,
    DocumentType,
    Encounter,
    EncounterMethod,
    Flight,
    ManifestTraveler,
    PhotoSource,
    Sex,
)
from entryexit.domain.policy import parse_policy
from entryexit.services.policies import shipped_policy_text
from entryexit.services.ports import (
    AlertRecord,
    CaptureRecord,
    CasePrint,
    IdempotencyClaim,
    NewAdmission,
)
from entryexit.services.unit_of_work import OutboxMessage, UnitOfWork
from tests.fakes import StaticKeyProvider
from tests.repository_driver import RepositoryDriver

DEPARTURE = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = parse_policy(shipped_policy_text("default.toml"))
SURNAME = "ZWANENBURGERSMA"
NUMBER = "XQ7731946"


@pytest.fixture
def store(database_url: str) -> Iterator[RepositoryDriver]:
    engine = create_database_engine(database_url)
    migrate(engine)
    yield RepositoryDriver(SqlUnitOfWorkFactory(engine, StaticKeyProvider()))
    engine.dispose()


def template_bytes(seed: int) -> bytes:
    vector = np.random.default_rng(seed).normal(size=128).astype("<f4")
    data: bytes = (vector / np.linalg.norm(vector)).astype("<f4").tobytes()
    return data


def state_of(klass: CitizenshipClass) -> str:
    """A citizen holds the home state's (UTO) passport, anyone else a foreign state's."""
    return "UTO" if klass is CitizenshipClass.CITIZEN else "XYZ"


def person(number: str, klass: CitizenshipClass, surname: str = "DOE") -> ManifestTraveler:
    return ManifestTraveler(
        surname,
        "JANE",
        date(1980, 1, 1),
        Sex.FEMALE,
        state_of(klass),
        klass,
        DocumentType.PASSPORT,
        DocumentKey(state_of(klass), number),
        date(2030, 1, 1),
    )


def board(store: RepositoryDriver, flight_id: str = "f1", staged: bool = True) -> dict[str, str]:
    """A citizen and a foreign national on a flight: manifest, template, encounter; the
    foreign national's open stay, alert, queued work and a capture with a kept image."""
    store.add_flight(
        Flight(flight_id, "EE", "1", DEPARTURE, "AAA", "BBB", Direction.ENTRY, DEPARTURE)
    )
    store.replace_manifest(
        flight_id,
        [
            person("C1", CitizenshipClass.CITIZEN),
            person(NUMBER, CitizenshipClass.FOREIGN_NATIONAL, SURNAME),
        ],
        DEPARTURE,
    )
    if staged:
        store.mark_gallery_staged(flight_id, DEPARTURE, DEPARTURE + timedelta(hours=2))
    ids = {}
    for seed, number in enumerate(("C1", NUMBER)):
        _, ids[number] = store.add_reference_template(
            DocumentKey("UTO" if number == "C1" else "XYZ", number),
            PhotoSource.PASSPORT,
            template_bytes(seed),
            "m",
            DEPARTURE,
            expires_at=DEPARTURE + timedelta(hours=12),
        )
        store.add_encounter(
            Encounter(
                f"e-{number}",
                flight_id,
                ids[number],
                Direction.ENTRY,
                EncounterMethod.BIOMETRIC,
                "G1",
                "cam",
                DEPARTURE,
                0.9,
                "m",
                POLICY.version,
                None,
                expires_at=DEPARTURE + timedelta(days=14 if number == "C1" else 5 * 365),
            )
        )
    foreign = ids[NUMBER]
    store.write(
        lambda uow: uow.admissions.open(
            NewAdmission(
                "a1",
                foreign,
                "B2",
                DEPARTURE.date(),
                DEPARTURE.date() + timedelta(days=90),
                f"e-{NUMBER}",
                flight_id,
                template_bytes(5),
                "m",
                DEPARTURE,
            )
        )
    )
    store.write(
        lambda uow: uow.watchlist.add_alert(
            AlertRecord(
                "al1", "capture", flight_id, foreign, None, "w1", 0.8, "m", "v", DEPARTURE, "open"
            )
        )
    )
    store.write(
        lambda uow: uow.outbox.add(
            OutboxMessage("o1", "admission", {"traveler_id": foreign}, DEPARTURE, template_bytes(6))
        )
    )
    store.write(
        lambda uow: uow.captures.add_capture(
            CaptureRecord(
                "c1",
                flight_id,
                "G1",
                "cam",
                DEPARTURE,
                "manual",
                "officer_review",
                0.9,
                foreign,
                "m",
                image=b"the-capture-image-of-the-traveler",
                image_expires_at=DEPARTURE + timedelta(days=30),
                expires_at=DEPARTURE + timedelta(days=30),
            )
        )
    )
    return {"citizen": ids["C1"], "foreign": foreign}


def rows_naming(store: RepositoryDriver, traveler_id: str) -> dict[str, int]:
    """Rows of any table with a traveler column (found from the schema, not a list kept by
    hand) that still name ``traveler_id``."""
    found = {}
    with store.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if "traveler" in column.name or (table.name == "travelers" and column.name == "id"):
                    count = connection.scalar(
                        select(text("count(*)")).select_from(table).where(column == traveler_id)
                    )
                    if count:
                        found[f"{table.name}.{column.name}"] = int(count)
            if table.name == "outbox":
                count = connection.scalar(
                    select(text("count(*)"))
                    .select_from(table)
                    .where(table.c.payload.contains(traveler_id))
                )
                if count:
                    found["outbox.payload"] = int(count)
    return found


def test_biographic_data_is_purged_and_the_data_key_shredded(store: RepositoryDriver) -> None:
    ids = board(store)
    reports = store.factory.reports
    later = DEPARTURE + timedelta(hours=336, minutes=1)
    assert reports.retention_counts(later, POLICY)["manifest_entries"] == {"held": 2, "overdue": 1}
    counts = store.write(lambda uow: uow.retention.purge_expired(later, POLICY))
    assert counts["manifest_entries"] == 1
    assert counts["encounter_records"] == 1
    assert counts["reference_templates"] == 2
    assert counts["traveler_documents"] == 1
    assert counts["data_keys"] == 1
    assert counts["travelers"] == 1
    assert rows_naming(store, ids["citizen"]) == {}
    assert store.traveler_for_document(DocumentKey("UTO", "C1")) is None
    # The foreign national's records run for years, and their open stay until it closes.
    assert store.traveler_for_document(DocumentKey("XYZ", NUMBER)) == ids["foreign"]
    assert set(store.write(lambda uow: uow.retention.purge_expired(later, POLICY)).values()) == {0}
    held = reports.retention_counts(later, POLICY)
    assert all(kind["overdue"] == 0 for kind in held.values())

    years_on = DEPARTURE + timedelta(days=6 * 365)
    store.write(lambda uow: uow.retention.purge_expired(years_on, POLICY))
    assert store.traveler_for_document(DocumentKey("XYZ", NUMBER)) == ids["foreign"]
    assert reports.in_country_overstays(years_on.date())  # still found, still named
    assert reports.traveler_identities([ids["foreign"]])[ids["foreign"]].surname == SURNAME


def test_a_closed_stay_is_purged_after_its_retention_and_takes_the_traveler(
    store: RepositoryDriver,
) -> None:
    ids = board(store, staged=False)
    store.write(
        lambda uow: uow.admissions.close(
            "a1",
            "x1",
            "f1",
            ids["foreign"],
            DEPARTURE.date() + timedelta(days=10),
            ExitLink.DOCUMENT,
            None,
        )
    )
    store.write(lambda uow: uow.outbox.complete("o1", DEPARTURE))
    store.write(
        lambda uow: uow.watchlist.disposition_alert("al1", "dismissed", "t", "o", DEPARTURE)
    )
    exit_day = DEPARTURE + timedelta(days=10)
    almost = exit_day + timedelta(hours=43800)
    counts = store.write(lambda uow: uow.retention.purge_expired(almost, POLICY))
    assert counts["admissions"] == 0  # counted from the end of the exit's day
    after = almost + timedelta(days=1)
    assert store.factory.reports.retention_counts(after, POLICY)["admissions"]["overdue"] == 1
    counts = store.write(lambda uow: uow.retention.purge_expired(after, POLICY))
    assert counts["admissions"] == 1
    assert counts["traveler_documents"] == 1
    assert counts["data_keys"] == 1
    remaining = rows_naming(store, ids["foreign"])
    assert remaining == {"alerts.traveler_id": 1}  # alerts have a lifecycle of their own


def keep_case_print(
    store: RepositoryDriver, traveler_id: str, at: datetime, image: bytes | None = None
) -> None:
    """A live print an officer kept on case ``c1`` at ``at``, for 30 days."""
    kept = CasePrint(
        "cp1",
        "c1",
        traveler_id,
        2,
        "nbis-mcc-v1",
        "officer-1",
        0.7,
        b"live minutiae",
        image is not None,
        at,
        at + timedelta(days=30),
        image=image,
    )
    store.write(lambda uow: uow.fingerprints.keep_case_print(kept, at))


def test_erasing_a_traveler_leaves_no_row_that_names_them(store: RepositoryDriver) -> None:
    ids = board(store)
    store.write(
        lambda uow: uow.flights.stage_manifest_batch(
            "f1", "u1", [person(NUMBER, CitizenshipClass.FOREIGN_NATIONAL)], DEPARTURE
        )
    )
    store.write(
        lambda uow: uow.fingerprints.enrol(
            DocumentKey("XYZ", NUMBER), 2, "nbis-mcc-v1", b"minutiae", 40, DEPARTURE, DEPARTURE
        )
    )
    keep_case_print(store, ids["foreign"], DEPARTURE, b"the-live-print-of-the-traveler")
    assert len(rows_naming(store, ids["foreign"])) >= 10
    erasure = store.write(lambda uow: uow.retention.erase_traveler(ids["foreign"]))
    assert erasure.staged_flights == ("f1",)
    assert erasure.counts == {
        "capture_images": 1,
        "idempotency_keys": 0,
        "capture_records": 1,
        "encounter_records": 1,
        "manifest_entries": 2,  # the version in force and the upload under way
        "reference_templates": 1,
        "fingerprint_templates": 1,
        "case_fingerprints": 1,
        "admissions": 1,
        "alerts": 1,
        "manifest_conflicts": 0,
        "queued_work": 1,
        "traveler_documents": 1,
        "data_keys": 1,
        "travelers": 1,
    }
    assert rows_naming(store, ids["foreign"]) == {}
    assert rows_naming(store, ids["citizen"])  # nobody else's records
    assert store.gallery_templates("f1", "m")[0].traveler_id == ids["citizen"]


def settle_idempotent_capture(
    store: RepositoryDriver, key: str, capture_id: str, flight_id: str, traveler_id: str
) -> None:
    """A gate's Idempotency-Key settled with the outcome the capture service stores: the
    decision with the matched traveler's id and score."""
    claim = IdempotencyClaim("gate-key", key, flight_id, "0" * 64, capture_id, DEPARTURE)
    outcome = json.dumps({"decision": "match", "traveler_id": traveler_id, "score": 0.93})

    def work(uow: UnitOfWork) -> None:
        assert uow.captures.claim_idempotency(claim) is None
        uow.captures.settle_idempotency("gate-key", key, outcome, DEPARTURE + timedelta(days=1))

    store.write(work)


def cells_naming(store: RepositoryDriver, traveler_id: str) -> dict[str, int]:
    """Every text, JSON and binary cell of every table (read off the schema, whatever the
    column is called) that holds ``traveler_id``."""
    needle = traveler_id.encode()
    found: dict[str, int] = {}
    with store.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(select(table)).mappings():
                for column, value in row.items():
                    if isinstance(value, memoryview):
                        value = value.tobytes()
                    if isinstance(value, dict | list):
                        value = json.dumps(value)
                    hit = (isinstance(value, str) and traveler_id in value) or (
                        isinstance(value, bytes) and needle in value
                    )
                    if hit:
                        name = f"{table.name}.{column}"
                        found[name] = found.get(name, 0) + 1
    return found


def test_erasure_leaves_the_traveler_in_no_cell_of_any_table(store: RepositoryDriver) -> None:
    """The attacker reads the database after an erasure and searches every column, not only
    those named after travelers: a gate's idempotency record kept the matched traveler's id
    and score in its stored outcome."""
    ids = board(store)
    settle_idempotent_capture(store, "retry-1", "c1", "f1", ids["foreign"])
    settle_idempotent_capture(store, "retry-2", "c-other", "f1", ids["citizen"])
    assert "capture_idempotency_keys.outcome" in cells_naming(store, ids["foreign"])
    erasure = store.write(lambda uow: uow.retention.erase_traveler(ids["foreign"]))
    assert erasure.counts["idempotency_keys"] == 1
    assert cells_naming(store, ids["foreign"]) == {}
    assert "capture_idempotency_keys.outcome" in cells_naming(store, ids["citizen"])


def test_an_opt_out_forgets_the_gates_idempotency_records_of_the_traveler(
    store: RepositoryDriver,
) -> None:
    ids = board(store)
    settle_idempotent_capture(store, "retry-1", "c1", "f1", ids["foreign"])
    settle_idempotent_capture(store, "retry-2", "c-other", "f1", ids["citizen"])
    deleted = store.write(
        lambda uow: uow.retention.forget_opted_out(ids["foreign"], "f1", DEPARTURE)
    )
    assert deleted["idempotency_keys"] == 1
    assert "capture_idempotency_keys.outcome" not in cells_naming(store, ids["foreign"])
    assert "capture_idempotency_keys.outcome" in cells_naming(store, ids["citizen"])


def test_an_opt_out_deletes_the_template_and_the_images_of_the_travelers_captures(
    store: RepositoryDriver,
) -> None:
    ids = board(store)
    store.add_flight(
        Flight(
            "f2", "EE", "2", DEPARTURE + timedelta(days=3), "BBB", "AAA", Direction.EXIT, DEPARTURE
        )
    )
    store.replace_manifest("f2", [person("C1", CitizenshipClass.CITIZEN)], DEPARTURE)
    no_match = CaptureRecord(
        "c3", "f1", "G2", "cam", DEPARTURE, "no_match", None, 0.1, None, "m", image=b"face"
    )
    store.write(lambda uow: uow.captures.add_capture(no_match))
    # An officer found the no-match to be the traveler, who then declined: its image goes too.
    deleted = store.write(
        lambda uow: uow.retention.forget_opted_out(ids["foreign"], "f1", DEPARTURE, "c3")
    )
    assert deleted == {"reference_templates": 1, "capture_images": 2, "idempotency_keys": 0}
    assert store.read(lambda uow: uow.cases.capture_image("c3")) is None
    with store.engine.connect() as connection:
        image, key = connection.execute(
            select(CaptureRow.image, CaptureRow.wrapped_key).where(CaptureRow.id == "c1")
        ).one()
    assert (image, key) == (None, None)
    # The citizen is also on a later flight: an opt-out on this one keeps their template.
    kept = store.write(lambda uow: uow.retention.forget_opted_out(ids["citizen"], "f1", DEPARTURE))
    assert kept == {
        "reference_templates": 0,
        "capture_images": 0,
        "idempotency_keys": 0,
        "kept_reference_templates": 1,
    }


# --- deleted bytes do not survive (SQLite files) --------------------------------------------


def sqlite_store(tmp_path: Path, secure: bool) -> tuple[RepositoryDriver, Path]:
    path = tmp_path / "entryexit.db"
    engine = create_database_engine(f"sqlite+pysqlite:///{path}")
    if not secure:
        # The attacker's baseline: a store as it was before, deleted cells left in free pages.
        @event.listens_for(engine, "connect")
        def _insecure(connection: sqlite3.Connection, _record: object) -> None:
            connection.execute("PRAGMA secure_delete=OFF")

    migrate(engine)
    return RepositoryDriver(SqlUnitOfWorkFactory(engine, StaticKeyProvider())), path


def secrets_of(engine: Engine, traveler_id: str) -> dict[str, bytes]:
    """Every byte string that would give the traveler away to someone holding a copy of the
    files (and, for the sealed ones, the key-encryption key too)."""
    with engine.connect() as connection:
        personal = connection.scalar(
            select(DocumentRow.personal).where(DocumentRow.traveler_id == traveler_id)
        )
        vector = connection.scalar(
            select(ReferenceTemplateRow.vector).where(
                ReferenceTemplateRow.traveler_id == traveler_id
            )
        )
        wrapped = connection.scalar(
            select(DataKeyRow.wrapped_key).where(DataKeyRow.traveler_id == traveler_id)
        )
        image = connection.scalar(select(CaptureRow.image).where(CaptureRow.id == "c1"))
    assert personal
    assert vector
    assert wrapped
    assert image
    return {
        "surname": SURNAME.encode(),
        "document number": NUMBER.encode(),
        "template": template_bytes(1)[:64],
        "sealed details": personal[-48:],
        "sealed template": vector[-48:],
        "wrapped data key": wrapped[-32:],
        "sealed capture image": image[-24:],
    }


def files_bytes(path: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()
    )


def erase_and_scrub(store: RepositoryDriver, traveler_id: str) -> None:
    store.write(lambda uow: uow.retention.erase_traveler(traveler_id))
    store.factory.scrub()


def test_an_erased_travelers_bytes_are_not_in_the_sqlite_files(tmp_path: Path) -> None:
    store, path = sqlite_store(tmp_path, secure=True)
    ids = board(store)
    secrets = secrets_of(store.engine, ids["foreign"])
    before = files_bytes(path)
    assert secrets["sealed details"] in before  # what the attacker looks for is there now
    assert secrets["wrapped data key"] in before

    erase_and_scrub(store, ids["foreign"])
    after = files_bytes(path)
    assert not path.with_name(path.name + "-wal").exists() or (
        path.with_name(path.name + "-wal").stat().st_size == 0
    )
    assert [name for name, value in secrets.items() if value in after] == []
    store.engine.dispose()


@pytest.mark.parametrize("protection", ["secure_delete", "checkpoint"])
def test_without_secure_delete_or_the_checkpoint_the_erased_bytes_survive(
    tmp_path: Path, protection: str
) -> None:
    """The control: each of the two protections removed, the attack on the files succeeds,
    so the test above is one that can fail."""
    store, path = sqlite_store(tmp_path, secure=protection != "secure_delete")
    ids = board(store)
    secrets = secrets_of(store.engine, ids["foreign"])
    store.write(lambda uow: uow.retention.erase_traveler(ids["foreign"]))
    if protection == "checkpoint":
        pass  # no scrub: earlier frames stay in the write-ahead log
    else:
        store.factory.scrub()
    found = [name for name, value in secrets.items() if value in files_bytes(path)]
    assert "wrapped data key" in found
    assert "sealed details" in found
    store.engine.dispose()


def test_a_known_travelers_items_are_sealed_under_their_data_key_alone(
    store: RepositoryDriver,
) -> None:
    """An admission's entry template, a review image and a queued exit template of a known
    traveler keep no key of their own: with their data key shredded, a copy of those rows that
    survived anywhere (a replica, a backup, a database's log) opens with nothing, KEK or not."""
    ids = board(store)
    foreign = ids["foreign"]
    stranger = CaptureRecord(
        "c2", "f1", "G1", "cam", DEPARTURE, "no_match", None, 0.1, None, "m", image=b"nobody"
    )
    store.write(lambda uow: uow.captures.add_capture(stranger))
    with store.engine.connect() as connection:
        keys_of = {
            table.__tablename__: connection.execute(
                select(table.wrapped_key, table.kek_id).where(table.id == row_id)
            ).one()
            for table, row_id in ((AdmissionRow, "a1"), (CaptureRow, "c1"), (OutboxRow, "o1"))
        }
        unknown = connection.execute(
            text("SELECT wrapped_key, kek_id FROM captures WHERE id = 'c2'")
        ).one()
    assert set(keys_of.values()) == {(None, None)}
    assert unknown[0] is not None  # a capture that matched no one: a key of its own
    assert store.read(lambda uow: uow.cases.capture_image("c1")) is not None
    assert [a for a, _ in store.read(lambda uow: uow.admissions.open_templates("m", "x", 9))] == [
        "a1"
    ]

    store.shred_traveler(foreign)  # the data key only: the item rows are all still there
    assert store.read(lambda uow: uow.cases.capture_image("c1")) is None
    assert store.read(lambda uow: uow.admissions.open_templates("m", "x", 9)) == []
    (message,) = store.write(lambda uow: uow.outbox.pending("admission", 9))
    assert message.template is None
    assert store.read(lambda uow: uow.cases.capture_image("c2")) == b"nobody"


def test_the_privacy_report_counts_enrolled_and_kept_fingerprints(
    store: RepositoryDriver,
) -> None:
    ids = board(store)
    store.write(
        lambda uow: uow.fingerprints.enrol(
            DocumentKey("UTO", NUMBER),
            2,
            "nbis-mcc-v1",
            b"minutiae",
            40,
            DEPARTURE,
            DEPARTURE + timedelta(days=1),
        )
    )
    kept_at = DEPARTURE + timedelta(hours=1)
    keep_case_print(store, ids["foreign"], kept_at)
    reports = store.factory.reports
    later = DEPARTURE + timedelta(days=2)

    held = reports.retention_counts(later, POLICY)
    assert held["fingerprint_templates"] == {"held": 1, "overdue": 1}
    assert held["case_fingerprints"] == {"held": 1, "overdue": 0}
    oldest = reports.oldest_held()
    assert oldest["fingerprint_templates"] == DEPARTURE
    assert oldest["case_fingerprints"] == kept_at
    assert oldest["reference_templates"] == DEPARTURE

    store.write(lambda uow: uow.retention.purge_expired(later, POLICY))
    held = reports.retention_counts(later, POLICY)
    assert held["fingerprint_templates"] == {"held": 0, "overdue": 0}
    assert held["case_fingerprints"] == {"held": 1, "overdue": 0}
    assert reports.oldest_held()["fingerprint_templates"] is None
