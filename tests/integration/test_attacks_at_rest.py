"""Attacks by someone who holds the database (a copy of its files, or write access) but not the
keys, on both databases: what the sealing and the keyed document digest must withstand."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from entryexit.adapters.storage.database import create_database_engine, migrate
from entryexit.adapters.storage.tables import AdmissionRow, DocumentRow, ReferenceTemplateRow
from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory
from entryexit.domain.admission import ExitLink
from entryexit.domain.model import DocumentKey, PhotoSource
from tests.conftest import lfw_image
from tests.fakes import StaticKeyProvider

# `store` (SQLite and PostgreSQL) is the fixture of the erasure tests.
from tests.integration.test_erasure_storage import (
    DEPARTURE,
    NUMBER,
    board,
    cells_naming,
    files_bytes,
    sqlite_store,
    template_bytes,
)
from tests.repository_driver import RepositoryDriver


@pytest.fixture
def store(database_url: str) -> Iterator[RepositoryDriver]:
    engine = create_database_engine(database_url)
    migrate(engine)
    yield RepositoryDriver(SqlUnitOfWorkFactory(engine, StaticKeyProvider()))
    engine.dispose()


def test_a_document_is_found_by_a_keyed_digest_the_thief_cannot_recompute(
    store: RepositoryDriver,
) -> None:
    """A thief who knows a passport number must not confirm it from the copy: the plain
    SHA-256 of state and number, or an HMAC under an empty key, is nowhere in it."""
    board(store)
    message = f"XYZ:{NUMBER}".encode()  # the foreign national's document
    with store.engine.connect() as connection:
        digests = set(connection.scalars(select(DocumentRow.number_digest)))
    # The control: the column holds the HMAC under the index key, of this very message.
    assert hmac.new(b"\x03" * 32, message, hashlib.sha256).hexdigest() in digests
    for guess in (
        hashlib.sha256(message).hexdigest(),
        hmac.new(b"", message, hashlib.sha256).hexdigest(),
        hashlib.sha256(NUMBER.encode()).hexdigest(),
    ):
        assert cells_naming(store, guess) == {}


def test_closing_a_stay_erases_its_entry_template(store: RepositoryDriver) -> None:
    ids = board(store)

    def sealed_template() -> tuple[object, object, object]:
        with store.engine.connect() as connection:
            row = connection.execute(
                select(AdmissionRow.template, AdmissionRow.wrapped_key, AdmissionRow.kek_id).where(
                    AdmissionRow.id == "a1"
                )
            ).one()
        return row[0], row[1], row[2]

    assert sealed_template()[0] is not None
    closed = store.write(
        lambda uow: uow.admissions.close(
            "a1",
            "e-exit",
            "f-exit",
            ids["foreign"],
            (DEPARTURE + timedelta(days=10)).date(),
            ExitLink.BIOMETRIC,
            0.9,
        )
    )
    assert closed
    assert sealed_template() == (None, None, None)


def test_moving_one_travelers_sealed_rows_to_another_does_not_swap_identities(
    store: RepositoryDriver,
) -> None:
    """A DB writer moves the foreign national's data key and template onto the citizen's id
    (the citizen is on the flight), hoping the foreign national's face boards as the citizen.
    Each value is sealed with its owner as associated data: the moved rows do not open, and
    the traveler they now name is left out of the gallery (named, for the tamper alarm)."""
    ids = board(store)
    theirs, victim = ids["foreign"], ids["citizen"]
    foreign_vector = template_bytes(1)
    with store.engine.begin() as connection:
        connection.execute(
            text("DELETE FROM reference_templates WHERE traveler_id = :v"), {"v": victim}
        )
        wrapped = connection.execute(
            text("SELECT wrapped_key, kek_id FROM data_keys WHERE traveler_id = :t"), {"t": theirs}
        ).one()
        connection.execute(
            text("UPDATE data_keys SET wrapped_key = :w, kek_id = :k WHERE traveler_id = :v"),
            {"w": wrapped[0], "k": wrapped[1], "v": victim},
        )
        connection.execute(
            text("UPDATE reference_templates SET traveler_id = :v WHERE traveler_id = :t"),
            {"v": victim, "t": theirs},
        )
    unopenable: set[str] = set()
    left = store.gallery_templates("f1", "m", unopenable)
    assert unopenable == {victim}
    assert victim not in {t.traveler_id for t in left}
    assert foreign_vector not in {t.vector for t in left}
    # The control: put back as they were, the rows open again for their owner alone.
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE reference_templates SET traveler_id = :t WHERE traveler_id = :v"),
            {"v": victim, "t": theirs},
        )
    gallery = {t.traveler_id: t.vector for t in store.gallery_templates("f1", "m")}
    assert gallery[theirs] == foreign_vector


def test_an_enrolled_reference_photo_is_not_in_the_sqlite_files(
    tmp_path: Path, lfw_dir: Path
) -> None:
    """A thief with a copy of the files searches them for slices of a traveler's enrolment
    photo (any 64 bytes of a JPEG identify it)."""
    copy, path = sqlite_store(tmp_path, secure=True)
    photo = lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes()
    _, traveler_id = copy.write(
        lambda uow: uow.travelers.add_reference_template(
            DocumentKey("UTO", NUMBER),
            PhotoSource.PASSPORT,
            template_bytes(3),
            "m",
            DEPARTURE,
            image=photo,
        )
    )
    copied = files_bytes(path)
    slices = [photo[i : i + 64] for i in range(0, len(photo) - 64, max(len(photo) // 16, 64))]
    assert [i for i, piece in enumerate(slices) if piece in copied] == []
    # The control: the photo is kept, and opens with the key.
    assert copy.read(lambda uow: uow.travelers.reference_photo(traveler_id)) == photo
    with copy.engine.connect() as connection:
        stored = connection.scalar(select(ReferenceTemplateRow.image))
    assert stored is not None
    assert len(stored) >= len(photo)
    copy.engine.dispose()
