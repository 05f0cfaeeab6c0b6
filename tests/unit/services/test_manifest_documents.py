"""A manifest document handed to a stager (in the calling process here, over the fakes):
the contracts of each format, and a stager that fails part-way leaves the manifest in force
and no staged rows; which stores get worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entryexit.adapters.manifest_workers import ManifestWorkers
from entryexit.bootstrap import build_manifest_workers
from entryexit.config import Settings
from entryexit.documents.manifest import traveler_row
from entryexit.errors import InvalidInputError, WorkerUnavailableError
from entryexit.services.flights import (
    FlightService,
    ManifestFormat,
    ManifestUpload,
    StagedManifest,
    read_manifest,
    stage_travelers,
)
from tests.fake_storage import FakeUnitOfWorkFactory
from tests.fakes import StaticKeyProvider
from tests.unit.services.world import OFFICER, World, traveler

DATA = Path(__file__).parents[1] / "documents" / "data"


def json_manifest(*numbers: str) -> bytes:
    return json.dumps({"travelers": [traveler_row(traveler(n)) for n in numbers]}).encode()


def in_force(world: World, flight_id: str) -> set[str]:
    return {t.document.number for t in world.flights.manifest_travelers(flight_id)}


def test_a_json_manifest_replaces_the_one_in_force() -> None:
    world = World()
    flight = world.flight(travelers=[traveler("N1"), traveler("N2")])
    replaced = world.flights.replace_manifest(
        flight.id, json_manifest("N2", "N3"), ManifestFormat.JSON, OFFICER
    )
    change = replaced.change
    assert (change.added, change.removed, change.updated, change.total) == (1, 1, 1, 2)
    assert replaced.flagged == ()
    assert in_force(world, flight.id) == {"N2", "N3"}


def test_an_invalid_csv_row_refuses_the_whole_manifest_naming_the_row() -> None:
    world = World()
    flight = world.flight(travelers=[traveler("N1")])
    header = ",".join(traveler_row(traveler("A1")))
    rows = [",".join(traveler_row(traveler(n)).values()) for n in ("A1", "A2")]
    rows[1] = rows[1].replace("1990-01-02", "1990-13-02")
    body = "\n".join([header, *rows]).encode()
    with pytest.raises(InvalidInputError, match="row 3: 'date_of_birth'"):
        world.flights.replace_manifest(flight.id, body, ManifestFormat.CSV, OFFICER)
    assert in_force(world, flight.id) == {"N1"}
    assert world.uow.database.tables.manifest_staging == {}


def test_a_paxlst_keeps_its_valid_travelers_and_flags_the_others() -> None:
    world = World()
    flight = world.flight()
    text = (
        "UNH+1+PAXLST:D:05B:UN'NAD+FL+++DOE:JANE'DTM+329:19801340'NAT+2+UTO'"
        "DOC+P+A1'DTM+36:20300101'"
        "NAD+FL+++ROE:JOHN'ATT+2++M'DTM+329:19800101'NAT+2+UTO'DOC+P+B2'DTM+36:20300101'"
        "UNT+13+1'"
    )
    replaced = world.flights.replace_manifest(
        flight.id, text.encode(), ManifestFormat.PAXLST, OFFICER
    )
    assert replaced.change.total == 1
    assert in_force(world, flight.id) == {"B2"}
    assert [f.reason for f in replaced.flagged if "not a date" in f.reason]


class DiesHalfway:
    """A stager that writes part of the upload, then fails as a dead worker does."""

    def __init__(self, world: World) -> None:
        self.world = world

    def stage(self, upload: ManifestUpload) -> StagedManifest:
        travelers, _ = read_manifest(upload.data, upload.format, upload.today, upload.home_state)
        stage_travelers(
            self.world.uow,
            upload.flight_id,
            upload.upload_id,
            travelers[:2],
            upload.staged_at,
            pause=0,
        )
        raise WorkerUnavailableError("the manifest worker stopped", retry_after=1)


def test_a_stager_that_dies_part_way_leaves_the_manifest_in_force() -> None:
    world = World()
    flight = world.flight(travelers=[traveler("N1")])
    flights = FlightService(world.uow, world.clock, "m", world.audit, stager=DiesHalfway(world))
    with pytest.raises(WorkerUnavailableError):
        flights.replace_manifest(flight.id, json_manifest("A1", "A2", "A3"), ManifestFormat.JSON)
    assert in_force(world, flight.id) == {"N1"}
    assert world.uow.database.tables.manifest_staging == {}


def test_an_unknown_flight_is_refused_before_any_work() -> None:
    world = World()
    flights = FlightService(world.uow, world.clock, "m", world.audit, stager=DiesHalfway(world))
    with pytest.raises(Exception, match="does not exist"):
        flights.replace_manifest("no-such-flight", json_manifest("A1"), ManifestFormat.JSON)


@pytest.mark.parametrize(
    ("url", "workers", "expected"),
    [
        ("sqlite+pysqlite:///DIR/entryexit.db", 1, True),
        ("sqlite+pysqlite:///DIR/entryexit.db", 0, False),
        ("sqlite+pysqlite://", 1, False),
        ("sqlite+pysqlite:///:memory:", 1, False),
    ],
)
def test_worker_processes_only_for_a_database_another_process_can_open(
    url: str, workers: int, expected: bool, tmp_path: Path
) -> None:
    from entryexit.adapters.storage.database import create_database_engine
    from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory

    url = url.replace("DIR", str(tmp_path))
    settings = Settings(data_dir=tmp_path, manifest_workers=workers)
    engine = create_database_engine(url)
    try:
        built = build_manifest_workers(
            settings, SqlUnitOfWorkFactory(engine, StaticKeyProvider()), StaticKeyProvider()
        )
    finally:
        engine.dispose()
    assert isinstance(built, ManifestWorkers) is expected


def test_no_worker_processes_over_in_memory_fakes() -> None:
    settings = Settings(data_dir=Path("/nonexistent"), manifest_workers=2)
    assert build_manifest_workers(settings, FakeUnitOfWorkFactory(), StaticKeyProvider()) is None
