"""Model work stays outside the capture's transaction: captures on one SQLite database (one
writer at a time, each writer taking the lock when it begins) still analyse in parallel."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

from entryexit.biometrics import FaceAnalysis
from entryexit.biometrics.decode import ImageKind
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
from entryexit.services.flights import NewFlight
from tests.fakes import FakeAnalyser, StaticKeyProvider

MODEL_SECONDS = 0.4


class SlowAnalyser(FakeAnalyser):
    """A face model that takes its time (and, like OpenCV, lets other threads run)."""

    def analyse(
        self,
        data: bytes,
        formats: frozenset[str] = frozenset(),
        kind: ImageKind = ImageKind.GATE_FRAME,
    ) -> FaceAnalysis:
        time.sleep(MODEL_SECONDS)
        return super().analyse(data)


def test_four_captures_analyse_in_parallel_and_each_records_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, gallery_threshold=0.9)
    services = build_services(settings, engine=SlowAnalyser(), keys=StaticKeyProvider())
    officer = Principal("k1", "officer", Role.OFFICER)
    flight = services.flights.create(
        NewFlight("EE", "1", datetime(2030, 1, 1, tzinfo=UTC), "AAA", "BBB", Direction.EXIT)
    )
    travelers = [
        ManifestTraveler(
            "DOE",
            "J",
            date(1990, 1, 1),
            Sex.MALE,
            "XYZ",
            CitizenshipClass.FOREIGN_NATIONAL,
            DocumentType.PASSPORT,
            DocumentKey("XYZ", f"N{i}"),
            date(2031, 1, 1),
        )
        for i in range(4)
    ]
    services.flights.put_manifest(flight.id, travelers)
    for i in range(4):
        services.enrolment.enrol(
            DocumentKey("XYZ", f"N{i}"), f"face:{i}".encode(), PhotoSource.PASSPORT
        )
    services.galleries.stage(flight.id)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(
            pool.map(
                lambda i: services.captures.process(
                    officer, flight.id, f"face:{i}".encode(), "G1", "cam"
                ),
                range(4),
            )
        )
    elapsed = time.perf_counter() - began

    assert [o.decision for o in outcomes] == [Decision.MATCH] * 4
    assert len(services.flights.encounters(flight.id)) == 4
    # Serialised behind the database's one writer, four analyses would take 4 x 0.4 s.
    assert elapsed < 2.5 * MODEL_SECONDS, elapsed
    services.uow.engine.dispose()
