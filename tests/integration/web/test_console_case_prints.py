"""The live prints an officer takes on a case, over the real app, database (SQLite and
PostgreSQL), face and fingerprint engines and FVC2002 prints: kept sealed for the case's
evidence period, drawn on the case page with the minutiae the matcher paired, served as a
same-origin PNG only to the officer who took them (every view audited, never cached), refused
to everyone else, and deleted by the purge with the case's evidence."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from entryexit.adapters.storage.tables import CaseFingerprintRow
from entryexit.domain.access import Role
from entryexit.domain.policy import DataKind
from tests.integration.api.conftest import FOREIGN_STATE, Api
from tests.integration.api.test_fingerprints import FVC, prints, send
from tests.integration.web.test_console import PASSWORD, fresh, sign_in
from tests.integration.web.test_console_fingerprints import (
    FIRST,
    check,
    console,
    no_match_case,
)

pytestmark = [pytest.mark.models, pytest.mark.lfw]
__all__ = ["console"]  # the fixture, over this module's tests

PNG = b"\x89PNG\r\n\x1a\n"
IMAGE = re.compile(r'href="(/console/cases/([0-9a-f-]+)/prints/([0-9a-f-]+))"')


def matched_case(console: Api, lfw_dir: Path) -> tuple[str, TestClient, str]:
    """A no-match case where olga compared a stranger's prints, then the traveler's (a match):
    (capture id, olga's client, the case page); four prints kept."""
    _, capture_id, _ = no_match_case(console, lfw_dir)
    enrolled = send(
        console, "/v1/documents/fingerprints", prints(FVC, "101_1", "102_1"), [2, 7], number=FIRST
    )
    assert enrolled.status_code == 201, enrolled.text
    client = fresh(console)
    sign_in(client, "olga")
    page = client.get(f"/console/cases/{capture_id}").text
    assert "Prints you took on this case" not in page  # nothing taken yet
    # First a stranger's fingers against the document's prints: no match, kept all the same.
    stranger = check(
        client,
        capture_id,
        page,
        "verify",
        ("105_3", "106_3"),
        issuing_state=FOREIGN_STATE,
        number=FIRST,
    )
    assert "No fingerprint match" in stranger.text
    matched = check(
        client,
        capture_id,
        page,
        "verify",
        ("101_3", "102_3"),
        issuing_state=FOREIGN_STATE,
        number=FIRST,
    )
    assert matched.status_code == 200, matched.text
    assert "Fingerprint match" in matched.text
    return capture_id, client, matched.text


def events(console: Api, action: str) -> list[tuple[str | None, str | None]]:
    return [
        (e.entry.actor_key_id, e.entry.resource_id)
        for e in console.services.audit.all_events(action)
    ]


def test_the_officer_sees_the_prints_drawn_with_their_pairs(console: Api, lfw_dir: Path) -> None:
    capture_id, client, page = matched_case(console, lfw_dir)
    assert "Prints you took on this case" in page
    figures = re.findall(r'<figure class="print-pair".*?</figure>', page, re.S)
    assert len(figures) == 4  # two fingers of each check, the stranger's first
    for index, figure in enumerate(figures):
        stated = re.search(r"(\d+) paired minutiae \(green", figure)
        assert stated is not None
        drawn = len(re.findall(r'<line class="pair"', figure))
        assert drawn == int(stated.group(1)) >= 4  # MCC's n_P pairs, 4 to 12
        assert re.search(r"live quality \d+, \d+ minutiae", figure)
        assert "enrolled quality" in figure
        strength = re.search(r"pair strength (\d\.\d\d)", figure)
        assert strength is not None
        # A stranger's minutiae pair as many, weakly (measured: about 0.02 against 0.09 to
        # 0.32 for mates on FVC2002 DB1_B).
        if index < 2:
            assert float(strength.group(1)) < 0.05
        else:
            assert float(strength.group(1)) > 0.05
    # The image is an <image> of the SVG, same origin: the CSP needs no data: URL.
    links = IMAGE.findall(page)
    assert len(links) == 4
    assert "data:" not in page
    url, case_in_url, print_id = links[0]
    assert case_in_url == capture_id
    before = len(events(console, "fingerprint image view"))
    image = client.get(url)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.headers["cache-control"] == "no-store"
    assert image.content.startswith(PNG)
    viewed = console.services.audit.all_events("fingerprint image view")
    last = list(viewed)[-1].entry
    assert len(events(console, "fingerprint image view")) == before + 1
    assert last.resource_id == capture_id
    assert last.details["print"] == print_id
    assert FIRST not in repr(last)
    # The case is closed; the page still shows them (read again: an audited view).
    again = client.get(f"/console/cases/{capture_id}").text
    assert "This case is closed: confirmed" in again
    assert len(IMAGE.findall(again)) == 4
    assert ("fingerprint case prints view", capture_id) in [
        (e.entry.action, e.entry.resource_id)
        for e in console.services.audit.all_events("fingerprint case prints view")
    ]


def test_kept_prints_are_sealed_and_bound_to_the_officer(console: Api, lfw_dir: Path) -> None:
    _, _, page = matched_case(console, lfw_dir)
    engine = console.services.uow.engine
    with engine.connect() as connection:
        rows = connection.execute(select(CaseFingerprintRow.__table__)).mappings().all()
    assert len(rows) == 4
    for row in rows:
        assert not bytes(row["image"]).startswith(PNG)
        assert PNG not in bytes(row["image"])
        assert b"EEFP" not in bytes(row["template"])  # the template format's magic
    # A database writer hands olga's prints to another officer: they no longer open.
    console.services.accounts.create_user("oleg", PASSWORD, Role.OFFICER)
    oleg = fresh(console)
    sign_in(oleg, "oleg")
    oleg_id = _user_id(console, "oleg")
    with engine.begin() as connection:
        connection.execute(update(CaseFingerprintRow).values(officer_id=oleg_id))
    url = IMAGE.findall(page)[0][0]
    stolen = oleg.get(url)
    assert stolen.status_code >= 400
    assert PNG not in stolen.content


def _user_id(console: Api, username: str) -> str:
    with console.services.uow.engine.connect() as connection:
        found = connection.execute(
            text("select id from console_users where username = :u"), {"u": username}
        ).scalar_one()
    return str(found)


def test_nobody_else_sees_the_kept_prints(console: Api, lfw_dir: Path) -> None:
    capture_id, _, page = matched_case(console, lfw_dir)
    url, _, print_id = IMAGE.findall(page)[0]
    console.services.accounts.create_user("oleg", PASSWORD, Role.OFFICER)
    # Another officer, the supervisor, the auditor: signed in, refused; the case page of
    # another officer or supervisor draws nothing of olga's.
    for name in ("oleg", "sam", "ada"):
        other = fresh(console)
        sign_in(other, name)
        response = other.get(url)
        assert response.status_code == 403, (name, response.status_code)
        assert PNG not in response.content
        if name != "ada":
            case_page = other.get(f"/console/cases/{capture_id}").text
            assert "Prints you took on this case" not in case_page
            assert print_id not in case_page
    # A gate's key opens no console page.
    gate = fresh(console)
    response = gate.get(url, headers=console.headers("gate"))
    assert response.url.path == "/console/login"
    assert PNG not in response.content
    # olga herself, guessing the URL of her print under another case: not found.
    _, other_case, _ = no_match_case(console, lfw_dir)
    olga = fresh(console)
    sign_in(olga, "olga")
    guessed = olga.get(f"/console/cases/{other_case}/prints/{print_id}")
    assert guessed.status_code == 404
    assert PNG not in guessed.content
    assert events(console, "fingerprint image view") == []  # nobody saw it


def test_the_purge_deletes_the_kept_prints_with_the_cases_evidence(
    console: Api, lfw_dir: Path
) -> None:
    capture_id, client, page = matched_case(console, lfw_dir)
    services = console.services
    with services.uow(read_only=True) as uow:
        kept = uow.fingerprints.case_prints(capture_id)
        case = uow.cases.get(capture_id)
    assert case is not None
    assert case.traveler_id is None  # a no-match: the shortest period of any class
    assert len(kept) == 4
    policy = services.policies.in_force(case.received_at)
    evidence = case.received_at + policy.retention(DataKind.CAPTURE_IMAGES, None)
    assert {p.expires_at for p in kept} == {evidence}
    with services.uow() as uow:
        early = uow.retention.purge_expired(evidence - timedelta(seconds=1), policy)
        uow.commit()
    assert early["case_fingerprints"] == 0
    url = IMAGE.findall(page)[0][0]
    assert client.get(url).status_code == 200
    with services.uow() as uow:
        due = uow.retention.purge_expired(evidence, policy)
        uow.commit()
    assert due["case_fingerprints"] == 4
    gone = client.get(url)
    assert gone.status_code == 404
    assert PNG not in gone.content
    assert "Prints you took on this case" not in client.get(f"/console/cases/{capture_id}").text
    with services.uow.engine.connect() as connection:
        assert connection.scalar(text("select count(*) from case_fingerprints")) == 0
