"""Privacy promises as behaviour: opt-out, exemption, retention and the report that proves it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text as sql_text

from entryexit.adapters.crypto.keys import FileKeyProvider
from entryexit.adapters.storage.sealing import Sealer
from entryexit.api.app import create_app
from entryexit.biometrics import FaceEngine
from entryexit.bootstrap import SqlServices, build_services
from entryexit.config import Settings
from entryexit.domain.access import Role
from entryexit.domain.model import DocumentKey
from entryexit.services.policies import shipped_policy_text
from tests.conftest import lfw_image
from tests.integration.api.conftest import (
    FOREIGN_STATE,
    HOME_STATE,
    Api,
    capture,
    enrol,
    manifest_row,
)

pytestmark = [pytest.mark.models, pytest.mark.lfw]


class MovableClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def world(
    database_url: str,
    engine: FaceEngine,
    tmp_path: Path,
    clock: MovableClock,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[tuple[Api, SqlServices]]:
    # DEBUG from the start, so the database engine is created with its SQL logging on.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # it sets itself to WARNING on import
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    keys = FileKeyProvider(settings.resolved_key_dir)
    keys.initialise()
    services = build_services(settings, engine=engine, keys=keys, clock=clock)
    tokens = {"admin": services.keys.create_first_admin() or ""}
    for role in (Role.OFFICER, Role.AUDITOR):
        tokens[role.value] = services.keys.create(role, role.value)[1]
    tokens["gate"] = services.keys.create(Role.GATE, "gate", carrier="EE")[1]
    with TestClient(create_app(services)) as client:
        yield Api(client, services, tokens), services
    services.uow.engine.dispose()


def board_mixed_flight(api: Api, lfw: Path, citizen_birth: str = "1970-01-01") -> str:
    flight = api.create_flight()
    rows = [
        {**manifest_row("C0000001", "POWELL", "citizen"), "date_of_birth": citizen_birth},
        manifest_row("F0000002", "SHARON", "foreign_national"),
        {**manifest_row("K0000003", "URIBE", "citizen"), "date_of_birth": "2016-05-01"},
    ]
    sent = api.client.put(
        f"/v1/flights/{flight['id']}/manifest", json=rows, headers=api.headers("officer")
    )
    assert sent.status_code == 200, sent.text
    enrol(api, "C0000001", lfw_image(lfw, "Colin_Powell", 1), HOME_STATE)
    enrol(api, "F0000002", lfw_image(lfw, "Ariel_Sharon", 1), FOREIGN_STATE)
    enrol(api, "K0000003", lfw_image(lfw, "Alvaro_Uribe", 1), HOME_STATE)
    staged = api.client.post(f"/v1/flights/{flight['id']}/gallery", headers=api.headers("officer"))
    assert staged.status_code == 200
    return str(flight["id"])


def test_a_child_is_exempt_and_never_matched(world: tuple[Api, SqlServices], lfw_dir: Path) -> None:
    api, _ = world
    flight_id = board_mixed_flight(api, lfw_dir)
    child = capture(api, flight_id, lfw_image(lfw_dir, "Alvaro_Uribe", 2), role="officer")
    assert child.json()["decision"] == "no_match"
    adult = capture(api, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2), role="officer")
    assert adult.json()["decision"] == "match"
    report = api.client.get("/v1/privacy/report", headers=api.headers("auditor")).json()
    assert report["exemptions"] == 1


def test_opt_out_takes_the_traveler_out_of_matching(
    world: tuple[Api, SqlServices], lfw_dir: Path
) -> None:
    api, _ = world
    flight_id = board_mixed_flight(api, lfw_dir)
    opt_out = api.client.post(
        f"/v1/flights/{flight_id}/opt-outs",
        json={"issuing_state": "UTO", "number": "C0000001", "gate": "B7"},
        headers=api.headers("gate"),
    )
    assert opt_out.status_code == 201, opt_out.text
    assert opt_out.json()["decision"] == "manual"
    assert set(opt_out.json()) == {"decision", "encounter_id", "policy_version"}
    response = capture(api, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2), role="officer")
    assert response.json()["decision"] == "no_match"
    encounters = api.client.get(
        f"/v1/flights/{flight_id}/encounters", headers=api.headers("officer")
    ).json()
    assert [e["method"] for e in encounters] == ["opt_out"]
    again = api.client.post(
        f"/v1/flights/{flight_id}/opt-outs",
        json={"issuing_state": "UTO", "number": "C0000001", "gate": "B7"},
        headers=api.headers("officer"),
    )
    assert again.status_code == 409


def test_opt_out_is_refused_where_the_policy_requires_capture(
    world: tuple[Api, SqlServices], lfw_dir: Path
) -> None:
    api, services = world
    services.policies.load(shipped_policy_text("noncitizens-mandatory.toml"))
    flight_id = board_mixed_flight(api, lfw_dir)
    refused = api.client.post(
        f"/v1/flights/{flight_id}/opt-outs",
        json={"issuing_state": FOREIGN_STATE, "number": "F0000002", "gate": "B7"},
        headers=api.headers("officer"),
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:entryexit:problem:opt-out-refused"
    assert "noncitizens-mandatory-1" in refused.json()["detail"]
    citizen = api.client.post(
        f"/v1/flights/{flight_id}/opt-outs",
        json={"issuing_state": "UTO", "number": "C0000001", "gate": "B7"},
        headers=api.headers("officer"),
    )
    assert citizen.status_code == 201
    assert citizen.json()["policy_version"] == "noncitizens-mandatory-1"
    policies = api.client.get("/v1/policies", headers=api.headers("auditor")).json()
    assert [p["version"] for p in policies] == ["default-2", "noncitizens-mandatory-1"]
    current = api.client.get("/v1/policies/current", headers=api.headers("auditor")).json()
    assert current["participation"]["foreign_national"] == "required"
    # The policy carries the notice shown at kiosks; one without its own shows the generic one.
    assert policies[0]["notice"]["version"] == "notice-1"
    assert set(policies[0]["notice"]["text"]) == {"en", "fr"}
    assert current["notice"]["version"] == "generic-1"


def test_thirteen_hours_later_no_citizen_capture_data_is_left(
    world: tuple[Api, SqlServices], lfw_dir: Path, clock: MovableClock
) -> None:
    api, services = world
    flight_id = board_mixed_flight(api, lfw_dir)
    capture(api, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2))  # citizen: matched
    capture(api, flight_id, lfw_image(lfw_dir, "Ariel_Sharon", 2))  # foreign national
    stranger = capture(api, flight_id, lfw_image(lfw_dir, "Donald_Rumsfeld", 1))  # no match
    assert stranger.json()["decision"] == "no_match"

    def kept_image(capture_id: str) -> bytes | None:
        with services.uow(read_only=True) as uow:
            return uow.cases.capture_image(capture_id)

    assert kept_image(stranger.json()["capture_id"]) is not None
    before = api.client.get("/v1/privacy/report", headers=api.headers("auditor")).json()
    assert before["held"]["capture_images"] == 1
    assert before["overdue_total"] == 0

    clock.now += timedelta(hours=13)
    assert before["held"]["reference_templates"] == 3
    # Overdue until the purge runs; the scheduled purge (or `entryexit purge`) removes it.
    overdue = api.client.get("/v1/privacy/report", headers=api.headers("auditor")).json()
    assert overdue["overdue_total"] > 0
    first = services.purge.run()
    second = services.purge.run()
    assert first["capture_images"] == 1
    assert first["reference_templates"] == 2  # the two citizens'; the foreign national's stays
    assert sum(second.values()) == 0  # idempotent
    assert kept_image(stranger.json()["capture_id"]) is None

    after = api.client.get(
        "/v1/privacy/report",
        params={"since": (clock.now - timedelta(days=1)).isoformat()},
        headers=api.headers("auditor"),
    ).json()
    assert after["overdue_total"] == 0
    assert after["held"]["capture_images"] == 0
    assert after["held"]["reference_templates"] == 1
    assert after["purges"]["runs"] == 2
    assert after["purges"]["deleted"]["capture_images"] == 1
    # The citizen's encounter (kept 14 days) remains; no capture record of a citizen does.
    assert after["held"]["encounter_records"] >= 1


def test_no_personal_or_biometric_data_reaches_the_logs(
    world: tuple[Api, SqlServices], lfw_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api, _ = world
    caplog.set_level(logging.DEBUG)
    flight_id = board_mixed_flight(api, lfw_dir)
    photos = [lfw_image(lfw_dir, "Colin_Powell", 2), lfw_image(lfw_dir, "Donald_Rumsfeld", 1)]
    for photo in photos:
        capture(api, flight_id, photo)
    api.client.put(
        f"/v1/flights/{flight_id}/manifest",
        json=[{**manifest_row("C0000001", "POWELL"), "date_of_birth": "garbage"}],
        headers=api.headers("officer"),
    )
    # The test's own HTTP client (httpx) logs the URLs it calls; that is the caller's log,
    # not the service's, and is left out. Everything the service side logs is searched.
    text = "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}"
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    )
    assert "sqlalchemy.engine" in text  # DEBUG logging captured the SQL of the whole run
    assert "entryexit.services.captures" in text
    import base64

    for secret in ("POWELL", "SHARON", "URIBE", "C0000001", "F0000002", "K0000003", "1970-01-01"):
        assert secret not in text
    for photo in photos:
        data = photo.read_bytes()
        assert base64.b64encode(data[100:160]).decode()[:40] not in text
        assert data[100:140].hex() not in text


def test_sql_parameters_never_reach_the_logs(
    world: tuple[Api, SqlServices], lfw_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator turns the database engine's logging up to DEBUG (what ``echo`` does) to
    chase a problem. The statements are logged; what they carry is not: neither names, birth
    dates, document numbers nor template or photo bytes, and not what stands for them in the
    rows either (a document's keyed digest, which confirms a number to whoever holds the
    index key; sealed templates and details). Without ``hide_parameters`` each digest and
    sealed value would be printed with its INSERT."""
    api, services = world
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    flight_id = board_mixed_flight(api, lfw_dir)  # a manifest upload and three enrolments
    photo = lfw_image(lfw_dir, "Colin_Powell", 2)
    assert capture(api, flight_id, photo).json()["decision"] == "match"
    text = "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}"
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    )
    # The control: the engine logged the statements that wrote these very values.
    for statement in ("INSERT INTO documents", "INSERT INTO reference_templates"):
        assert statement in text
    assert "INSERT INTO captures" in text
    numbers = ("C0000001", "F0000002", "K0000003")
    sealer = Sealer(FileKeyProvider(services.settings.resolved_key_dir))
    states = (HOME_STATE, FOREIGN_STATE, HOME_STATE)
    digests = [
        sealer.digest(DocumentKey(state, number))
        for state, number in zip(states, numbers, strict=True)
    ]
    with services.uow.engine.connect() as connection:
        sealed = [
            bytes(value)
            for query in (
                "SELECT vector FROM reference_templates",
                "SELECT personal FROM documents",
            )
            for value in connection.execute(sql_text(query)).scalars()
        ]
    assert len(sealed) == 6  # three templates, three documents
    for secret in (*numbers, "POWELL", "SHARON", "URIBE", "1970-01-01", *digests):
        assert secret not in text
    for value in sealed:
        assert value[:24].hex() not in text
        assert repr(value[:24])[2:-1] not in text
    data = photo.read_bytes()
    assert repr(data[100:124])[2:-1] not in text
    assert data[100:124].hex() not in text


