"""One fingerprint case end to end in a real browser (Chromium through Playwright, the service
in uvicorn, the real face and fingerprint engines, lfw-dev faces and FVC2002 prints): a face
no-match appears in the queue marked "prints possible"; the officer opens it, types the
document read, attaches two live prints and compares them 1:1; the match is shown with its
fused score, recorded as the traveler's biometric encounter, and the case is closed; the
prints taken are drawn with the minutiae the matcher paired (no screenshot is compared)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from entryexit.adapters.crypto.keys import FileKeyProvider
from entryexit.biometrics import FaceEngine
from entryexit.biometrics.fingerprints import open_engine
from entryexit.bootstrap import build_services
from entryexit.config import Settings
from entryexit.domain.access import Role
from tests.conftest import installed_model_dir_path, lfw_image
from tests.e2e.conftest import served
from tests.e2e.test_console_browser import (
    ARTIFACTS,
    PASSWORD,
    Running,
    page,
    sign_in,
)
from tests.integration.api.conftest import FOREIGN_STATE, Api, capture, staged_flight
from tests.integration.api.test_fingerprints import FVC, prints, send

if TYPE_CHECKING:  # playwright is imported where the browser is started
    from playwright.sync_api import Page

pytestmark = [pytest.mark.models, pytest.mark.lfw, pytest.mark.browser]
__all__ = ["page"]  # the browser fixture, over this module's service


@pytest.fixture
def running(engine: FaceEngine, tmp_path: Path) -> Iterator[Running]:
    if not (FVC / "DB1_B" / "101_1.tif").is_file():
        pytest.skip(f"fvc2002-b data set not found at {FVC}")
    settings = Settings(data_dir=tmp_path / "data")
    keys = FileKeyProvider(settings.resolved_key_dir)
    keys.initialise()
    services = build_services(
        settings,
        engine=engine,
        keys=keys,
        fingerprint_engine=lambda: open_engine(installed_model_dir_path()),
    )
    admin = services.keys.create_first_admin()
    assert admin is not None
    api_keys = {"admin": admin, "officer": services.keys.create(Role.OFFICER, "desk")[1]}
    api_keys["gate"] = services.keys.create(Role.GATE, "gate EE", carrier="EE")[1]
    api_keys["auditor"] = services.keys.create(Role.AUDITOR, "audit")[1]
    services.accounts.create_user("olga", PASSWORD, Role.OFFICER)
    with served(services) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield Running(url, Api(client, services, api_keys), services)  # type: ignore[arg-type]


def test_an_officer_confirms_a_no_match_by_fingerprints(
    running: Running,
    page: Page,
    lfw_dir: Path,
) -> None:
    from playwright.sync_api import expect

    flight_id, refs = staged_flight(running.api, lfw_dir)
    enrolled = send(
        running.api,
        "/v1/documents/fingerprints",
        prints(FVC, "101_1", "102_1"),
        [2, 7],
        number="D0000000",
    )
    assert enrolled.status_code == 201, enrolled.text
    stranger = capture(running.api, flight_id, lfw_image(lfw_dir, "Donald_Rumsfeld", 1))
    assert stranger.json()["decision"] == "no_match"
    assert "print" not in stranger.text.lower()  # the gate learns nothing of this step

    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text))
    sign_in(page, running, "olga")
    page.goto(f"{running.url}/console/queue")
    case_link = page.get_by_role("link").filter(has_text="prints possible")
    expect(case_link).to_have_count(1)
    case_link.click()
    page.wait_for_url(re.compile(r"/console/cases/"))
    expect(page.get_by_role("heading", name=re.compile("Fingerprints"))).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "case-prints.png"), full_page=True)

    page.get_by_label("or issuing state").fill(FOREIGN_STATE)
    page.get_by_label("and number").fill("D0000000")
    page.locator("#fp-print-1").set_input_files(str(FVC / "DB1_B" / "101_3.tif"))
    page.locator("#fp-print-2").set_input_files(str(FVC / "DB1_B" / "102_3.tif"))
    page.get_by_role("button", name=re.compile("Compare with the document")).click()
    result = page.locator("#prints-result")
    expect(result).to_contain_text("Fingerprint match", timeout=60_000)
    expect(result).to_contain_text(re.compile(r"fused score \d\.\d{3} against threshold"))
    expect(result).to_contain_text("the case is closed as confirmed")
    expect(page.get_by_text("This case is closed: confirmed")).to_be_visible()
    # The prints taken, drawn: each live print (a same-origin PNG under the strict CSP) and
    # the enrolled finger's minutiae, joined by one line per pair the matcher made.
    figures = page.locator("#kept-prints figure.print-pair")
    expect(figures).to_have_count(2)
    for index in range(2):
        figure = figures.nth(index)
        stated = re.search(r"(\d+) paired minutiae", figure.locator("figcaption").inner_text())
        assert stated is not None
        pairs = int(stated.group(1))
        assert pairs >= 4
        expect(figure.locator("svg line.pair")).to_have_count(pairs)
        expect(figure.locator("svg g.minutia.paired")).to_have_count(2 * pairs)
        strength = re.search(r"pair strength (\d\.\d\d)", figure.inner_text())
        assert strength is not None
        assert float(strength.group(1)) > 0.05  # the traveler's own fingers pair strongly
        box = figure.locator("svg").bounding_box()
        assert box is not None
        assert box["width"] > 100
        assert box["height"] > 100
        href = figure.locator("svg image").get_attribute("href")
        assert href is not None
        assert href.startswith("/console/cases/")
        # The browser loaded it (an <image> the CSP blocked would not decode).
        loaded = figure.evaluate(
            """async (f) => {
                const img = new Image();
                img.src = f.querySelector('image').getAttribute('href');
                await img.decode();
                return [img.naturalWidth, img.naturalHeight];
            }"""
        )
        assert loaded[0] > 100
        assert loaded[1] > 100
    assert not [m for m in blocked if "Content Security Policy" in m]
    page.screenshot(path=str(ARTIFACTS / "case-prints-match.png"), full_page=True)

    encounters = running.api.client.get(
        f"/v1/flights/{flight_id}/encounters", headers=running.api.headers("auditor")
    ).json()
    assert [(e["method"], e["traveler_ref"]) for e in encounters] == [
        ("biometric", refs["Colin_Powell"])
    ]
    page.goto(f"{running.url}/console/queue")
    expect(page.get_by_text("Nothing waiting.")).to_be_visible()
