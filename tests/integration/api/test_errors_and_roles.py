"""Every documented error as RFC 9457 problem details, and every endpoint with every role."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from entryexit.api.permissions import ENDPOINT_PERMISSIONS, PUBLIC
from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from entryexit.domain.access import ROLE_PERMISSIONS, Permission, Role
from tests.conftest import lfw_image
from tests.integration.api.conftest import (
    FOREIGN_STATE,
    Api,
    build_api,
    capture,
    enrol,
    manifest_row,
)

pytestmark = [pytest.mark.models]
PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"urn:entryexit:problem:{code}"
    assert body["status"] == status
    assert body["detail"]


def test_unknown_flight_is_404(api: Api) -> None:
    assert_problem(
        api.client.get("/v1/flights/nope", headers=api.headers("officer")), 404, "not-found"
    )
    assert_problem(capture(api, "nope", b"x", role="officer"), 404, "not-found")


def test_capture_before_staging_is_409(api: Api, lfw_dir: Path) -> None:
    flight = api.create_flight()
    response = capture(api, flight["id"], lfw_image(lfw_dir, "Colin_Powell", 1))
    assert_problem(response, 409, "conflict")


@pytest.mark.parametrize("data", [b"", b"GIF89a not really", b"\xff\xd8\xff\xe0truncated"])
def test_undecodable_images_are_422(api: Api, data: bytes) -> None:
    flight = api.create_flight()
    api.client.post(f"/v1/flights/{flight['id']}/gallery", headers=api.headers("officer"))
    assert_problem(capture(api, flight["id"], data), 422, "image-undecodable")
    enrol = api.client.post(
        "/v1/documents/UTO/A1/photos",
        files={"photo": ("p.jpg", data, "image/jpeg")},
        headers=api.headers("officer"),
    )
    assert_problem(enrol, 422, "image-undecodable")


def test_oversized_bodies_are_413(api: Api) -> None:
    flight = api.create_flight()
    limit = api.services.settings.max_request_bytes
    response = capture(api, flight["id"], b"\xff" * (limit + 1))
    assert_problem(response, 413, "payload-too-large")


def test_missing_malformed_and_unknown_keys_are_401(api: Api) -> None:
    for headers in ({}, {"X-API-Key": "garbage"}, {"X-API-Key": "eex_0123456789ab_wrong"}):
        response = api.client.get("/v1/flights/x", headers=headers)
        assert_problem(response, 401, "unauthenticated")
        assert "X-API-Key" in response.headers["www-authenticate"]


def test_forbidden_actions_are_403(api: Api, lfw_dir: Path) -> None:
    response = api.client.post("/v1/flights", json={}, headers=api.headers("auditor"))
    assert_problem(response, 403, "forbidden")
    flight = api.create_flight(carrier="EE")
    api.client.post(f"/v1/flights/{flight['id']}/gallery", headers=api.headers("officer"))
    other_carrier = capture(
        api, flight["id"], lfw_image(lfw_dir, "Colin_Powell", 1), role="gate_other_carrier"
    )
    assert_problem(other_carrier, 403, "forbidden")


def test_an_invalid_manifest_is_422_and_changes_nothing(api: Api) -> None:
    flight = api.create_flight()
    url = f"/v1/flights/{flight['id']}/manifest"
    good = api.client.put(url, json=[manifest_row("A1", "ONE")], headers=api.headers("officer"))
    assert good.status_code == 200
    bad_row = {**manifest_row("B2", "TWO"), "date_of_birth": "yesterday"}
    bad = api.client.put(
        url, json=[manifest_row("C3", "THREE"), bad_row], headers=api.headers("officer")
    )
    assert_problem(bad, 422, "invalid-input")
    assert "traveler 2" in bad.json()["detail"]
    current = api.client.get(url, headers=api.headers("officer")).json()
    assert [t["document"]["number"] for t in current] == ["A1"]
    wrong_type = api.client.put(
        url,
        content=b"<xml/>",
        headers={**api.headers("officer"), "content-type": "application/xml"},
    )
    assert_problem(wrong_type, 422, "invalid-input")


def test_csv_manifests_are_accepted(api: Api) -> None:
    flight = api.create_flight()
    row = manifest_row("A1", "ONE")
    csv = ",".join(row) + "\n" + ",".join(row.values()) + "\n"
    response = api.client.put(
        f"/v1/flights/{flight['id']}/manifest",
        content=csv.encode(),
        headers={**api.headers("officer"), "content-type": "text/csv"},
    )
    assert response.json() == {
        "added": 1,
        "removed": 0,
        "updated": 0,
        "total": 1,
        "flagged": [],
        "details_kept": 0,
        "conflicts": 0,
    }


def test_invalid_json_fields_are_422_problems(api: Api) -> None:
    response = api.client.post("/v1/flights", json={"carrier": "E"}, headers=api.headers("admin"))
    assert_problem(response, 422, "invalid-input")
    assert response.json()["errors"]


def test_every_endpoint_is_in_the_permission_table(api: Api) -> None:
    paths = api.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    routes = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert routes == set(ENDPOINT_PERMISSIONS)


def test_a_carrier_bound_key_acts_on_its_carriers_flights_only(api: Api) -> None:
    """The carrier dimension of the role matrix: an officer or auditor key bound to carrier
    ZZ gets 403 on every flight-scoped endpoint of an EE flight, and cannot create EE
    flights; on its own carrier's flights it works."""
    theirs = api.create_flight(carrier="EE")
    for role in (Role.OFFICER, Role.AUDITOR):
        api.keys[f"{role.value}_zz"] = api.services.keys.create(role, "desk", carrier="ZZ")[1]
    flight_scoped = [
        (method, path) for (method, path) in ENDPOINT_PERMISSIONS if "{flight_id}" in path
    ]
    assert flight_scoped
    for key in ("officer_zz", "auditor_zz"):
        for method, path in flight_scoped:
            response = api.client.request(
                method, path.format(flight_id=theirs["id"]), headers=api.headers(key)
            )
            assert response.status_code == 403, (key, method, path, response.status_code)
    assert api.create_flight(carrier="ZZ", role="officer_zz")["carrier"] == "ZZ"
    refused = api.client.post(
        "/v1/flights",
        json={
            "carrier": "EE",
            "number": "9",
            "scheduled_departure": "2030-01-01T10:00:00Z",
            "origin": "AAA",
            "destination": "BBB",
            "direction": "exit",
        },
        headers=api.headers("officer_zz"),
    )
    assert refused.status_code == 403