def test_an_opt_out_can_name_the_document_by_its_mrz(
    world: tuple[Api, SqlServices], lfw_dir: Path
) -> None:
    api, _ = world
    flight = api.create_flight()
    row = manifest_row("L898902C3", "ERIKSSON", "citizen")
    api.client.put(
        f"/v1/flights/{flight['id']}/manifest", json=[row], headers=api.headers("officer")
    )
    mrz = [
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
        "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
    ]
    response = api.client.post(
        f"/v1/flights/{flight['id']}/opt-outs",
        json={"mrz": mrz, "gate": "B1"},
        headers=api.headers("gate"),
    )
    assert response.status_code == 201, response.text
    missing = api.client.post(
        f"/v1/flights/{flight['id']}/opt-outs", json={"gate": "B1"}, headers=api.headers("gate")
    )
    assert missing.status_code == 422


def test_the_live_fairness_report_counts_outcomes_by_sex(
    world: tuple[Api, SqlServices], lfw_dir: Path
) -> None:
    api, _ = world
    flight_id = board_mixed_flight(api, lfw_dir)  # 3 male travelers on the manifest rows
    capture(api, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2))
    report = api.client.get("/v1/reports/fairness", headers=api.headers("auditor"))
    assert report.status_code == 200, report.text
    groups = report.json()["groups"]
    assert groups["M"]["travelers_with_photo"] == 3
    assert groups["M"]["biometric"] == 1
    assert groups["M"]["not_processed"] == 2
    assert groups["M"]["biometric_match_rate"] == pytest.approx(1 / 3)
    assert "POWELL" not in report.text
    assert api.client.get("/v1/reports/fairness", headers=api.headers("gate")).status_code == 403


