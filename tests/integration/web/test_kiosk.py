"""The kiosk over the real app, database (SQLite and PostgreSQL) and face engine, without a
browser: pairing, the device session cookie, and the attacker's moves against them
(tests/e2e/test_kiosk_browser.py drives Chromium with a fake camera)."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from entryexit.api.metrics_registry import REGISTRY
from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from entryexit.domain.access import Principal, Role
from entryexit.domain.kiosk import KioskOptOutRequest
from entryexit.services.unit_of_work import UnitOfWork, in_transaction
from entryexit.web.app import create_service_app
from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, build_api, staged_flight
from tests.integration.web.test_console import PASSWORD, csrf, fresh, sign_in

pytestmark = [pytest.mark.models, pytest.mark.lfw]

USERS = {"olga": Role.OFFICER, "sam": Role.SUPERVISOR, "ada": Role.AUDITOR, "root": Role.ADMIN}
KIOSK = {"X-Requested-With": "kiosk"}
SUPERVISOR_PRINCIPAL = Principal("k-sup", "supervisor", Role.SUPERVISOR)
PAIRING_PAGE = 'id="pairing-code"'  # the page of a kiosk without a session


def site(settings: Settings, engine: FaceEngine) -> Api:
    built, services = build_api(settings, engine, create_service_app, "https://testserver")
    for name, role in USERS.items():
        services.accounts.create_user(name, PASSWORD, role)
    return built


@pytest.fixture
def kiosk_site(database_url: str, engine: FaceEngine, tmp_path: Path) -> Iterator[Api]:
    built = site(Settings(data_dir=tmp_path / "data", database_url=database_url), engine)
    with built.client:
        yield built
    built.services.uow.engine.dispose()


def start_pairing(client: TestClient) -> str:
    response = client.post("/kiosk/pairing", headers=KIOSK)
    assert response.status_code == 200, response.text
    code: str = response.json()["code"]
    return code


def console_post(client: TestClient, path: str, data: dict[str, str]) -> httpx.Response:
    token = csrf(client.get("/console/kiosks").text)
    response: httpx.Response = client.post(
        path, data={**data, "csrf_token": token}, follow_redirects=False
    )
    return response


def pair(console: TestClient, code: str, lane: str = "3", flight_id: str = "") -> int:
    response = console_post(
        console,
        "/console/kiosks/pair",
        {"code": code, "carrier": "EE", "port": "JFK", "lane": lane, "flight_id": flight_id},
    )
    return response.status_code


def paired_kiosk(api: Api, console: TestClient, flight_id: str = "") -> tuple[TestClient, str]:
    kiosk = fresh(api)
    assert pair(console, start_pairing(kiosk), flight_id=flight_id) == 303
    assert kiosk.get("/kiosk/pairing").json() == {"state": "paired"}
    page = kiosk.get("/kiosk").text
    found = re.search(r'data-csrf="([^"]+)"', page)
    assert found is not None
    return kiosk, found.group(1)


def test_a_kiosk_is_paired_from_the_console_and_holds_only_a_gate_session(
    kiosk_site: Api, lfw_dir: Path
) -> None:
    api = kiosk_site
    flight_id, _ = staged_flight(api, lfw_dir)
    kiosk = fresh(api)
    # A cross-site page cannot start a pairing (no custom header without CORS).
    assert kiosk.post("/kiosk/pairing").status_code == 403
    code = start_pairing(kiosk)
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    ticket = next(c for c in kiosk.cookies.jar if c.name == "entryexit_kiosk")
    assert ticket.secure
    assert ticket.has_nonstandard_attr("HttpOnly")
    assert ticket.get_nonstandard_attr("SameSite") in ("strict", "Strict")
    assert ticket.path == "/kiosk"
    assert kiosk.get("/kiosk/pairing").json() == {"state": "waiting"}
    page = kiosk.get("/kiosk")
    assert PAIRING_PAGE in page.text
    assert "camera=(self)" in page.headers["permissions-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]

    officer = fresh(api)
    sign_in(officer, "olga")
    assert pair(officer, code) == 403  # officers do not pair kiosks
    supervisor = fresh(api)
    sign_in(supervisor, "sam")
    assert pair(supervisor, code, flight_id=flight_id) == 303

    assert kiosk.get("/kiosk/pairing").json() == {"state": "paired"}
    session = next(c for c in kiosk.cookies.jar if c.name == "entryexit_kiosk")
    assert session.value != ticket.value  # a fresh token once paired

    def page_holding(token: str | None) -> str:
        text: str = fresh(api).get("/kiosk", headers={"Cookie": f"entryexit_kiosk={token}"}).text
        return text

    assert PAIRING_PAGE in page_holding(ticket.value)  # the ticket is spent
    assert PAIRING_PAGE not in page_holding(session.value)

    page = kiosk.get("/kiosk")
    assert 'id="notice-screen"' in page.text
    assert PAIRING_PAGE not in page.text
    assert "notice-1" in page.text
    assert "eex_" not in page.text
    token = re.search(r'data-csrf="([^"]+)"', page.text)
    assert token is not None
    photo = lfw_image(lfw_dir, "Colin_Powell", 2).read_bytes()
    files = {"frame": ("f.jpg", photo, "image/jpeg")}
    # No CSRF header: refused (a form from another site cannot set one).
    assert kiosk.post("/kiosk/quality", files=files).status_code == 403
    headers = {"X-CSRF-Token": token.group(1)}
    checked = kiosk.post("/kiosk/quality", files=files, headers=headers)
    assert checked.json() == {"ready": True, "advice": ""}
    large = {"frame": ("f.jpg", photo + bytes(300 * 1024), "image/jpeg")}
    assert kiosk.post("/kiosk/quality", files=large, headers=headers).status_code == 422

    def capture(person: str, number: int) -> dict[str, str]:
        data = lfw_image(lfw_dir, person, number).read_bytes()
        response = kiosk.post(
            "/kiosk/captures",
            files=[("frames", ("1.jpg", data, "image/jpeg"))],
            data={"notice_version": "notice-1", "language": "en"},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        body: dict[str, str] = response.json()
        return body

    # All a traveler's screen gets: a message and an actionable reason; no name, no score.
    assert capture("Colin_Powell", 2) == {"message": "proceed", "reason": ""}
    assert capture("Donald_Rumsfeld", 1) == {"message": "see_officer", "reason": ""}
    assert capture("Colin_Powell", 2) == {"message": "see_officer", "reason": ""}  # boarded

    # The session token is no API key and no console session.
    token_value = session.value
    assert (
        api.client.get(f"/v1/flights/{flight_id}", headers={"X-API-Key": token_value}).status_code
        == 401
    )
    as_console = fresh(api).get("/console/", headers={"Cookie": f"entryexit_session={token_value}"})
    assert as_console.url.path == "/console/login"

    # Revoked from the console: refused at once, and the kiosk is back to pairing.
    device_id = api.services.kiosks.devices(api.services.keys.authenticate(api.keys["admin"]))[0].id
    assert console_post(supervisor, f"/console/kiosks/{device_id}/revoke", {}).status_code == 303
    assert kiosk.post("/kiosk/quality", files=files, headers=headers).status_code == 401
    assert PAIRING_PAGE in kiosk.get("/kiosk").text
    actions = [e.entry.action for e in api.services.audit.all_events()]
    for action in ("kiosk pair", "kiosk session issue", "lane assign", "capture", "kiosk revoke"):
        assert action in actions


def test_guessing_pairing_codes_in_the_console_is_blocked(kiosk_site: Api) -> None:
    api = kiosk_site
    kiosk = fresh(api)
    code = start_pairing(kiosk)
    supervisor = fresh(api)
    sign_in(supervisor, "sam")
    wrong = "ABCD-EFGH" if code != "ABCD-EFGH" else "HGFE-DCBA"
    assert [pair(supervisor, wrong) for _ in range(5)] == [404] * 5
    # Blocked: even the right code is not checked now.
    assert pair(supervisor, code) == 429
    assert kiosk.get("/kiosk/pairing").json() == {"state": "waiting"}
    outcomes = [
        e.entry.outcome for e in api.services.audit.all_events() if e.entry.action == "kiosk pair"
    ]
    assert outcomes == ["denied"] * 5 + ["blocked"]


def test_pairing_codes_are_handed_out_sparingly(kiosk_site: Api) -> None:
    client = fresh(kiosk_site)
    statuses = [client.post("/kiosk/pairing", headers=KIOSK).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


def from_address(site: Api, address: str) -> TestClient:
    return TestClient(site.client.app, base_url="https://testserver", client=(address, 40000))


def test_waiting_codes_from_elsewhere_never_keep_a_new_kiosk_from_pairing(
    kiosk_site: Api,
) -> None:
    """Probe F7: anyone reaching /kiosk asked for 20 codes (a few addresses) and every real
    kiosk was then refused (429) for as long as they kept asking."""
    # One network (a /24; a /64 for IPv6) holds at most a few waiting codes
    # (while the table has room: once it is full, a flood evicts its own codes).
    statuses = [
        from_address(kiosk_site, f"198.51.100.{i}").post("/kiosk/pairing", headers=KIOSK)
        for i in range(1, 7)
    ]
    assert [r.status_code for r in statuses] == [200] * 5 + [429]
    ipv6 = [
        from_address(kiosk_site, f"2001:db8:0:1::{i}").post("/kiosk/pairing", headers=KIOSK)
        for i in range(1, 7)
    ]
    assert [r.status_code for r in ipv6] == [200] * 5 + [429]
    for i in range(20):
        assert start_pairing(from_address(kiosk_site, f"10.0.{i}.7"))
    kiosk = from_address(kiosk_site, "192.0.2.10")
    code = start_pairing(kiosk)
    supervisor = fresh(kiosk_site)
    sign_in(supervisor, "sam")
    assert pair(supervisor, code) == 303
    assert kiosk.get("/kiosk/pairing").json() == {"state": "paired"}


def test_a_flood_from_many_networks_evicts_its_own_codes_not_a_real_kiosks(
    kiosk_site: Api,
) -> None:
    """Review M4: with the table full, the oldest waiting code was dropped, so anyone holding
    a few /24s (or one IPv6 /48: 65 536 /64s) kept evicting a real kiosk's code before the
    supervisor could type it. A full table now drops a code of the network holding the most
    (IPv6 counted per /48)."""
    kiosk = from_address(kiosk_site, "192.0.2.10")
    code = start_pairing(kiosk)
    # A site installing three kiosks at once, from one /24.
    site_codes = [start_pairing(from_address(kiosk_site, f"203.0.113.{i}")) for i in (1, 2, 3)]
    # The attacker: four /24s, five codes each (the per-/24 cap), then one /48 spread over
    # its /64s (one code per /64: the per-/64 cap never bites), again and again.
    for net in range(4):
        for host in range(1, 6):
            start_pairing(from_address(kiosk_site, f"10.0.{net}.{host}"))
    for i in range(40):
        start_pairing(from_address(kiosk_site, f"2001:db8:7:{i:x}::1"))
    for net in range(4):
        assert from_address(kiosk_site, f"10.0.{net}.9").post(
            "/kiosk/pairing", headers=KIOSK
        ).status_code in (200, 429)
    supervisor = fresh(kiosk_site)
    sign_in(supervisor, "sam")
    assert pair(supervisor, code) == 303
    assert kiosk.get("/kiosk/pairing").json() == {"state": "paired"}
    for i, site_code in enumerate(site_codes):
        assert pair(supervisor, site_code, lane=str(4 + i)) == 303


def test_kiosks_pair_only_from_the_lanes_networks_when_they_are_set(
    database_url: str, engine: FaceEngine, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        kiosk_networks=(ip_network("10.20.0.0/16"),),
    )
    built = site(settings, engine)
    with built.client:
        outside = from_address(built, "192.0.2.10").post("/kiosk/pairing", headers=KIOSK)
        assert outside.status_code == 403
        assert start_pairing(from_address(built, "10.20.3.4"))
    built.services.uow.engine.dispose()


LANES = "10.20.0.0/16"
PROXY = "10.9.0.0/24"


def lanes_site(database_url: str, engine: FaceEngine, tmp_path: Path) -> Api:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        kiosk_networks=(ip_network(LANES),),
        trusted_proxies=(ip_network(PROXY),),
    )
    return site(settings, engine)


def kiosk_requests(
    client: TestClient, token: str, photo: bytes, headers: dict[str, str] | None = None
) -> list[int]:
    """Every /kiosk request a kiosk's cookie is good for, as the kiosk's screen sends them."""
    sent = {**(headers or {}), "X-CSRF-Token": token}
    jpeg = ("f.jpg", photo, "image/jpeg")
    notice = {"notice_version": "notice-1", "language": "en"}
    return [
        client.get("/kiosk/pairing", headers=headers).status_code,
        client.get("/kiosk", headers=headers).status_code,
        client.post("/kiosk/quality", files={"frame": jpeg}, headers=sent).status_code,
        client.post(
            "/kiosk/captures", files={"frames": jpeg}, data=notice, headers=sent
        ).status_code,
        client.post("/kiosk/opt-out-requests", data=notice, headers=sent).status_code,
    ]


def test_a_kiosk_credential_is_worthless_outside_the_lanes_networks(
    database_url: str,
    engine: FaceEngine,
    tmp_path: Path,
    lfw_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Probe s9 K1: the cookie of a kiosk paired in the lanes (its pairing ticket, then its
    device session) worked from anywhere: captures recorded, opt-outs filed, the quality gate
    run. Every /kiosk request is judged by the service's own client address (X-Forwarded-For
    believed from a trusted proxy only)."""
    api = lanes_site(database_url, engine, tmp_path)
    photo = lfw_image(lfw_dir, "Colin_Powell", 2).read_bytes()
    with api.client:
        flight_id, _ = staged_flight(api, lfw_dir, ("Colin_Powell",))
        supervisor = fresh(api)
        sign_in(supervisor, "sam")
        kiosk = from_address(api, "10.20.3.4")
        code = start_pairing(kiosk)

        def lifted(address: str) -> TestClient:
            thief = from_address(api, address)
            thief.cookies = kiosk.cookies
            return thief

        # The ticket, before and after pairing, from outside: nothing learnt, nothing issued.
        assert lifted("192.0.2.10").get("/kiosk/pairing").status_code == 403
        assert pair(supervisor, code, flight_id=flight_id) == 303
        assert lifted("192.0.2.10").get("/kiosk/pairing").status_code == 403
        assert kiosk.get("/kiosk/pairing").json() == {"state": "paired"}
        page = kiosk.get("/kiosk").text
        found = re.search(r'data-csrf="([^"]+)"', page)
        assert found is not None
        token = found.group(1)

        caplog.clear()
        outside = kiosk_requests(lifted("192.0.2.10"), token, photo)
        assert outside == [403] * 5
        # Through the lanes' trusted proxy, the address it forwards decides...
        proxied = lifted("10.9.0.5")
        assert kiosk_requests(proxied, token, photo, {"X-Forwarded-For": "192.0.2.10"}) == [403] * 5
        # ...and a peer that is no proxy cannot claim a lane's address.
        claimed = lifted("192.0.2.10")
        assert kiosk_requests(claimed, token, photo, {"X-Forwarded-For": "10.20.3.4"}) == [403] * 5
        # Nothing was recorded for the thief: no encounter, no opt-out request.
        officer = fresh(api)
        sign_in(officer, "olga")
        assert "No pending requests" in officer.get("/console/kiosks").text
        # The kiosk itself, in its lane (directly, or through the proxy), works.
        assert kiosk_requests(kiosk, token, photo)[:3] == [200, 200, 200]
        inside = kiosk_requests(proxied, token, photo, {"X-Forwarded-For": "10.20.3.4"})
        assert inside[:3] == [200, 200, 200]
        assert inside[3:] == [200, 200]
    refusals = [
        e.entry
        for e in api.services.audit.all_events()
        if e.entry.outcome == "denied" and e.entry.action.startswith(("GET /kiosk", "POST /kiosk"))
    ]
    # Each refusal with the paired kiosk's cookie is audited in the kiosk's name (15 requests
    # after pairing; the ticket before pairing names no kiosk yet).
    named = [entry for entry in refusals if entry.actor_role == "gate"]
    assert len(named) >= 15
    assert len({entry.actor_key_id for entry in named}) == 1
    for text in [caplog.text, *(str(entry.details) for entry in refusals)]:
        assert "192.0.2.10" not in text
    assert "from outside the lanes' networks" in caplog.text
    api.services.uow.engine.dispose()


