"""Fingerprints through the API with the real engine and real FVC2002 prints: an officer
enrols a non-citizen's index fingers and confirms them 1:1; the policy keeps citizens' prints
out; a gate can do neither; bad prints are clear 4xx problems and store nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from entryexit.adapters.storage.tables import DocumentRow, FingerprintTemplateRow, ManifestEntryRow
from entryexit.biometrics.fingerprints import FingerprintTemplate, TemplateFormatError
from entryexit.domain.access import Role
from entryexit.services.fingerprints import FingerprintSlots
from tests.conftest import REPO_ROOT, lfw_image
from tests.integration.api.conftest import (
    FOREIGN_STATE,
    HOME_STATE,
    Api,
    capture,
    enrol,
    manifest_row,
)
from tests.integration.api.test_errors_and_roles import assert_problem

FVC = REPO_ROOT.parent / "shared" / "data" / "fvc2002-b"
DB = "DB1_B"  # 500 ppi optical sensor


@pytest.fixture(scope="module")
def fvc() -> Path:
    if not (FVC / DB / "101_1.tif").is_file():
        pytest.skip(f"fvc2002-b data set not found at {FVC} (it lives beside the project)")
    return FVC


def prints(fvc: Path, *names: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [
        ("prints", (f"{n}.tif", (fvc / DB / f"{n}.tif").read_bytes(), "image/tiff")) for n in names
    ]


def send(
    api: Api,
    path: str,
    files: list[tuple[str, tuple[str, bytes, str]]],
    fingers: list[int],
    number: str = "FP1",
    role: str = "officer",
    **extra: str,
) -> httpx.Response:
    data: dict[str, object] = {
        "issuing_state": FOREIGN_STATE,
        "number": number,
        "fingers": [str(f) for f in fingers],
        "ppi": "500",
        **extra,
    }
    response: httpx.Response = api.client.post(
        path, files=files, data=data, headers=api.headers(role)
    )
    return response


def on_a_manifest(api: Api, *rows: dict[str, str]) -> None:
    flight = api.create_flight()
    response = api.client.put(
        f"/v1/flights/{flight['id']}/manifest", json=list(rows), headers=api.headers("admin")
    )
    assert response.status_code == 200, response.text


def stored_prints(api: Api) -> int:
    with api.services.uow.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(FingerprintTemplateRow)) or 0)


def test_an_officer_enrols_and_confirms_a_travelers_prints(api: Api, fvc: Path) -> None:
    on_a_manifest(api, manifest_row("FP1", "VISITOR"))
    enrolled = send(api, "/v1/documents/fingerprints", prints(fvc, "101_1", "102_1"), [2, 7])
    assert enrolled.status_code == 201, enrolled.text
    body = enrolled.json()
    assert [f["finger"] for f in body["fingers"]] == [2, 7]
    assert body["engine"] == "nbis-mcc-v1"
    assert stored_prints(api) == 2
    # What a copy of the database holds is sealed: no template, no minutiae a matcher reads.
    with api.services.uow.engine.connect() as connection:
        raw = list(connection.scalars(select(FingerprintTemplateRow.template)))
    for blob in raw:
        with pytest.raises(TemplateFormatError):
            FingerprintTemplate.from_bytes(blob)

    # The same fingers, other impressions: a match; a stranger's fingers: no match.
    same = send(api, "/v1/fingerprint-verifications", prints(fvc, "101_3", "102_3"), [2, 7])
    assert same.status_code == 200, same.text
    result = same.json()
    assert result["decision"] == "match"
    assert result["fused_score"] >= result["threshold"]
    assert [f["finger"] for f in result["fingers"]] == [2, 7]
    other = send(api, "/v1/fingerprint-verifications", prints(fvc, "105_3", "106_3"), [2, 7])
    assert other.json()["decision"] == "no_match"
    # One finger is enough to compare; a finger never enrolled is not compared.
    one = send(api, "/v1/fingerprint-verifications", prints(fvc, "101_4", "103_4"), [2, 3])
    assert [f["finger"] for f in one.json()["fingers"]] == [2]
    assert one.json()["decision"] == "match"
    # Both steps are in the audit trail, without the document number.
    events = [e.entry for e in api.services.audit.events(limit=100)]
    actions = [e.action for e in events]
    assert "fingerprint enrol" in actions
    assert "fingerprint verify" in actions
    assert "FP1" not in repr(events)


def test_the_policy_takes_no_prints_from_citizens_and_a_gate_can_do_neither(
    api: Api, fvc: Path
) -> None:
    citizen = manifest_row("FP2", "CITIZEN", "citizen")
    on_a_manifest(api, citizen, manifest_row("FP1", "VISITOR"))
    refused = send(
        api,
        "/v1/documents/fingerprints",
        prints(fvc, "101_1"),
        [2],
        number="FP2",
        issuing_state=HOME_STATE,
    )
    assert_problem(refused, 409, "conflict")
    for path in ("/v1/documents/fingerprints", "/v1/fingerprint-verifications"):
        gate = send(api, path, prints(fvc, "101_1"), [2], role="gate")
        assert_problem(gate, 403, "forbidden")
    # A document on no manifest: nothing to decide who it is.
    unknown = send(api, "/v1/documents/fingerprints", prints(fvc, "101_1"), [2], number="NOPE1")
    assert_problem(unknown, 404, "not-found")
    assert stored_prints(api) == 0


def test_a_carrier_cannot_declare_a_citizen_foreign_to_have_their_prints_taken(
    api: Api, fvc: Path
) -> None:
    """The attack (probe F1): a key with manifest write for the flight (an airline desk's
    officer key) re-sends the manifest declaring a home-state passport holder a foreign
    national, then an officer enrols the citizen's prints (kept five years). The manifest is
    refused whole, nothing changes, and the enrolment is refused."""
    api.keys["officer_ee"] = api.services.keys.create(Role.OFFICER, "EE desk", carrier="EE")[1]
    flight = api.create_flight(carrier="EE", role="officer_ee")["id"]
    citizen = manifest_row("C12345678", "CITIZEN", "citizen")
    rows = [manifest_row("FP1", "VISITOR"), citizen]
    url = f"/v1/flights/{flight}/manifest"
    sent = api.client.put(url, json=rows, headers=api.headers("officer_ee"))
    assert sent.status_code == 200, sent.text

    forged = [rows[0], {**citizen, "citizenship_class": "foreign_national"}]
    refused = api.client.put(url, json=forged, headers=api.headers("officer_ee"))
    assert_problem(refused, 422, "invalid-input")
    assert "traveler 2" in refused.json()["detail"]
    assert "citizenship_class" in refused.json()["detail"]
    # The CSV form of the same forgery is refused the same way.
    header = ",".join(citizen)
    lines = [header, *(",".join(row.values()) for row in forged)]
    as_csv = api.client.put(
        url,
        content=("\n".join(lines) + "\n").encode(),
        headers={**api.headers("officer_ee"), "content-type": "text/csv"},
    )
    assert_problem(as_csv, 422, "invalid-input")
    assert "row 3" in as_csv.json()["detail"]
    listed = api.client.get(url, headers=api.headers("admin")).json()
    assert {t["document"]["number"]: t["citizenship_class"] for t in listed} == {
        "FP1": "foreign_national",
        "C12345678": "citizen",
    }

    enrolment = send(
        api,
        "/v1/documents/fingerprints",
        prints(fvc, "101_1"),
        [2],
        number="C12345678",
        issuing_state=HOME_STATE,
    )
    assert_problem(enrolment, 409, "conflict")
    assert stored_prints(api) == 0


def test_a_citizen_stored_with_a_wrong_class_is_still_refused_prints(api: Api, fvc: Path) -> None:
    """Defence in depth: a home-state passport holder whose stored class says foreign (written
    before manifests were checked, or straight into the database) gives no prints; the
    traveler beside them, a foreign national on a foreign passport, still does."""
    on_a_manifest(api, manifest_row("C12345678", "CITIZEN", "citizen"), manifest_row("FP1", "V"))
    with api.services.uow.engine.begin() as connection:
        changed = connection.execute(
            update(DocumentRow)
            .where(DocumentRow.issuing_state == HOME_STATE)
            .values(citizenship_class="foreign_national")
        )
        assert changed.rowcount == 1
        connection.execute(
            update(ManifestEntryRow)
            .where(ManifestEntryRow.citizenship_class == "citizen")
            .values(citizenship_class="foreign_national")
        )
    enrolment = send(
        api,
        "/v1/documents/fingerprints",
        prints(fvc, "101_1"),
        [2],
        number="C12345678",
        issuing_state=HOME_STATE,
    )
    assert_problem(enrolment, 409, "conflict")
    assert stored_prints(api) == 0
    visitor = send(api, "/v1/documents/fingerprints", prints(fvc, "101_1"), [2])
    assert visitor.status_code == 201, visitor.text


def test_bad_prints_are_clear_problems_and_store_nothing(api: Api, fvc: Path) -> None:
    on_a_manifest(api, manifest_row("FP1", "VISITOR"))
    cases = [
        (prints(fvc, "101_1"), [4], {}, "not one the policy takes"),
        (prints(fvc, "101_1"), [11], {}, "finger position"),
        (prints(fvc, "101_1", "102_1"), [2], {}, "one position a print"),
        ([("prints", ("x.png", b"not an image", "image/png"))], [2], {}, "image"),
        (prints(fvc, "101_1"), [2], {"ppi": "150"}, "ppi"),
        (
            [("prints", ("r.iso", b"FMR\x00 20\x00\x00\x00", "application/octet-stream"))],
            [2],
            {"format": "iso19794-2"},
            "",
        ),
    ]
    for files, fingers, extra, words in cases:
        response = send(api, "/v1/documents/fingerprints", files, fingers, **extra)
        assert response.status_code in (413, 422), (words, response.text)
        assert words in response.json()["detail"], response.json()
    # A good finger next to a bad one: the whole request is refused.
    mixed = [*prints(fvc, "101_1"), ("prints", ("x.png", b"junk", "image/png"))]
    assert send(api, "/v1/documents/fingerprints", mixed, [2, 7]).status_code == 422
    assert stored_prints(api) == 0


def test_iso_records_enrol_and_verify(api: Api, fvc: Path) -> None:
    """Scanner SDKs send ISO/IEC 19794-2 records (these name no finger: the stated one is
    taken)."""
    records = fvc / "iso19794-2" / DB

    def record(name: str) -> list[tuple[str, tuple[str, bytes, str]]]:
        blob = (records / f"{name}.iso").read_bytes()
        return [("prints", (f"{name}.iso", blob, "application/octet-stream"))]

    on_a_manifest(api, manifest_row("FP1", "VISITOR"))
    enrolled = send(api, "/v1/documents/fingerprints", record("101_1"), [2], format="iso19794-2")
    assert enrolled.status_code == 201, enrolled.text
    check = send(api, "/v1/fingerprint-verifications", record("101_2"), [2], format="iso19794-2")
    assert check.json()["decision"] == "match", check.text
    stranger = send(api, "/v1/fingerprint-verifications", record("107_2"), [2], format="iso19794-2")
    assert stranger.json()["decision"] == "no_match", stranger.text


def test_a_traveler_the_camera_fails_is_confirmed_by_an_officers_fingerprint_check(
    api: Api, fvc: Path, lfw_dir: Path
) -> None:
    """Boarding end to end: a visitor whose enrolled photo is someone else's (the camera
    cannot match them) goes to the officer, who finds them among the flight's prints without
    the document, then confirms them with it: one encounter, and they leave the outstanding
    list."""
    flight = api.create_flight()
    rows = [manifest_row("FP1", "VISITOR"), manifest_row("FP2", "OTHER")]
    assert (
        api.client.put(
            f"/v1/flights/{flight['id']}/manifest", json=rows, headers=api.headers("admin")
        ).status_code
        == 200
    )
    enrol(api, "FP1", lfw_image(lfw_dir, "Colin_Powell", 1))  # the holdings' wrong photo
    enrol(api, "FP2", lfw_image(lfw_dir, "Ariel_Sharon", 1))
    for number, names in (("FP1", ("101_1", "102_1")), ("FP2", ("103_1", "104_1"))):
        response = send(api, "/v1/documents/fingerprints", prints(fvc, *names), [2, 7], number)
        assert response.status_code == 201, response.text
    staged = api.client.post(f"/v1/flights/{flight['id']}/gallery", headers=api.headers("officer"))
    assert staged.status_code == 200, staged.text
    live = capture(api, flight["id"], lfw_image(lfw_dir, "Donald_Rumsfeld", 1))
    assert live.status_code == 200, live.text
    assert live.json()["decision"] != "match"

    search = api.client.post(
        f"/v1/flights/{flight['id']}/fingerprint-searches",
        files=prints(fvc, "101_5", "102_5"),
        data={"fingers": ["2", "7"], "ppi": "500"},
        headers=api.headers("officer"),
    )
    assert search.status_code == 200, search.text
    best = search.json()["candidates"][0]
    assert best["meets_threshold"] is True
    confirmed = send(
        api,
        "/v1/fingerprint-verifications",
        prints(fvc, "101_5", "102_5"),
        [2, 7],
        "FP1",
        flight_id=flight["id"],
    )
    body = confirmed.json()
    assert (body["decision"], body["traveler_ref"]) == ("match", best["traveler_ref"])
    assert body["encounter_id"]
    outstanding = api.client.get(
        f"/v1/flights/{flight['id']}/outstanding", headers=api.headers("officer")
    ).json()
    assert "FP1" not in str(outstanding)
    assert "FP2" in str(outstanding)
    # The carrier's own desk sees that the traveler was processed, never that prints were
    # taken (it would tell the traveler's class) nor any score or engine.
    api.keys["officer_ee"] = api.services.keys.create(Role.OFFICER, "EE desk", carrier="EE")[1]
    seen = api.client.get(
        f"/v1/flights/{flight['id']}/encounters", headers=api.headers("officer_ee")
    ).json()
    assert [e["traveler_ref"] for e in seen] == [best["traveler_ref"]]
    assert "fingerprint" not in str(seen)
    assert "mcc" not in str(seen)
    # The shape every officer-side step has for a carrier (a document check looks the same).
    shown = {k: seen[0][k] for k in ("method", "gate", "device", "score", "model")}
    assert shown == {
        "method": "manual_document_check",
        "gate": "agency",
        "device": "agency",
        "score": None,
        "model": None,
    }
    agency = api.client.get(
        f"/v1/flights/{flight['id']}/encounters", headers=api.headers("officer")
    ).json()
    assert agency[0]["gate"] == "fingerprint"
    assert agency[0]["score"] is not None


def test_watchlist_prints_raise_an_alert_where_prints_are_submitted(api: Api, fvc: Path) -> None:
    """The list's prints are kept by the watchlist manager; the listed person presenting a
    visitor's document at the desk: their prints do not match the document's, and the list
    is hit: an alert for an officer to disposition, and nothing else changes."""
    flight = api.create_flight()
    response = api.client.put(
        f"/v1/flights/{flight['id']}/manifest",
        json=[manifest_row("FP1", "VISITOR")],
        headers=api.headers("admin"),
    )
    assert response.status_code == 200, response.text
    assert send(api, "/v1/documents/fingerprints", prints(fvc, "101_1"), [2]).status_code == 201
    manager = api.services.keys.create(Role.WATCHLIST_MANAGER, "list")[1]
    listing = {"fingers": ["2", "7"], "ppi": "500", "category": "wanted", "reason_code": "W1"}
    for refused in ("officer", "gate"):
        denied = api.client.post(
            "/v1/watchlist/fingerprints",
            files=prints(fvc, "105_1", "106_1"),
            data=listing,
            headers=api.headers(refused),
        )
        assert_problem(denied, 403, "forbidden")
    added = api.client.post(
        "/v1/watchlist/fingerprints",
        files=prints(fvc, "105_1", "106_1"),
        data=listing,
        headers={"X-API-Key": manager},
    )
    assert added.status_code == 201, added.text
    entry_id = added.json()["entry_id"]

    checked = send(
        api,
        "/v1/fingerprint-verifications",
        prints(fvc, "105_4", "106_4"),
        [2, 7],
        "FP1",
        flight_id=flight["id"],
    )
    body = checked.json()
    assert (body["decision"], body["alerts"], body["encounter_id"]) == ("no_match", 1, None)
    (alert,) = api.client.get("/v1/alerts", headers=api.headers("officer")).json()
    assert (alert["source"], alert["watchlist_entry_id"]) == ("fingerprint", entry_id)
    # The prints were not the document holder's (no_match): the alert names no traveler, or
    # anyone's prints presented with an innocent traveler's passport would tie him to the list.
    assert alert["traveler_id"] is None
    # The traveler's own prints do not hit the list.
    own = send(
        api,
        "/v1/fingerprint-verifications",
        prints(fvc, "101_4"),
        [2],
        "FP1",
        flight_id=flight["id"],
    )
    assert (own.json()["decision"], own.json()["alerts"]) == ("match", 0)
    disposed = api.client.post(
        f"/v1/alerts/{alert['id']}/disposition",
        json={"disposition": "dismissed_different_person", "reason": "checked at the desk"},
        headers=api.headers("officer"),
    )
    assert disposed.status_code == 200, disposed.text


def test_an_officer_cannot_silently_replace_enrolled_prints(api: Api, fvc: Path) -> None:
    """An officer re-enrolling a finger with someone else's print would make the impostor
    match and the holder fail: refused, nothing changed; a supervisor may, with a reason,
    and the audit log says it was a re-enrolment."""
    on_a_manifest(api, manifest_row("FP1", "VISITOR"))
    api.keys["supervisor"] = api.services.keys.create(Role.SUPERVISOR, "shift")[1]
    assert send(api, "/v1/documents/fingerprints", prints(fvc, "101_1"), [2]).status_code == 201
    swapped = send(api, "/v1/documents/fingerprints", prints(fvc, "106_1"), [2])
    assert_problem(swapped, 409, "conflict")
    holder = send(api, "/v1/fingerprint-verifications", prints(fvc, "101_4"), [2])
    assert holder.json()["decision"] == "match"
    impostor = send(api, "/v1/fingerprint-verifications", prints(fvc, "106_4"), [2])
    assert impostor.json()["decision"] == "no_match"

    unexplained = send(
        api, "/v1/documents/fingerprints", prints(fvc, "101_2"), [2], role="supervisor"
    )
    assert unexplained.status_code == 422, unexplained.text
    replaced = send(
        api,
        "/v1/documents/fingerprints",
        prints(fvc, "101_2"),
        [2],
        role="supervisor",
        reason="poor_quality",
    )
    assert replaced.status_code == 201, replaced.text
    assert stored_prints(api) == 1
    events = api.client.get("/v1/audit/events?limit=1000", headers=api.headers("auditor")).json()
    actions = [e["action"] for e in events]
    assert actions.count("fingerprint enrol") == 1
    assert actions.count("fingerprint re-enrol") == 1


def test_prints_of_a_traveler_shown_to_be_a_citizen_are_deleted_and_never_compared(
    api: Api, fvc: Path
) -> None:
    """Probe F1 part 3, through the API on the real engine: prints enrolled while the stored
    class said foreign national are refused at the 1:1 and left out of a search once it says
    citizen (data from before the rule), and a manifest that shows the traveler to be a
    citizen deletes them in its own transaction (audited with a count)."""
    flight = api.create_flight()
    url = f"/v1/flights/{flight['id']}/manifest"
    rows = [manifest_row("FP1", "VISITOR"), manifest_row("FP2", "OTHER")]
    assert api.client.put(url, json=rows, headers=api.headers("admin")).status_code == 200
    travelers = {}
    for number, name in (("FP1", "101_1"), ("FP2", "102_1")):
        enrolled = send(api, "/v1/documents/fingerprints", prints(fvc, name), [2], number)
        assert enrolled.status_code == 201, enrolled.text
        travelers[number] = enrolled.json()["traveler_ref"]
    with api.services.uow.engine.begin() as connection:
        connection.execute(
            update(DocumentRow)
            .where(DocumentRow.traveler_id == travelers["FP1"])
            .values(citizenship_class="citizen")
        )
    # The attacker holds the citizen's finger: no comparison answers with it.
    refused = send(api, "/v1/fingerprint-verifications", prints(fvc, "101_3"), [2], "FP1")
    assert_problem(refused, 409, "conflict")
    searched = api.client.post(
        f"/v1/flights/{flight['id']}/fingerprint-searches",
        files=prints(fvc, "101_3"),
        data={"fingers": ["2"], "ppi": "500"},
        headers=api.headers("officer"),
    )
    assert searched.status_code == 200, searched.text
    assert searched.json()["searched"] == 1
    assert travelers["FP1"] not in searched.text
    # The agency's manifest now states the class: the prints go with it.
    dual = {**rows[0], "citizenship_class": "citizen"}
    assert (
        api.client.put(url, json=[dual, rows[1]], headers=api.headers("admin")).status_code == 200
    )
    assert stored_prints(api) == 1
    (event,) = [
        e.entry
        for e in api.services.audit.events(limit=100)
        if e.entry.action == "fingerprint purge"
    ]
    assert (event.resource_id, event.details["templates"]) == (travelers["FP1"], 1)


def test_prints_beyond_the_fingerprint_slots_are_refused_503_with_retry_after(
    api: Api, fvc: Path
) -> None:
    on_a_manifest(api, manifest_row("FP1", "VISITOR"))
    assert send(api, "/v1/documents/fingerprints", prints(fvc, "101_1"), [2]).status_code == 201
    slots = FingerprintSlots(1, wait=0.05)
    api.services.fingerprints._slots = slots  # the setting, made small
    with slots.taken():  # another request's print holds the only slot
        busy = send(api, "/v1/fingerprint-verifications", prints(fvc, "101_3"), [2])
    assert_problem(busy, 503, "worker-unavailable")
    assert int(busy.headers["Retry-After"]) >= 1
    documented = api.client.get("/openapi.json").json()["paths"]["/v1/fingerprint-verifications"]
    assert "Retry-After" in documented["post"]["responses"]["503"]["headers"]
    again = send(api, "/v1/fingerprint-verifications", prints(fvc, "101_3"), [2])
    assert again.json()["decision"] == "match"