def test_a_gate_learns_nothing_from_why_an_opt_out_was_not_recorded(
    world: tuple[Api, SqlServices], lfw_dir: Path
) -> None:
    api, _ = world
    flight_id = board_mixed_flight(api, lfw_dir)

    def opt_out(number: str, role: str) -> tuple[int, dict[str, object]]:
        response = api.client.post(
            f"/v1/flights/{flight_id}/opt-outs",
            json={"issuing_state": "UTO", "number": number, "gate": "B7"},
            headers=api.headers(role),
        )
        return response.status_code, response.json()

    assert opt_out("C0000001", "gate")[0] == 201
    processed = opt_out("C0000001", "gate")  # already processed
    stranger = opt_out("Z9999999", "gate")  # not on the manifest
    assert processed == stranger
    assert processed[0] == 409
    assert processed[1]["type"] == "urn:entryexit:problem:opt-out-not-recorded"
    # Officers are told which it was.
    assert opt_out("C0000001", "officer")[0] == 409
    assert opt_out("C0000001", "officer")[1]["detail"] == (
        "this traveler has already been processed on this flight"
    )
    assert opt_out("Z9999999", "officer")[0] == 404


def test_a_supervisor_erases_a_traveler_and_nothing_personal_is_logged_or_audited(
    world: tuple[Api, SqlServices], lfw_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api, services = world
    api.keys["supervisor"] = services.keys.create(Role.SUPERVISOR, "shift lead")[1]
    flight_id = board_mixed_flight(api, lfw_dir)
    assert capture(api, flight_id, lfw_image(lfw_dir, "Ariel_Sharon", 2)).json()["decision"] == (
        "match"
    )
    body = {"issuing_state": FOREIGN_STATE, "number": "F0000002", "reason": "court_order"}
    for role in ("officer", "auditor", "gate"):
        refused = api.client.post("/v1/erasures", json=body, headers=api.headers(role))
        assert refused.status_code == 403, role
    free_text = {**body, "reason": "Ariel Sharon asked"}
    assert (
        api.client.post("/v1/erasures", json=free_text, headers=api.headers("supervisor"))
    ).status_code == 422

    erased = api.client.post("/v1/erasures", json=body, headers=api.headers("supervisor"))
    assert erased.status_code == 201, erased.text
    report = erased.json()
    assert report["reason"] == "court_order"
    assert report["galleries_rebuilt"] == 1
    for kind in ("traveler_documents", "reference_templates", "manifest_entries", "data_keys"):
        assert report["erased"][kind] == 1, kind
    assert report["erased"]["encounter_records"] == 1
    # Out of the staged gallery at once: the same face now matches no one.
    again = capture(api, flight_id, lfw_image(lfw_dir, "Ariel_Sharon", 3))
    assert again.json()["decision"] == "no_match"
    missing = api.client.post("/v1/erasures", json=body, headers=api.headers("supervisor"))
    assert missing.status_code == 404
    manifest = api.client.get(
        f"/v1/flights/{flight_id}/manifest", headers=api.headers("officer")
    ).json()
    assert "SHARON" not in str(manifest)

    events = api.client.get(
        "/v1/audit/events",
        params={"action": "traveler erase"},
        headers=api.headers("auditor"),
    ).json()
    (event,) = [e for e in events if e["action"] == "traveler erase"]
    assert event["resource_id"] == report["traveler_id"]
    assert "F0000002" not in str(event)
    assert "SHARON" not in str(event).upper()
    privacy = api.client.get("/v1/privacy/report", headers=api.headers("auditor")).json()
    assert privacy["erasures"] == 1
    # The test's own HTTP client logs the URLs it calls (an enrolment names the document).
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    )
    assert "F0000002" not in logged
    assert "SHARON" not in logged.upper()


def test_the_privacy_report_as_of_a_date_counts_what_that_date_would_purge(
    world: tuple[Api, SqlServices], lfw_dir: Path, clock: MovableClock
) -> None:
    api, _ = world
    board_mixed_flight(api, lfw_dir)
    now = api.client.get("/v1/privacy/report", headers=api.headers("auditor")).json()
    assert now["overdue"]["traveler_documents"] == 0
    later = (clock.now + timedelta(days=400)).isoformat()
    then = api.client.get(
        "/v1/privacy/report", params={"as_of": later}, headers=api.headers("auditor")
    ).json()
    assert then["as_of"].startswith(later[:16])
    held = then["held"]["reference_templates"]
    assert held >= 2
    assert then["overdue"]["reference_templates"] == held
    assert then["overdue"]["manifest_entries"] == 2  # the citizens'; 5 years for the other
