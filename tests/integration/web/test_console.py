"""The officer console over the real app, database and face engine (no browser: the
server-side rules; tests/e2e/test_console_browser.py drives Chromium)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from entryexit.domain.access import Role
from entryexit.web.app import create_service_app
from tests.conftest import lfw_image
from tests.integration.api.conftest import (
    FOREIGN_STATE,
    Api,
    build_api,
    capture,
    enrol,
    manifest_row,
    staged_flight,
)

pytestmark = [pytest.mark.models, pytest.mark.lfw]

PASSWORD = "a long enough password"
USERS = {"olga": Role.OFFICER, "sam": Role.SUPERVISOR, "ada": Role.AUDITOR, "root": Role.ADMIN}


@pytest.fixture
def console(database_url: str, engine: FaceEngine, tmp_path: Path) -> Iterator[Api]:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    built, services = build_api(settings, engine, create_service_app, "https://testserver")
    for name, role in USERS.items():
        services.accounts.create_user(name, PASSWORD, role)
    with built.client:
        yield built
    services.uow.engine.dispose()


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    page = client.get("/console/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/console/login",
        data={"username": username, "password": password, "login_csrf": token.group(1)},
    )
    assert response.status_code == 200
    path: str = response.url.path
    return path


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def fresh(api: Api, address: str = "testclient") -> TestClient:
    return TestClient(api.client.app, base_url="https://testserver", client=(address, 50000))


def test_pages_need_a_session_and_carry_strict_headers(console: Api) -> None:
    client = fresh(console)
    response = client.get("/console/")
    assert response.url.path == "/console/login"
    assert response.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    htmx = client.get("/console/board/rows", headers={"HX-Request": "true"})
    assert htmx.status_code == 401
    assert htmx.headers["HX-Redirect"] == "/console/login"
    assert sign_in(client, "olga") == "/console/"
    cookie = next(c for c in client.cookies.jar if c.name == "entryexit_session")
    assert cookie.secure
    assert cookie.has_nonstandard_attr("HttpOnly")
    # The API's problem documents are unchanged for API paths.
    assert client.get("/v1/flights/nope").headers["content-type"] == "application/problem+json"


def test_the_strict_headers_hold_under_a_root_path(console: Api) -> None:
    """Mounted under a prefix (uvicorn --root-path, a proxy's mount) the request's path
    carries it: the screens' headers are chosen by the route path below it, not missed."""
    client = TestClient(console.client.app, base_url="https://testserver", root_path="/edge")
    response = client.get("/edge/console/login")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_wrong_passwords_lock_the_address_out_and_every_attempt_is_audited(
    console: Api,
) -> None:
    stranger = fresh(console, "203.0.113.9")
    for _ in range(5):
        assert sign_in(stranger, "olga", "wrong password!!") == "/console/login"
    # Locked now from there: even the right password is refused, with the same message.
    assert sign_in(stranger, "olga") == "/console/login"
    assert sign_in(stranger, "nobody") == "/console/login"
    outcomes = [e.entry.outcome for e in console.services.audit.all_events("console sign-in")]
    assert outcomes.count("denied") == 5  # four wrong, one for the unknown user
    assert "denied, address locked" in outcomes
    assert "locked" in outcomes
    # The officer at her own workstation is not locked out by a stranger's guesses (a lock
    # per account was a denial of service anyone could mount), on either database.
    assert sign_in(fresh(console, "10.20.30.40"), "olga") == "/console/"
    assert sign_in(stranger, "olga") == "/console/login"


def test_idle_sessions_end_and_sign_out_ends_the_session(
    console: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = fresh(console)
    sign_in(client, "olga")
    board = client.get("/console/")
    assert board.status_code == 200
    token = csrf(board.text)
    out = client.post("/console/logout", data={"csrf_token": token})
    assert out.url.path == "/console/login"
    assert client.get("/console/").url.path == "/console/login"

    sign_in(client, "olga")
    accounts = console.services.accounts
    real_clock = accounts._clock
    monkeypatch.setattr(accounts, "_clock", lambda: real_clock() + timedelta(minutes=16))
    assert client.get("/console/").url.path == "/console/login"


def test_a_pages_own_polling_does_not_keep_an_unattended_console_signed_in(
    console: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The board and the feed refresh themselves every few seconds; were each refresh the
    # officer's activity, a console left open would stay signed in for the session's life.
    flight = console.create_flight()
    client = fresh(console)
    sign_in(client, "olga")
    accounts = console.services.accounts
    real_clock = accounts._clock
    for minutes in (5, 10, 14):
        monkeypatch.setattr(
            accounts, "_clock", lambda m=minutes: real_clock() + timedelta(minutes=m)
        )
        assert client.get("/console/board/rows").status_code == 200
        assert client.get(f"/console/flights/{flight['id']}/feed").status_code == 200
    monkeypatch.setattr(accounts, "_clock", lambda: real_clock() + timedelta(minutes=16))
    assert client.get("/console/").url.path == "/console/login"


def test_forms_without_the_sessions_csrf_token_are_refused(console: Api, lfw_dir: Path) -> None:
    flight_id, _ = staged_flight(console, lfw_dir)
    client = fresh(console)
    sign_in(client, "olga")
    refused = client.post(f"/console/flights/{flight_id}/stage", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert "did not come from this console" in refused.text
    page = client.get(f"/console/flights/{flight_id}")
    ok = client.post(f"/console/flights/{flight_id}/stage", data={"csrf_token": csrf(page.text)})
    assert ok.status_code == 200
    assert "Re-stage gallery" in ok.text


def test_a_case_opens_only_its_candidates_photos_and_only_while_it_is_open(
    console: Api, lfw_dir: Path
) -> None:
    """Review L5: a case (any, resolved too) opened the enrolled photo of every traveler on
    its flight. Now only the candidates its page shows, while it is open."""
    flight_id, refs = staged_flight(console, lfw_dir)  # four travelers, three candidates shown
    stranger = capture(console, flight_id, lfw_image(lfw_dir, "Donald_Rumsfeld", 1))
    capture_id = stranger.json()["capture_id"]
    client = fresh(console)
    sign_in(client, "olga")

    def photo(traveler_id: str) -> int:
        url = f"/console/images/travelers/{traveler_id}?case={capture_id}"
        status: int = client.get(url).status_code
        return status

    # Before any page showed the case (another process did): ranked again, same answer.
    statuses = {traveler: photo(traveler) for traveler in refs.values()}
    assert sorted(statuses.values()) == [200, 200, 200, 403]
    console.services.console._shown.clear()  # what the page shows is checked next
    case = client.get(f"/console/cases/{capture_id}")
    shown = set(
        re.findall(rf"/console/images/travelers/([0-9a-f-]{{36}})\?case={capture_id}", case.text)
    )
    assert len(shown) == 3
    (left_out,) = set(refs.values()) - shown
    # On the flight, enrolled, not a candidate: the attacker's pick.
    refused = client.get(f"/console/images/travelers/{left_out}?case={capture_id}")
    assert refused.status_code == 403
    assert "not a candidate of this case" in refused.text
    assert all(photo(traveler) == 200 for traveler in shown)

    resolved = client.post(
        f"/console/cases/{capture_id}/resolve",
        data={"csrf_token": csrf(case.text), "resolution": "rejected"},
    )
    assert resolved.status_code == 200
    assert all(photo(traveler) == 403 for traveler in shown)  # resolved: no longer shown


def test_a_no_match_is_resolved_from_the_queue_with_the_evidence(
    console: Api, lfw_dir: Path
) -> None:
    flight_id, refs = staged_flight(console, lfw_dir)
    # Someone not on the manifest: the officer checks the document and, here, finds (in the
    # test's story) that it is Colin Powell's, photographed badly.
    stranger = capture(console, flight_id, lfw_image(lfw_dir, "Donald_Rumsfeld", 1))
    assert stranger.json()["decision"] == "no_match"
    capture_id = stranger.json()["capture_id"]

    client = fresh(console)
    sign_in(client, "olga")
    queue = client.get("/console/queue")
    assert f"/console/cases/{capture_id}" in queue.text
    case = client.get(f"/console/cases/{capture_id}")
    assert case.status_code == 200
    assert f"/console/images/captures/{capture_id}" in case.text
    image = client.get(f"/console/images/captures/{capture_id}")
    assert image.headers["content-type"] == "image/jpeg"
    assert image.headers["cache-control"] == "no-store"
    candidate = re.search(
        rf"/console/images/travelers/([0-9a-f-]{{36}})\?case={capture_id}", case.text
    )
    assert candidate is not None
    assert candidate.group(1) in refs.values()
    reference = client.get(candidate.group(0))
    assert reference.content[:2] == b"\xff\xd8"
    # Least privilege (F6): by id alone, or for a traveler the case's flight does not list,
    # no enrolled photo is shown.
    assert client.get(f"/console/images/travelers/{candidate.group(1)}").status_code == 403
    other_flight = console.create_flight()["id"]
    listed = console.client.put(
        f"/v1/flights/{other_flight}/manifest",
        json={"travelers": [manifest_row("Q0000001", "ELSEWHERE")]},
        headers=console.headers("officer"),
    )
    assert listed.status_code == 200, listed.text
    elsewhere = enrol(console, "Q0000001", lfw_image(lfw_dir, "Donald_Rumsfeld", 2))
    assert client.get(f"/console/images/travelers/{elsewhere}?case={capture_id}").status_code == 403

    resolved = client.post(
        f"/console/cases/{capture_id}/resolve",
        data={
            "csrf_token": csrf(case.text),
            "resolution": "confirmed",
            "traveler_id": refs["Colin_Powell"],
        },
    )
    assert resolved.status_code == 200
    assert "Case resolved: confirmed" in resolved.text
    assert f"/console/cases/{capture_id}" not in resolved.text
    encounters = console.client.get(
        f"/v1/flights/{flight_id}/encounters", headers=console.headers("auditor")
    ).json()
    assert [e["method"] for e in encounters] == ["manual_document_check"]
    # The confirmed miss reaches the live fairness report (manifest sex M).
    fairness = console.client.get(
        "/v1/reports/fairness",
        params={"since": "2000-01-01T00:00:00Z"},
        headers=console.headers("auditor"),
    ).json()
    assert fairness["groups"]["M"]["confirmed_false_non_match"] == 1
    again = client.post(
        f"/console/cases/{capture_id}/resolve",
        data={"csrf_token": csrf(case.text), "resolution": "rejected"},
    )
    assert again.status_code == 409
    actions = {e.entry.action: e for e in console.services.audit.all_events()}
    resolve_event = actions["console case resolve"]
    assert resolve_event.entry.outcome == "confirmed"
    assert resolve_event.entry.actor_role == "officer"
    assert "console image view" in actions
    # One event a request: the resolution's own, naming the request it served; the second,
    # refused (409) resolve reached no use case's commit, so its access event says so.
    assert resolve_event.entry.details["request"] == "POST /console/cases/{capture_id}/resolve"
    route_events = [
        e.entry.outcome
        for e in console.services.audit.all_events()
        if e.entry.action == "POST /console/cases/{capture_id}/resolve"
    ]
    assert route_events == ["rejected"]


def test_an_opt_out_from_the_flight_page(console: Api, lfw_dir: Path) -> None:
    flight_id, refs = staged_flight(console, lfw_dir)
    client = fresh(console)
    sign_in(client, "olga")
    page = client.get(f"/console/flights/{flight_id}")
    assert page.text.count(">Record opt-out<") == len(refs)
    done = client.post(
        f"/console/flights/{flight_id}/opt-outs",
        data={"csrf_token": csrf(page.text), "traveler_id": refs["Ariel_Sharon"]},
    )
    assert done.status_code == 200
    assert "opted out" in done.text
    assert done.text.count(">Record opt-out<") == len(refs) - 1


def test_auditors_read_but_cannot_act_and_see_no_images(console: Api, lfw_dir: Path) -> None:
    flight_id, refs = staged_flight(console, lfw_dir)
    no_match = capture(console, flight_id, lfw_image(lfw_dir, "Donald_Rumsfeld", 1))
    capture_id = no_match.json()["capture_id"]
    client = fresh(console)
    sign_in(client, "ada")
    board = client.get("/console/")
    assert "Exceptions" not in board.text
    assert client.get(f"/console/flights/{flight_id}").status_code == 200
    assert client.get("/console/queue").status_code == 403
    assert client.get(f"/console/cases/{capture_id}").status_code == 403
    assert client.get(f"/console/images/captures/{capture_id}").status_code == 403
    assert client.get(f"/console/images/travelers/{refs['Colin_Powell']}").status_code == 403
    stage = client.post(
        f"/console/flights/{flight_id}/stage", data={"csrf_token": csrf(board.text)}
    )
    assert stage.status_code == 403
    oversight = client.get("/console/oversight")
    assert "intact" in oversight.text
    assert "default-2" in oversight.text


def test_the_oversight_page_pays_for_its_audit_walk_as_the_api_does(
    engine: FaceEngine, tmp_path: Path
) -> None:
    """Review L10: the page walks the log from the last checkpoint on every load, and was not
    limited at all; it now spends the audit check's cost from the account's bucket."""
    settings = Settings(data_dir=tmp_path / "data", key_requests_per_second=0.01, key_burst=200)
    built, services = build_api(settings, engine, create_service_app, "https://testserver")
    services.accounts.create_user("ada", PASSWORD, Role.AUDITOR)
    try:
        with built.client:
            client = fresh(built)
            sign_in(client, "ada")
            statuses = [client.get("/console/oversight").status_code for _ in range(3)]
            assert statuses == [200, 200, 429]
            assert client.get("/console/").status_code == 200  # it held up only the walk
    finally:
        services.uow.engine.dispose()


def test_gate_roles_cannot_have_console_accounts(console: Api) -> None:
    from entryexit.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="gates use API keys"):
        console.services.accounts.create_user("lane7", PASSWORD, Role.GATE)
    with pytest.raises(InvalidInputError, match="at least 12"):
        console.services.accounts.create_user("shorty", "short", Role.OFFICER)


def test_alerts_are_dispositioned_and_the_overstay_report_downloads(
    console: Api, lfw_dir: Path
) -> None:
    from datetime import UTC, datetime

    from entryexit.domain.access import Principal

    manager = Principal("wm", "watchlist desk", Role.WATCHLIST_MANAGER)
    console.services.watchlist.add(
        manager, lfw_image(lfw_dir, "Ariel_Sharon", 5).read_bytes(), "test", "T-1"
    )
    staged_flight(console, lfw_dir)  # Ariel Sharon is on it: a staging alert
    client = fresh(console)
    sign_in(client, "olga")
    page = client.get("/console/alerts")
    assert "At staging" in page.text
    alert_id = re.search(r"/console/alerts/([0-9a-f-]{36})/disposition", page.text)
    assert alert_id is not None
    # The alert's traveler's enrolled photo is shown for this alert (and only for it).
    photo = re.search(
        rf"/console/images/travelers/([0-9a-f-]{{36}})\?alert={alert_id.group(1)}", page.text
    )
    assert photo is not None
    assert client.get(photo.group(0)).content[:2] == b"\xff\xd8"
    assert client.get(f"/console/images/travelers/{photo.group(1)}").status_code == 403
    no_reason = client.post(
        f"/console/alerts/{alert_id.group(1)}/disposition",
        data={"csrf_token": csrf(page.text), "disposition": "confirmed", "reason": " "},
    )
    assert no_reason.status_code == 422
    done = client.post(
        f"/console/alerts/{alert_id.group(1)}/disposition",
        data={"csrf_token": csrf(page.text), "disposition": "confirmed", "reason": "ID checked"},
    )
    assert "Disposition recorded: confirmed" in done.text
    assert "No open alerts." in done.text

    today = datetime.now(UTC).date().isoformat()
    report = client.get("/console/overstays")
    assert report.status_code == 200
    assert "Download CSV" in report.text
    download = client.get(f"/console/overstays.csv?as_of={today}")
    assert download.headers["content-type"].startswith("text/csv")
    assert download.text.startswith("kind,traveler_ref")
    auditor = fresh(console)
    sign_in(auditor, "ada")
    assert auditor.get("/console/alerts").status_code == 403
    assert auditor.get("/console/overstays").status_code == 403


def test_a_travelers_crossings_page_shows_how_each_exit_was_linked(
    console: Api, lfw_dir: Path
) -> None:
    flight_id, refs = staged_flight(console, lfw_dir)  # an exit flight
    assert (
        capture(console, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2)).json()["decision"]
        == "match"
    )
    console.services.crossings.wait_idle()
    client = fresh(console)
    sign_in(client, "olga")
    flight_page = client.get(f"/console/flights/{flight_id}")
    assert f"/console/travelers/{refs['Colin_Powell']}" in flight_page.text
    page = client.get(f"/console/travelers/{refs['Colin_Powell']}")
    assert page.status_code == 200
    assert "no entry record" in page.text  # left without an entry on file
    assert "biometric" in page.text  # the exit encounter's method
    auditor = fresh(console)
    sign_in(auditor, "ada")
    assert auditor.get(f"/console/travelers/{refs['Colin_Powell']}").status_code == 403


def test_a_supervisor_erases_a_traveler_from_the_console(console: Api, lfw_dir: Path) -> None:
    flight_id, refs = staged_flight(console, lfw_dir)
    sharon = refs["Ariel_Sharon"]
    number = f"D{list(refs).index('Ariel_Sharon'):07d}"
    for officer_or_auditor in ("olga", "ada"):
        client = fresh(console)
        sign_in(client, officer_or_auditor)
        assert "/console/erasure" not in client.get("/console/").text
        assert client.get("/console/erasure").status_code == 403
    client = fresh(console)
    sign_in(client, "sam")
    page = client.get("/console/erasure")
    assert page.status_code == 200
    form = {"issuing_state": FOREIGN_STATE, "number": number, "reason": "court_order"}
    forged = client.post("/console/erasure", data={**form, "confirm": "yes"})
    assert forged.status_code == 403  # no CSRF token: nothing erased
    unconfirmed = client.post("/console/erasure", data={**form, "csrf_token": csrf(page.text)})
    assert unconfirmed.status_code == 422
    done = client.post(
        "/console/erasure", data={**form, "confirm": "yes", "csrf_token": csrf(page.text)}
    )
    assert done.status_code == 200, done.text
    assert "traveler documents" in done.text
    assert "SHARON" not in done.text
    manifest = client.get(f"/console/flights/{flight_id}")
    assert "SHARON" not in manifest.text
    assert client.get(f"/console/images/travelers/{sharon}").status_code == 403
    after = capture(console, flight_id, lfw_image(lfw_dir, "Ariel_Sharon", 2))
    assert after.json()["decision"] == "no_match"


def test_the_board_late_in_the_evening_shows_the_nights_flights(console: Api) -> None:
    # At 22:30 an officer must see the 01:30 departure; a calendar day's board hid it until
    # midnight (and the kiosk page could not assign a lane to it).
    services = console.services
    real_clock = services.clock
    evening = real_clock().replace(hour=22, minute=30, second=0, microsecond=0)
    numbers = {"7001": evening + timedelta(hours=3), "7002": evening + timedelta(hours=30)}
    for number, departure in numbers.items():
        created = console.client.post(
            "/v1/flights",
            json={
                "carrier": "EE",
                "number": number,
                "scheduled_departure": departure.isoformat(),
                "origin": "AAA",
                "destination": "BBB",
                "direction": "exit",
            },
            headers=console.headers("admin"),
        )
        assert created.status_code == 201, created.text
    client = fresh(console)
    sign_in(client, "sam")
    # Services is frozen (wired once); the pages read the hour from its clock.
    object.__setattr__(services, "clock", lambda: evening)
    try:
        for page in ("/console/", "/console/board/rows", "/console/kiosks"):
            text = client.get(page).text
            assert "7001" in text, page
            assert "7002" not in text, page
    finally:
        object.__setattr__(services, "clock", real_clock)


def test_a_link_cannot_put_its_own_words_on_the_console(console: Api) -> None:
    # The queue's "case resolved" notice reads the query string: a crafted link must not make
    # the console say something of the attacker's choosing.
    client = fresh(console)
    sign_in(client, "olga")
    spoofed = client.get("/console/queue", params={"resolved": "Call 555-0100 to verify"}).text
    assert "555-0100" not in spoofed
    assert "Case resolved: opted out." in client.get("/console/queue?resolved=opted_out").text