def test_a_kiosk_is_rate_limited_like_a_gate_key(
    engine: FaceEngine, tmp_path: Path, lfw_dir: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", gate_requests_per_second=0.5, gate_burst=2)
    api = site(settings, engine)
    with api.client:
        supervisor = fresh(api)
        sign_in(supervisor, "sam")
        kiosk, token = paired_kiosk(api, supervisor)
        photo = lfw_image(lfw_dir, "Colin_Powell", 2).read_bytes()
        statuses = [
            kiosk.post(
                "/kiosk/quality",
                files={"frame": ("f.jpg", photo, "image/jpeg")},
                headers={"X-CSRF-Token": token},
            ).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]


def test_a_large_preview_is_refused_before_it_is_decoded(kiosk_site: Api, lfw_dir: Path) -> None:
    """Probe s9 D1: a 4096x3072 JPEG at quality 10 (212 KB, under the 256 KiB a preview may
    be) went through the detector at full size. A preview is at most 1 MP now (413)."""
    supervisor = fresh(kiosk_site)
    sign_in(supervisor, "sam")
    kiosk, token = paired_kiosk(kiosk_site, supervisor)
    face = Image.open(lfw_image(lfw_dir, "Colin_Powell", 2)).convert("RGB")

    def preview(size: tuple[int, int]) -> httpx.Response:
        out = io.BytesIO()
        face.resize(size).save(out, "JPEG", quality=10)
        response: httpx.Response = kiosk.post(
            "/kiosk/quality",
            files={"frame": ("f.jpg", out.getvalue(), "image/jpeg")},
            headers={"X-CSRF-Token": token},
        )
        return response

    large = preview((4096, 3072))
    assert large.status_code == 413, large.text
    assert preview((480, 360)).status_code == 200


@pytest.mark.parametrize(
    ("user", "page", "can_pair"),
    [("olga", 200, False), ("sam", 200, True), ("root", 200, True), ("ada", 403, False)],
)
def test_the_kiosks_page_by_role(kiosk_site: Api, user: str, page: int, can_pair: bool) -> None:
    client = fresh(kiosk_site)
    sign_in(client, user)
    response = client.get("/console/kiosks")
    assert response.status_code == page
    assert ("Pair kiosk" in response.text) is can_pair
    if page == 200:
        assert ("No pending requests" in response.text) is True


def test_a_declined_photo_reaches_the_officer_and_is_closed_once(
    kiosk_site: Api, lfw_dir: Path
) -> None:
    api = kiosk_site
    first, _ = staged_flight(api, lfw_dir, ("Colin_Powell",))
    second, _ = staged_flight(api, lfw_dir, ("Ariel_Sharon",))
    supervisor = fresh(api)
    sign_in(supervisor, "sam")
    kiosk, token = paired_kiosk(api, supervisor, flight_id=first)
    # The lane moves on to the next flight: the assignment is replaced, not added.
    form = {"port": "jfk", "lane": "3", "flight_id": second}
    assert console_post(supervisor, "/console/lanes", form).status_code == 303
    declined = kiosk.post(
        "/kiosk/opt-out-requests",
        data={"notice_version": "notice-1", "language": "fr"},
        headers={"X-CSRF-Token": token},
    )
    assert declined.json() == {"message": "see_officer", "reason": "opted_out"}
    stale = kiosk.post(
        "/kiosk/opt-out-requests",
        data={"notice_version": "notice-0", "language": "en"},
        headers={"X-CSRF-Token": token},
    )
    assert stale.status_code == 409  # the kiosk shows the notice in force again

    officer = fresh(api)
    sign_in(officer, "olga")
    page = officer.get("/console/kiosks").text
    assert f'href="/console/flights/{second}"' in page
    assert "notice-1 (fr)" in page
    request_id = re.search(r'action="/console/kiosk-requests/([^/]+)/handled"', page)
    assert request_id is not None
    path = f"/console/kiosk-requests/{request_id.group(1)}/handled"
    assert console_post(officer, path, {}).status_code == 303
    assert "No pending requests" in officer.get("/console/kiosks").text
    assert console_post(officer, path, {}).status_code == 404
    # The auditor reads the trail, not the requests.
    auditor = fresh(api)
    sign_in(auditor, "ada")
    assert auditor.get("/console/kiosks").status_code == 403


def test_the_kiosks_page_warns_of_a_kiosk_paired_onto_another_carriers_lane(
    kiosk_site: Api, lfw_dir: Path
) -> None:
    """Review L9: a ZZ kiosk paired onto lane 3 while it boards EE's flight is accepted (lanes
    are shared over a day), and the page the pairing answers with says its captures will be
    refused there."""
    api = kiosk_site
    flight_id, _ = staged_flight(api, lfw_dir)
    supervisor = fresh(api)
    sign_in(supervisor, "sam")
    assert pair(supervisor, start_pairing(fresh(api)), flight_id=flight_id) == 303
    assert 'role="alert"' not in supervisor.get("/console/kiosks").text

    answer = console_post(
        supervisor,
        "/console/kiosks/pair",
        {"code": start_pairing(fresh(api)), "carrier": "ZZ", "port": "JFK", "lane": "3"},
    )
    assert answer.status_code == 303
    page = supervisor.get(answer.headers["location"]).text
    assert "Kiosk paired." in page
    (warning,) = re.findall(r'<p class="notice bad" role="alert">(.*?)</p>', page, re.S)
    assert "Lane 3 at JFK is boarding EE 101" in warning
    assert "kiosks of ZZ are paired there" in warning


def test_a_flooding_kiosk_cannot_bury_the_officers_list(kiosk_site: Api) -> None:
    """Probe s9 K2 as the flooding kiosk: 400 opt-out requests in 18 s made 401 lines on
    every officer's Kiosks page (177 KB). Now three are filed, the rest refused 429 and
    counted; the page draws the 50 newest of however many wait and says how many more."""
    api = kiosk_site
    supervisor = fresh(api)
    sign_in(supervisor, "sam")
    kiosk, token = paired_kiosk(api, supervisor)
    counted = REGISTRY.get_sample_value("entryexit_kiosk_opt_out_requests_refused_total") or 0
    statuses = [
        kiosk.post(
            "/kiosk/opt-out-requests",
            data={"notice_version": "notice-1", "language": "en"},
            headers={"X-CSRF-Token": token},
        )
        for _ in range(12)
    ]
    assert [r.status_code for r in statuses] == [200] * 3 + [429] * 9
    assert "too often" in statuses[-1].json()["detail"]
    assert int(statuses[-1].headers["retry-after"]) >= 1
    officer = fresh(api)
    sign_in(officer, "olga")
    page = officer.get("/console/kiosks").text
    assert page.count('action="/console/kiosk-requests/') == 3
    assert "more pending" not in page
    refused = REGISTRY.get_sample_value("entryexit_kiosk_opt_out_requests_refused_total")
    assert refused == counted + 9

    # Many kiosks' requests (written as a fleet of kiosks would, over time): the newest 50.
    device_id = next(iter(api.services.kiosks.devices(SUPERVISOR_PRINCIPAL))).id
    start = datetime.now(UTC)

    def add(uow: UnitOfWork) -> None:
        for i in range(57):
            uow.kiosks.add_opt_out_request(
                KioskOptOutRequest(
                    id=str(uuid.uuid4()),
                    device_id=device_id,
                    port="JFK",
                    lane="3",
                    flight_id=None,
                    requested_at=start + timedelta(seconds=i),
                    notice_version="notice-1",
                    language="en",
                )
            )

    in_transaction(api.services.uow, add)
    page = officer.get("/console/kiosks").text
    assert page.count('action="/console/kiosk-requests/') == 50
    assert "10 more pending requests" in page
    shown = re.findall(r"<td>(\d\d:\d\d:\d\d)</td>", page)
    assert shown == sorted(shown, reverse=True)
