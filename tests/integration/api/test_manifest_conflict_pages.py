"""The agency's list of manifest conflicts at scale (review C3, session 10).

The attacker is a partner whose key is bound to carrier ZZ: it re-lists, with other names,
passport numbers whose details another carrier or the agency set, to bury the agency's queue
under conflicts (one upload of 10,000 opened 10,000, and the list answered 7 MB at once). One
upload now opens at most ``MAX_CONFLICTS_PER_UPLOAD``; the list is read in keyset pages.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from entryexit.adapters.storage.tables import ManifestConflictRow
from entryexit.domain.access import Role
from entryexit.domain.conflicts import DEFAULT_PAGE, MAX_CONFLICTS_PER_UPLOAD, MAX_PAGE
from tests.integration.api.conftest import Api, manifest_row

OVER = 3  # disputed documents beyond the bound in the attacker's upload


def put(api: Api, flight_id: str, rows: list[dict[str, str]], role: str) -> dict[str, Any]:
    response = api.client.put(
        f"/v1/flights/{flight_id}/manifest", json={"travelers": rows}, headers=api.headers(role)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stored_conflicts(api: Api) -> int:
    with api.services.uow.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(ManifestConflictRow)) or 0)


def page(api: Api, role: str = "admin", **params: Any) -> Any:
    return api.client.get("/v1/manifest-conflicts", params=params, headers=api.headers(role))


def next_after(response: Any) -> str | None:
    link: str | None = response.headers.get("link")
    if link is None:
        return None
    found = re.fullmatch(r'<(/v1/manifest-conflicts\?[^>]*)>; rel="next"', link)
    assert found, link
    (after,) = re.findall(r"[?&]after=([^&]+)", found.group(1))
    return str(after)


def flood(api: Api, count: int) -> tuple[str, str]:
    """The agency lists ``count`` travelers on EE's flight; ZZ re-lists them all on its own
    with other names (each a conflict). Returns (EE's flight, ZZ's flight)."""
    api.keys["officer_zz"] = api.services.keys.create(Role.OFFICER, "ZZ desk", carrier="ZZ")[1]
    theirs = api.create_flight(carrier="EE")["id"]
    put(api, theirs, [manifest_row(f"EEA{i:05d}", "REAL") for i in range(count)], "admin")
    mine = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    return theirs, mine


def test_one_upload_opens_at_most_the_bound_and_the_carrier_cannot_tell(api: Api) -> None:
    """The attacker's upload disputes more documents than the bound: exactly the bound are
    opened, the rest store nothing (no conflict, details in force unchanged), the agency's
    audit event counts them, and ZZ's answer is the one an upload under the bound gets (a
    refusal would tell a carrier-bound key how many of its listed documents others hold)."""
    theirs, mine = flood(api, MAX_CONFLICTS_PER_UPLOAD + OVER)
    forged = [manifest_row(f"EEA{i:05d}", "FORGED") for i in range(MAX_CONFLICTS_PER_UPLOAD + OVER)]

    answer = put(api, mine, forged, "officer_zz")

    assert answer == {
        "added": MAX_CONFLICTS_PER_UPLOAD + OVER,
        "removed": 0,
        "updated": 0,
        "total": MAX_CONFLICTS_PER_UPLOAD + OVER,
        "flagged": [],
        "details_kept": None,
        "conflicts": None,
    }
    assert stored_conflicts(api) == MAX_CONFLICTS_PER_UPLOAD
    listing = api.client.get(f"/v1/flights/{theirs}/manifest", headers=api.headers("admin"))
    assert {t["surname"] for t in listing.json()} == {"REAL"}
    (event,) = [
        e.entry
        for e in api.services.audit.all_events()
        if e.entry.action == "manifest replace" and e.entry.resource_id == mine
    ]
    assert event.details["details_kept"] == MAX_CONFLICTS_PER_UPLOAD + OVER
    assert event.details["conflicts"] == MAX_CONFLICTS_PER_UPLOAD
    assert event.details["conflicts_over_limit"] == OVER

    # The same upload again refreshes the open ones and opens none: the bound holds.
    again = put(api, mine, forged, "officer_zz")
    assert again["conflicts"] is None
    assert stored_conflicts(api) == MAX_CONFLICTS_PER_UPLOAD

    # Under the bound, the answer is the same (nothing tells the carrier it was over).
    small = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    under = put(api, small, forged[:2], "officer_zz")
    assert {k: v for k, v in under.items() if k not in ("added", "total")} == {
        k: v for k, v in answer.items() if k not in ("added", "total")
    }


def test_pages_walk_the_whole_set_exactly_once_and_never_exceed_the_page(api: Api) -> None:
    _, mine = flood(api, MAX_CONFLICTS_PER_UPLOAD)
    put(
        api,
        mine,
        [manifest_row(f"EEA{i:05d}", "FORGED") for i in range(MAX_CONFLICTS_PER_UPLOAD)],
        "officer_zz",
    )
    # All 200 share one creation time: the id orders them within it.
    first = page(api)
    assert first.status_code == 200, first.text
    assert len(first.json()) == DEFAULT_PAGE
    assert next_after(first) is not None
    # A page is never larger than asked, nor than the maximum.
    assert page(api, limit=MAX_PAGE + 1).status_code == 422
    assert page(api, limit=0).status_code == 422
    everything = page(api, limit=MAX_PAGE)
    assert len(everything.json()) == MAX_CONFLICTS_PER_UPLOAD
    assert next_after(everything) is None

    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 7}
        if after is not None:
            params["after"] = after
        response = page(api, **params)
        assert response.status_code == 200, response.text
        assert 1 <= len(response.json()) <= 7
        seen += [c["id"] for c in response.json()]
        pages += 1
        if pages == 3:
            # A conflict opened mid-walk is newer than every one seen: it comes at the end.
            api.keys["officer_yy"] = api.services.keys.create(
                Role.OFFICER, "YY desk", carrier="YY"
            )[1]
            yy = api.create_flight(carrier="YY", role="officer_yy")["id"]
            put(api, yy, [manifest_row("EEA00000", "LATE")], "officer_yy")
        after = next_after(response)
        if after is None:
            break
    assert len(seen) == len(set(seen)) == MAX_CONFLICTS_PER_UPLOAD + 1
    assert pages == -(-(MAX_CONFLICTS_PER_UPLOAD + 1) // 7)
    assert [c["id"] for c in page(api, limit=MAX_PAGE).json()] == seen


def test_filters_by_flight_carrier_and_status(api: Api) -> None:
    theirs, mine = flood(api, 4)
    put(api, mine, [manifest_row(f"EEA{i:05d}", "FORGED") for i in range(4)], "officer_zz")
    api.keys["officer_yy"] = api.services.keys.create(Role.OFFICER, "YY desk", carrier="YY")[1]
    yy = api.create_flight(carrier="YY", role="officer_yy")["id"]
    put(api, yy, [manifest_row("EEA00001", "OTHER")], "officer_yy")

    assert len(page(api).json()) == 5
    assert {c["flight_id"] for c in page(api, flight_id=mine).json()} == {mine}
    assert len(page(api, flight_id=mine).json()) == 4
    assert page(api, flight_id=theirs).json() == []
    assert [c["proposed_by"] for c in page(api, carrier="yy").json()] == ["YY"]
    assert len(page(api, carrier="ZZ").json()) == 4
    assert page(api, carrier="Z Z").status_code == 422
    assert page(api, status="resolved").json() == []
    conflict = page(api, carrier="YY").json()[0]["id"]
    resolved = api.client.post(
        f"/v1/manifest-conflicts/{conflict}/resolution",
        json={"apply": "kept"},
        headers=api.headers("admin"),
    )
    assert resolved.status_code == 200, resolved.text
    assert [c["id"] for c in page(api, status="resolved").json()] == [conflict]
    assert len(page(api).json()) == 4
    assert len(page(api, status="all").json()) == 5
    assert page(api, status="closed").status_code == 422
    # Filters hold across pages: the cursor only says where the last page ended.
    first = page(api, carrier="ZZ", limit=3)
    second = page(api, carrier="ZZ", limit=3, after=next_after(first))
    assert len(first.json()) == 3
    assert [c["proposed_by"] for c in second.json()] == ["ZZ"]
    assert next_after(second) is None


def test_a_cursor_not_handed_out_is_a_400_problem(api: Api) -> None:
    for bad in ("x", "!!!!", "a" * 500, "bm90LWEtY3Vyc29y", "MjAyNi0xMi0wMVQxMDowMDowMHxhYmM"):
        response = page(api, after=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["type"] == "urn:entryexit:problem:invalid-cursor"
        assert bad not in problem["detail"]
    # Carriers and the agency's officers may not page the queue either.
    api.keys["officer_zz"] = api.services.keys.create(Role.OFFICER, "ZZ desk", carrier="ZZ")[1]
    for role in ("officer_zz", "officer", "auditor"):
        assert page(api, role).status_code == 403


def test_a_carrier_holds_at_most_its_bound_of_open_conflicts_across_uploads_and_flights(
    api: Api, monkeypatch: Any
) -> None:
    """The review's C1: 200 an upload was no bound for a carrier that spreads its flood over
    other documents and other flights. Its open conflicts in all are bounded too (small
    here: the real bound is ``MAX_OPEN_CONFLICTS_PER_CARRIER``); past it, its uploads open
    none, and answer as before."""
    monkeypatch.setattr(api.services.flights, "_max_open_conflicts", 5)
    _, first = flood(api, 10)
    second = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    third = api.create_flight(carrier="ZZ", role="officer_zz")["id"]

    put(api, first, [manifest_row(f"EEA{i:05d}", "FORGED") for i in range(3)], "officer_zz")
    answer = put(
        api, second, [manifest_row(f"EEA{i:05d}", "FORGED") for i in range(3, 8)], "officer_zz"
    )
    assert stored_conflicts(api) == 5
    assert answer["conflicts"] is None
    put(api, third, [manifest_row(f"EEA{i:05d}", "FORGED") for i in range(8, 10)], "officer_zz")
    assert stored_conflicts(api) == 5
    (event,) = [
        e.entry
        for e in api.services.audit.all_events()
        if e.entry.action == "manifest replace" and e.entry.resource_id == second
    ]
    assert event.details["conflicts"] == 2
    assert event.details["conflicts_over_limit"] == 3
    # Its open ones are still brought up to date by a later upload (no new one needed).
    put(api, first, [manifest_row(f"EEA{i:05d}", "AGAIN") for i in range(3)], "officer_zz")
    assert stored_conflicts(api) == 5
