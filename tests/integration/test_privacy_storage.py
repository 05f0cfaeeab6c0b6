"""Encryption at rest, key rotation, crypto-shredding and the audit chain, on both databases."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from entryexit.adapters.crypto.envelope import DecryptionError, open_sealed, unwrap_data_key
from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.repositories.maintenance import SEALED_ITEMS
from entryexit.adapters.storage.tables import Base
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
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
from entryexit.services.audit import AuditTrail
from entryexit.services.ports import CaptureRecord, NewAdmission, WatchlistEntry
from entryexit.services.unit_of_work import OutboxMessage, UnitOfWork
from tests.fakes import StaticKeyProvider
from tests.repository_driver import RepositoryDriver

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def keys() -> StaticKeyProvider:
    return StaticKeyProvider()


@pytest.fixture
def store(database_url: str, keys: StaticKeyProvider) -> Iterator[RepositoryDriver]:
    engine = create_database_engine(database_url)
    migrate(engine)
    yield RepositoryDriver(SqlUnitOfWorkFactory(engine, keys))
    engine.dispose()


def template_bytes(seed: int) -> bytes:
    vector = np.random.default_rng(seed).normal(size=128).astype("<f4")
    data: bytes = (vector / np.linalg.norm(vector)).astype("<f4").tobytes()
    return data


def flight_with_travelers(store: RepositoryDriver, count: int) -> list[str]:
    store.add_flight(Flight("f1", "EE", "1", NOW, "AAA", "BBB", Direction.EXIT, NOW))
    travelers = [
        ManifestTraveler(
            f"SURNAME{i}",
            "GIVEN",
            date(1980, 1, 1),
            Sex.FEMALE,
            "UTO",
            CitizenshipClass.CITIZEN,
            DocumentType.PASSPORT,
            DocumentKey("UTO", f"P{i:07d}"),
            date(2030, 1, 1),
        )
        for i in range(count)
    ]
    store.replace_manifest("f1", travelers, NOW)
    ids = []
    for i in range(count):
        _, traveler_id = store.add_reference_template(
            DocumentKey("UTO", f"P{i:07d}"), PhotoSource.PASSPORT, template_bytes(i), "m", NOW
        )
        ids.append(traveler_id)
    return ids


def test_templates_are_stored_sealed_and_open_only_with_the_key(
    store: RepositoryDriver, keys: StaticKeyProvider
) -> None:
    flight_with_travelers(store, 3)
    with store.engine.connect() as connection:
        stored = [
            bytes(v) for (v,) in connection.execute(text("SELECT vector FROM reference_templates"))
        ]
    plain = {template_bytes(i) for i in range(3)}
    assert len(stored) == 3
    assert not plain & set(stored)
    assert all(p not in s for p in plain for s in stored)
    assert {t.vector for t in store.gallery_templates("f1", "m")} == plain


def test_rotation_rewraps_every_data_key_and_the_old_kek_can_go(
    store: RepositoryDriver, keys: StaticKeyProvider
) -> None:
    flight_with_travelers(store, 4)
    keys.add_kek("k2")
    assert store.data_keys_by_kek() == {"k1": 4}
    assert store.rotate_data_keys(batch_size=3) == 4
    assert store.data_keys_by_kek() == {"k2": 4}
    keys.forget_kek("k1")
    assert len(store.gallery_templates("f1", "m")) == 4


def test_every_sealed_table_is_rotated_derived_from_the_schema() -> None:
    """A new table that keeps a KEK-wrapped key (a ``kek_id`` column) must be rotated too:
    the list is read off the schema, never kept by hand."""
    sealed = {table.name for table in Base.metadata.sorted_tables if "kek_id" in table.columns}
    assert sealed == {table.__tablename__ for table in SEALED_ITEMS}


def test_rotation_covers_watchlist_admission_outbox_and_capture_keys(
    store: RepositoryDriver, keys: StaticKeyProvider
) -> None:
    """The attack on the old rotation: re-wrap the traveler keys only, retire the old KEK,
    and the watchlist, open admissions' entry templates, queued admission work and review
    images become unreadable for good."""
    ids = flight_with_travelers(store, 2)
    watchlist = WatchlistEntry("w1", "category", "reason", "m", "admin", NOW)
    store.write(lambda uow: uow.watchlist.add_entry(watchlist, template_bytes(7)))
    admission = NewAdmission(
        "a1", ids[0], "B2", NOW.date(), None, "e1", "f1", template_bytes(8), "m", NOW
    )
    store.write(lambda uow: uow.admissions.open(admission))
    message = OutboxMessage("o1", "admission", {"k": "v"}, NOW, template_bytes(9))
    store.write(lambda uow: uow.outbox.add(message))
    capture = CaptureRecord(
        "c1", "f1", "G1", "cam", NOW, "no_match", None, 0.1, None, "m", image=b"photo"
    )
    store.write(lambda uow: uow.captures.add_capture(capture))
    removed = WatchlistEntry("w2", "category", "reason", "m", "admin", NOW)
    store.write(lambda uow: uow.watchlist.add_entry(removed, template_bytes(10)))
    store.write(lambda uow: uow.watchlist.remove_entry("w2", NOW))

    keys.add_kek("k2")
    store.rotate_data_keys(batch_size=1)
    assert set(store.data_keys_by_kek()) == {"k2"}  # nothing refers to k1 any more
    keys.forget_kek("k1")

    assert store.read(lambda uow: uow.watchlist.templates("m")) == [("w1", template_bytes(7))]
    assert store.read(lambda uow: uow.admissions.open_templates("m", "nobody", 10)) == [
        ("a1", template_bytes(8))
    ]
    (pending,) = store.read(lambda uow: uow.outbox.pending("admission", 10))
    assert pending.template == template_bytes(9)
    assert store.read(lambda uow: uow.cases.capture_image("c1")) == b"photo"


def test_shredding_also_erases_the_travelers_name_and_document_number(
    store: RepositoryDriver, keys: StaticKeyProvider
) -> None:
    ids = flight_with_travelers(store, 2)
    store.shred_traveler(ids[0])
    statuses = {s.traveler_id: s for s in store.manifest_status("f1", "m")}
    assert statuses[ids[0]].surname == "(erased)"
    assert statuses[ids[0]].document.number == "(erased)"
    assert statuses[ids[1]].surname == "SURNAME1"
    # The digest still finds the document, so a new manifest or photo starts afresh.
    assert store.traveler_for_document(DocumentKey("UTO", "P0000000")) == ids[0]


def test_crypto_shredding_with_a_kek_rotation_makes_every_copy_unreadable(
    store: RepositoryDriver, keys: StaticKeyProvider
) -> None:
    ids = flight_with_travelers(store, 2)
    with store.engine.connect() as connection:  # a backup taken before the shredding
        template_id, sealed = connection.execute(
            text("SELECT id, vector FROM reference_templates WHERE traveler_id = :t"),
            {"t": ids[0]},
        ).one()
        wrapped = connection.execute(
            text("SELECT wrapped_key FROM data_keys WHERE traveler_id = :t"), {"t": ids[0]}
        ).scalar_one()
    context = f"template:{template_id}:{ids[0]}:m".encode()
    assert open_sealed(
        unwrap_data_key(keys.kek("k1"), bytes(wrapped), ids[0]), bytes(sealed), context
    )

    assert store.shred_traveler(ids[0]) == 1
    # The live database no longer holds the traveler's key or templates.
    assert [t.traveler_id for t in store.gallery_templates("f1", "m")] == [ids[1]]
    with store.engine.connect() as connection:
        assert (
            connection.execute(
                text("SELECT count(*) FROM data_keys WHERE traveler_id = :t"), {"t": ids[0]}
            ).scalar_one()
            == 0
        )
    # The backup still holds the wrapped key; rotating the KEK and retiring the old one
    # (`entryexit keys rotate`) leaves nothing that can unwrap it.
    keys.add_kek("k2")
    assert store.rotate_data_keys() == 1  # only the remaining traveler's key
    keys.forget_kek("k1")
    with pytest.raises(DecryptionError):
        unwrap_data_key(keys.kek("k2"), bytes(wrapped), ids[0])
    assert [t.traveler_id for t in store.gallery_templates("f1", "m")] == [ids[1]]


def test_audit_chain_detects_every_kind_of_tampering(
    store: RepositoryDriver, keys: StaticKeyProvider
) -> None:
    trail = AuditTrail(store.factory, lambda: NOW, keys)
    for index in range(6):
        trail.record_alone("test action", "ok", resource_type="flight", resource_id=f"f{index}")
    assert trail.verify().ok
    assert trail.verify().events == 6

    def tamper(sql: str) -> tuple[bool, int | None]:
        with store.engine.begin() as connection:
            connection.execute(text(sql))
        result = trail.verify()
        return result.ok, result.first_broken_sequence

    assert tamper("UPDATE audit_events SET outcome = 'denied' WHERE sequence = 3") == (False, 3)
    tamper("UPDATE audit_events SET outcome = 'ok' WHERE sequence = 3")
    assert trail.verify().ok
    assert tamper("DELETE FROM audit_events WHERE sequence = 6") == (False, 6)


def test_audit_chain_detects_deletion_insertion_and_reordering(
    store: RepositoryDriver, keys: StaticKeyProvider
) -> None:
    trail = AuditTrail(store.factory, lambda: NOW, keys)
    for index in range(5):
        trail.record_alone("test action", "ok", resource_id=f"r{index}")
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events WHERE sequence = 2"))
    assert (trail.verify().ok, trail.verify().first_broken_sequence) == (False, 2)

    with store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_events SELECT 2, occurred_at, action, outcome, actor_key_id,"
                " actor_role, resource_type, 'forged', policy_version, details, previous_hash,"
                " hash, mac FROM audit_events WHERE sequence = 3"
            )
        )
    assert (trail.verify().ok, trail.verify().first_broken_sequence) == (False, 2)

    with store.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET sequence = 100 WHERE sequence = 4"))
        connection.execute(text("UPDATE audit_events SET sequence = 4 WHERE sequence = 5"))
        connection.execute(text("UPDATE audit_events SET sequence = 5 WHERE sequence = 100"))
    assert trail.verify().ok is False


def test_breach_drill_a_stolen_sqlite_file_yields_no_biometrics(tmp_path: Path) -> None:
    keys = StaticKeyProvider()
    database = tmp_path / "entryexit.db"
    engine = create_database_engine(f"sqlite+pysqlite:///{database}")
    migrate(engine)
    store = RepositoryDriver(SqlUnitOfWorkFactory(engine, keys))
    flight_with_travelers(store, 5)
    engine.dispose()
    stolen = tmp_path / "stolen.db"
    shutil.copy(database, stolen)
    raw = stolen.read_bytes()
    for i in range(5):
        plain = template_bytes(i)
        assert plain not in raw
        assert plain[:32] not in raw  # not even a fragment of a vector
        # Names and document numbers of the (citizen) travelers are not there either.
        assert f"SURNAME{i}".encode() not in raw
        assert f"P{i:07d}".encode() not in raw
    assert b"1980-01-01" not in raw
    # Opened with a plain SQLite client and no keys: every stored template is ciphertext
    # that no key other than the traveler's wrapped data key authenticates.
    connection = sqlite3.connect(stolen)
    try:
        rows = connection.execute(
            "SELECT id, traveler_id, model, vector FROM reference_templates"
        ).fetchall()
    finally:
        connection.close()
    assert len(rows) == 5
    for template_id, traveler_id, model, vector in rows:
        context = f"template:{template_id}:{traveler_id}:{model}".encode()
        with pytest.raises(DecryptionError):
            open_sealed(b"\x00" * 32, bytes(vector), context)


def test_an_admission_keeps_how_many_photos_its_entry_template_fuses(
    store: RepositoryDriver,
) -> None:
    """The exit link's threshold follows it (migration 0019); unknown stays unknown."""
    ids = flight_with_travelers(store, 2)
    for number, (admission_id, photos) in enumerate((("a1", 2), ("a2", None))):
        admission = NewAdmission(
            admission_id,
            ids[number],
            "B2",
            NOW.date(),
            None,
            f"e{number}",
            "f1",
            template_bytes(8 + number),
            "m",
            NOW,
            template_photos=photos,
        )
        opened = store.write(partial(_open_admission, admission))
        assert opened
    assert store.read(lambda uow: uow.admissions.template_photos("a1")) == 2
    assert store.read(lambda uow: uow.admissions.template_photos("a2")) is None
    assert store.read(lambda uow: uow.admissions.template_photos("missing")) is None


def _open_admission(admission: NewAdmission, uow: UnitOfWork) -> bool:
    return uow.admissions.open(admission)
