"""Hostile HTTP: what used to be a 500 or a misleading 400 is a precise 4xx problem, and no
error echoes a huge value back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.api.conftest import Api

pytestmark = [pytest.mark.models]

BOUNDARY = "hostileboundary"


def _chunked_multipart(megabytes: int) -> Iterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="gate"\r\n\r\nG1\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="device"\r\n\r\nc1\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    chunk = b"\xff" * 2**20
    for _ in range(megabytes):
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def test_a_chunked_multipart_body_over_the_limit_is_413(api: Api) -> None:
    flight = api.create_flight()
    response = api.client.post(
        f"/v1/flights/{flight['id']}/captures",
        content=_chunked_multipart(50),  # no Content-Length: chunked
        headers={
            **api.headers("officer"),
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )
    assert response.status_code == 413, response.text
    assert response.json()["type"] == "urn:entryexit:problem:payload-too-large"


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
def test_a_time_outside_what_utc_can_hold_is_422(api: Api, when: str) -> None:
    response = api.client.post(
        "/v1/flights",
        json={
            "carrier": "EE",
            "number": "1",
            "scheduled_departure": when,
            "origin": "AAA",
            "destination": "BBB",
            "direction": "exit",
        },
        headers=api.headers("officer"),
    )
    assert response.status_code == 422, response.text
    report = api.client.get(
        "/v1/privacy/report", params={"since": when}, headers=api.headers("auditor")
    )
    assert report.status_code == 422, report.text


def test_huge_values_are_not_echoed_in_errors(api: Api) -> None:
    huge_id = "f" * 60_000  # httpx refuses URLs over 64 KiB; uvicorn answers 414 sooner
    for path in (
        f"/v1/flights/{huge_id}",
        f"/v1/flights/{huge_id}/manifest",
        f"/v1/flights/{huge_id}/encounters",
    ):
        response = api.client.get(path, headers=api.headers("officer"))
        assert response.status_code == 404, path
        assert len(response.content) < 1000, path
    huge_mrz = "P<UTO" + "A" * 2**20
    responses = [
        api.client.post(
            "/v1/documents/photos",
            files={"photo": ("p.jpg", b"\xff\xd8junk", "image/jpeg")},
            data={"mrz": huge_mrz},
            headers=api.headers("officer"),
        ),
        api.client.post(
            "/v1/verifications",
            files={"capture": ("c.jpg", b"\xff\xd8junk", "image/jpeg")},
            data={"mrz": huge_mrz},
            headers=api.headers("officer"),
        ),
        api.client.post(
            f"/v1/flights/{api.create_flight()['id']}/opt-outs",
            json={"mrz": huge_mrz, "gate": "G1"},
            headers=api.headers("officer"),
        ),
    ]
    for response in responses:
        assert 400 <= response.status_code < 500, response.text[:300]
        assert len(response.content) < 2000, response.text[:300]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/flights"),
        ("PUT", "/v1/flights/{flight}/manifest"),
        ("POST", "/v1/flights/{flight}/opt-outs"),
        ("PATCH", "/v1/admissions/nobody"),
        ("POST", "/v1/alerts/nobody/disposition"),
    ],
)
def test_json_nested_100000_deep_is_a_problem_not_a_500(api: Api, method: str, path: str) -> None:
    flight = api.create_flight()
    body = b"[" * 100_000 + b"]" * 100_000
    response = api.client.request(
        method,
        path.format(flight=flight["id"]),
        content=body,
        headers={**api.headers("admin"), "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 413, 422), response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"


def test_no_page_of_the_service_may_be_framed(api: Api) -> None:
    # Swagger UI is where people paste API keys: a hostile page framing it could overlay it.
    for path in ("/docs", "/redoc", "/openapi.json", "/healthz", "/v1/flights"):
        response = api.client.get(path)
        assert response.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert response.headers["x-content-type-options"] == "nosniff", path


def test_no_api_answer_may_be_stored_by_a_cache_on_the_way(api: Api) -> None:
    # A manifest answer holds names and document numbers; the key rides in X-API-Key, which a
    # shared cache does not treat as a credential, so without no-store it may keep the answer.
    flight = api.create_flight()
    for path in (f"/v1/flights/{flight['id']}/manifest", "/v1/flights", "/v1/no-such-thing"):
        response = api.client.get(path, headers=api.headers("officer"))
        assert response.headers["cache-control"] == "no-store", path