def request_arguments(method: str, path: str, photo: bytes) -> dict[str, object]:
    """A well-formed body for each endpoint, so that only the key decides the answer."""
    kwargs: dict[str, object] = {}
    if "fingerprint" in path:
        kwargs["files"] = {"prints": ("p.png", photo, "image/png")}
        kwargs["data"] = {
            "fingers": "2",
            "ppi": "500",
            "issuing_state": FOREIGN_STATE,
            "number": "A1",
            "category": "test",  # for the watchlist's prints
            "reason_code": "T1",
        }
    elif path.endswith("/photos") or path.endswith("/captures"):
        kwargs["files"] = {"photo": ("p.jpg", photo, "image/jpeg")}
        kwargs["data"] = {"gate": "G1", "device": "d"}
    elif path == "/v1/watchlist" and method == "POST":
        kwargs["files"] = {"photo": ("p.jpg", photo, "image/jpeg")}
        kwargs["data"] = {"category": "test", "reason_code": "T1"}
    elif path.endswith("/resolution"):
        kwargs["json"] = {"apply": "kept"}
    elif path.endswith("/disposition"):
        kwargs["json"] = {"disposition": "dismissed_other", "reason": "test"}
    elif path.startswith("/v1/admissions"):
        kwargs["json"] = {"admission_class": "B2"}
    elif path == "/v1/erasures":
        kwargs["json"] = {"issuing_state": "UTO", "number": "NONE", "reason": "court_order"}
    elif path == "/v1/reports/overstays":
        kwargs["params"] = {"as_of": "2030-01-01"}
    elif path.endswith("/manifest") and method == "PUT":
        kwargs["json"] = [manifest_row("A1", "ONE")]
    elif path == "/v1/verifications":
        kwargs["files"] = {
            "capture": ("c.jpg", photo, "image/jpeg"),
            "document_photo": ("d.jpg", photo, "image/jpeg"),
        }
    elif path == "/v1/flights":
        kwargs["json"] = {
            "carrier": "EE",
            "number": "1",
            "scheduled_departure": "2030-01-01T00:00:00Z",
            "origin": "AAA",
            "destination": "BBB",
            "direction": "entry",
        }
    return kwargs


def test_every_endpoint_with_every_role(api: Api, lfw_dir: Path) -> None:
    flight = api.create_flight(carrier="EE")
    unknown = "00000000-0000-0000-0000-000000000000"
    values = {
        "flight_id": flight["id"],
        "issuing_state": FOREIGN_STATE,
        "number": "A1",
        "traveler_id": unknown,
        "admission_id": unknown,
        "entry_id": unknown,
        "alert_id": unknown,
        "conflict_id": unknown,
    }
    photo = lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes()
    api.keys["supervisor"] = api.services.keys.create(Role.SUPERVISOR, "shift lead")[1]
    api.keys["watchlist_manager"] = api.services.keys.create(Role.WATCHLIST_MANAGER, "list")[1]
    api.keys["monitor"] = api.services.keys.create(Role.MONITOR, "prometheus")[1]
    roles = {role.value: role for role in Role}
    for (method, path), needed in ENDPOINT_PERMISSIONS.items():
        url = path.format(**values)
        for key_name, role in roles.items():
            kwargs = request_arguments(method, path, photo)
            kwargs["headers"] = api.headers(key_name)
            response = api.client.request(method, url, **kwargs)  # type: ignore[arg-type]
            if needed == PUBLIC:
                assert response.status_code == 200, (method, path, key_name)
            elif isinstance(needed, Permission) and needed in ROLE_PERMISSIONS[role]:
                assert response.status_code not in (401, 403), (
                    method,
                    path,
                    key_name,
                    response.text,
                )
            else:
                assert response.status_code == 403, (method, path, key_name, response.text)


