"""The officer console in a real browser: Playwright driving Debian's Chromium against the
service running in a real HTTP server (uvicorn), with the real face engine and lfw-dev photos.

Screenshots of the main pages are saved to ``test-artifacts/console/`` (override with
ENTRYEXIT_TEST_ARTIFACTS) for people to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from entryexit.biometrics import FaceEngine
from entryexit.config import Settings
from entryexit.domain.access import Role
from tests.conftest import lfw_image
from tests.e2e.conftest import (
    CONSOLE_ARTIFACTS,
    PASSWORD,
    Running,
    free_port,
    keyed_services,
    page,
    served,
    sign_in,
)
from tests.integration.api.conftest import Api, capture, staged_flight

pytestmark = [pytest.mark.models, pytest.mark.lfw, pytest.mark.browser]

ARTIFACTS = CONSOLE_ARTIFACTS
# Imported from here by test_console_fingerprints_browser (the fixture ``page`` over its own
# ``running``); they live in tests/e2e/conftest.py.
__all__ = ["ARTIFACTS", "PASSWORD", "Running", "free_port", "page", "sign_in"]

if TYPE_CHECKING:  # playwright is imported where the browser is started
    from playwright.sync_api import Page


@pytest.fixture
def running(engine: FaceEngine, tmp_path: Path) -> Iterator[Running]:
    services, api_keys = keyed_services(
        Settings(data_dir=tmp_path / "data"),
        engine,
        users={"olga": Role.OFFICER, "ada": Role.AUDITOR},
    )
    with served(services) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield Running(url, Api(client, services, api_keys), services)  # type: ignore[arg-type]


def test_an_officer_boards_a_flight_resolves_a_no_match_and_records_an_opt_out(
    running: Running,
    page: Page,
    lfw_dir: Path,
) -> None:
    from playwright.sync_api import expect

    sign_in(page, running, "olga")
    expect(page.get_by_role("heading", name="Flights")).to_be_visible()
    flight_id, refs = staged_flight(running.api, lfw_dir)

    # The board picks up the new flight and its counts without a reload.
    row = page.get_by_role("row").filter(has_text="EE 101")
    expect(row).to_be_visible(timeout=10_000)
    expect(row).to_contain_text("gallery staged")
    for person in ("Colin_Powell", "Ariel_Sharon"):
        assert (
            capture(running.api, flight_id, lfw_image(lfw_dir, person, 2)).json()["decision"]
            == "match"
        )
    expect(row.locator('[data-count="matched"]')).to_have_text("2", timeout=10_000)
    expect(row).to_contain_text("boarding")
    page.screenshot(path=str(ARTIFACTS / "board.png"), full_page=True)

    # The flight page: manifest with states and the live feed.
    row.get_by_role("link", name="EE 101").click()
    expect(page.get_by_role("heading", name=re.compile("Manifest"))).to_be_visible()
    no_match = capture(running.api, flight_id, lfw_image(lfw_dir, "Donald_Rumsfeld", 1))
    assert no_match.json()["decision"] == "no_match"
    expect(page.locator("#feed")).to_contain_text("no match", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "flight.png"), full_page=True)

    # The exceptions queue, by keyboard: g q, j, Enter.
    page.keyboard.press("g")
    page.keyboard.press("q")
    page.wait_for_url(re.compile(r"/console/queue$"))
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/console/cases/"))
    expect(page.get_by_alt_text("Photo taken at the gate")).to_be_visible()
    candidates = page.get_by_alt_text(re.compile("Enrolled photo of"))
    expect(candidates.first).to_be_visible()
    assert page.evaluate(
        "() => [...document.images].every(img => img.complete && img.naturalWidth > 0)"
    )
    page.screenshot(path=str(ARTIFACTS / "case.png"), full_page=True)
    page.get_by_label("Traveler whose document you checked").select_option(refs["Alvaro_Uribe"])
    page.get_by_role("button", name=re.compile("Confirm identity")).click()
    expect(page.get_by_role("status")).to_contain_text("Case resolved: confirmed")
    expect(page.get_by_text("Nothing waiting.")).to_be_visible()

    # An opt-out at the desk, from the flight page.
    page.goto(f"{running.url}/console/flights/{flight_id}")
    page.get_by_role("button", name="Record opt-out for VAJPAYEE").click()
    vajpayee = page.get_by_role("row").filter(has_text="VAJPAYEE")
    expect(vajpayee).to_contain_text("opted out")
    page.goto(f"{running.url}/console/")
    expect(page.get_by_role("row").filter(has_text="EE 101")).to_contain_text("0")  # outstanding

    # Sign out: the session is gone, pages go back to sign-in.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_contain_text("signed out")
    page.goto(f"{running.url}/console/queue")
    page.wait_for_url(re.compile(r"/console/login$"))

    events = list(running.services.audit.all_events())
    actions = [e.entry.action for e in events]
    for action in ("console sign-in", "console case view", "console case resolve"):
        assert action in actions
    # The opt-out's one event is the use case's, naming the console request it served.
    opt_out = next(e for e in events if e.entry.action == "opt-out")
    assert opt_out.entry.details["request"] == "POST /console/flights/{flight_id}/opt-outs"
    assert "console sign-out" in actions


def test_an_auditor_cannot_reach_officer_actions(
    running: Running,
    page: Page,
    lfw_dir: Path,
) -> None:
    from playwright.sync_api import expect

    flight_id, _ = staged_flight(running.api, lfw_dir)
    no_match = capture(running.api, flight_id, lfw_image(lfw_dir, "Donald_Rumsfeld", 1))
    sign_in(page, running, "ada")
    expect(page.get_by_role("link", name=re.compile("Exceptions"))).to_have_count(0)
    page.goto(f"{running.url}/console/flights/{flight_id}")
    expect(page.get_by_role("button", name=re.compile("Stage|Record opt-out"))).to_have_count(0)
    page.goto(f"{running.url}/console/cases/{no_match.json()['capture_id']}")
    expect(page.get_by_role("heading", name="Forbidden")).to_be_visible()
    page.goto(f"{running.url}/console/oversight")
    expect(page.get_by_text(re.compile("intact"))).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "oversight.png"), full_page=True)


def test_a_gate_key_is_not_a_console_account(running: Running, page: Page) -> None:
    from playwright.sync_api import expect

    page.goto(f"{running.url}/console/login")
    page.get_by_label("Username").fill("gate")
    page.get_by_label("Password").fill(running.api.keys["gate"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    page.screenshot(path=str(ARTIFACTS / "login.png"), full_page=True)
