"""Captures whose embeddings share forward passes (micro-batching on) through the capture
service, real models: each capture is decided on its own face, never a batch neighbour's."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from entryexit.biometrics import EngineSettings, FaceEngine
from entryexit.bootstrap import build_services
from entryexit.config import Settings
from entryexit.domain.access import Principal, Role
from entryexit.domain.model import (
    CitizenshipClass,
    Decision,
    Direction,
    DocumentKey,
    DocumentType,
    ManifestTraveler,
    PhotoSource,
    Sex,
)
from entryexit.services.captures import CaptureOutcome
from entryexit.services.flights import NewFlight
from tests.conftest import lfw_image
from tests.fakes import StaticKeyProvider

pytestmark = [pytest.mark.models, pytest.mark.lfw]

PERSONS = ["Colin_Powell", "Ariel_Sharon", "Donald_Rumsfeld", "Andre_Agassi"]


def test_concurrent_captures_sharing_passes_each_match_their_own_traveler(
    tmp_path: Path, model_dir: Path, lfw_dir: Path
) -> None:
    engine = FaceEngine.from_model_dir(
        model_dir, EngineSettings(workers=2, embed_batch_wait_ms=500.0)
    )
    services = build_services(Settings(data_dir=tmp_path), engine=engine, keys=StaticKeyProvider())
    officer = Principal("k1", "officer", Role.OFFICER)
    flight = services.flights.create(
        NewFlight("EE", "1", datetime(2030, 1, 1, tzinfo=UTC), "AAA", "BBB", Direction.EXIT)
    )
    documents = [DocumentKey("XYZ", f"N{i}") for i in range(len(PERSONS))]
    services.flights.put_manifest(
        flight.id,
        [
            ManifestTraveler(
                person.split("_")[-1].upper(),
                person.split("_")[0].upper(),
                date(1960, 1, 1),
                Sex.MALE,
                "XYZ",
                CitizenshipClass.FOREIGN_NATIONAL,
                DocumentType.PASSPORT,
                document,
                date(2031, 1, 1),
            )
            for person, document in zip(PERSONS, documents, strict=True)
        ],
    )
    for person, document in zip(PERSONS, documents, strict=True):
        photo = lfw_image(lfw_dir, person, 1).read_bytes()
        services.enrolment.enrol(document, photo, PhotoSource.PASSPORT)
    services.galleries.stage(flight.id)
    traveler_of = {row.document: row.traveler_id for row in services.flights.manifest(flight.id)}
    captures = [lfw_image(lfw_dir, person, 2).read_bytes() for person in PERSONS]
    outcomes: list[CaptureOutcome | None] = [None] * len(PERSONS)
    start = threading.Barrier(len(PERSONS))

    def capture(index: int) -> None:
        start.wait()
        outcomes[index] = services.captures.process(
            officer, flight.id, captures[index], "G1", "cam"
        )

    threads = [threading.Thread(target=capture, args=(i,)) for i in range(len(PERSONS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    stats = engine.batch_stats
    assert stats is not None
    assert stats.shared_passes >= 1
    for outcome, document in zip(outcomes, documents, strict=True):
        assert outcome is not None
        assert outcome.decision is Decision.MATCH
        assert outcome.traveler_id == traveler_of[document]
    services.uow.engine.dispose()