# Routes a carrier-bound key may call with another carrier's flight in hand: the policy in
# force names no carrier and no traveler. Every other API route refuses it (docs/access.md).
CARRIER_NEUTRAL_ROUTES = {("GET", "/v1/policies"), ("GET", "/v1/policies/current")}


def api_key_routes(api: Api) -> set[tuple[str, str]]:
    """Every operation the app serves, read off the app itself (its OpenAPI document is built
    from its routes; this FastAPI wraps included routers in private classes)."""
    paths = api.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


def test_a_carrier_bound_key_of_every_role_never_reaches_another_carriers_data(
    api: Api, lfw_dir: Path
) -> None:
    """The attacker holds a key bound to carrier ZZ, of any role, and walks every API route
    with another carrier's (EE) flight, traveler, admission, alert and document. Every route
    answers 403 except the policy in force; the EE traveler gets no new reference photo."""
    photo_path = lfw_image(lfw_dir, "Colin_Powell", 1)
    photo = photo_path.read_bytes()
    theirs = api.create_flight(carrier="EE")
    manifest = api.client.put(
        f"/v1/flights/{theirs['id']}/manifest",
        json=[manifest_row("A1", "ONE")],
        headers=api.headers("officer"),
    )
    assert manifest.status_code == 200, manifest.text
    traveler_ref = enrol(api, "A1", photo_path)
    unknown = "00000000-0000-0000-0000-000000000000"
    values = {
        "flight_id": theirs["id"],
        "issuing_state": FOREIGN_STATE,
        "number": "A1",
        "traveler_id": traveler_ref,
        "admission_id": unknown,
        "entry_id": unknown,
        "alert_id": unknown,
        "conflict_id": unknown,
    }
    served = api_key_routes(api)
    assert served == set(ENDPOINT_PERMISSIONS), served ^ set(ENDPOINT_PERMISSIONS)
    before = reference_template_count(api)
    for role in Role:
        key_name = f"{role.value}_bound_zz"
        api.keys[key_name] = api.services.keys.create(role, "carrier staff", carrier="ZZ")[1]
        for method, path in sorted(served):
            kwargs = request_arguments(method, path, photo)
            kwargs["headers"] = api.headers(key_name)
            if path == "/v1/verifications":
                kwargs["data"] = {
                    "flight_id": theirs["id"],
                    "issuing_state": FOREIGN_STATE,
                    "document_number": "A1",
                }
            response = api.client.request(method, path.format(**values), **kwargs)  # type: ignore[arg-type]
            needed = ENDPOINT_PERMISSIONS[(method, path)]
            if needed == PUBLIC:
                assert response.status_code == 200, (method, path, key_name)
            elif (method, path) in CARRIER_NEUTRAL_ROUTES and needed in ROLE_PERMISSIONS[role]:
                assert response.status_code == 200, (method, path, key_name, response.text)
            else:
                assert_problem(response, 403, "forbidden")
                assert "ONE" not in response.text
    assert reference_template_count(api) == before


def reference_template_count(api: Api) -> int:
    engine = api.services.uow.engine
    with engine.connect() as connection:
        return int(
            connection.execute(text("SELECT count(*) FROM reference_templates")).scalar_one()
        )


def test_gate_keys_are_rate_limited_and_failed_sign_ins_lock_out(
    engine: FaceEngine, tmp_path: Path, lfw_dir: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        gate_requests_per_second=0.5,
        gate_burst=2,
        sign_in_failures_before_block=3,
    )
    built, services = build_api(settings, engine)
    try:
        flight = built.create_flight()
        built.client.post(f"/v1/flights/{flight['id']}/gallery", headers=built.headers("officer"))
        photo = lfw_image(lfw_dir, "Colin_Powell", 1)
        statuses = [capture(built, flight["id"], photo).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = capture(built, flight["id"], photo)
        assert_problem(limited, 429, "rate-limited")
        assert int(limited.headers["retry-after"]) >= 1
        # Officers are not throttled by the gate limit.
        assert capture(built, flight["id"], photo, role="officer").status_code == 200

        for _ in range(3):
            bad = built.client.get("/v1/flights/x", headers={"X-API-Key": "eex_000000000000_x"})
            assert bad.status_code == 401
        locked = built.client.get("/v1/flights/x", headers={"X-API-Key": "eex_000000000000_y"})
        assert_problem(locked, 429, "rate-limited")
        # The address is locked out for unauthenticated requests only: a valid key from the
        # same address is limited by its own key's budget, not by its neighbours' failures.
        assert (
            built.client.get("/v1/flights/x", headers=built.headers("officer")).status_code == 404
        )
    finally:
        built.client.close()
        services.uow.engine.dispose()


def test_the_api_documentation_works_offline(api: Api) -> None:
    """/docs must not need a CDN: its scripts and styles come from this service."""
    page = api.client.get("/docs")
    assert page.status_code == 200
    html = page.text
    assert "cdn." not in html
    assert "unpkg" not in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/api-docs-assets/{asset}" in html
        assert api.client.get(f"/api-docs-assets/{asset}").status_code == 200
