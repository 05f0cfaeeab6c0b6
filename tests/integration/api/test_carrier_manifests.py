"""A carrier's manifest cannot rewrite what another carrier's flight says of its travelers.

Documents are shared across flights (a traveler connects from one carrier to another), so a
manifest may name a document another carrier's flight holds. The attacker is a partner whose
key is bound to carrier ZZ: it lists an EE traveler's document on its own flight with a new
name and citizenship class, to mislead EE's officers or shorten the traveler's retention.
"""

from __future__ import annotations

from typing import Any

from entryexit.domain.access import Role
from tests.integration.api.conftest import Api, manifest_row


def upload(api: Api, flight_id: str, rows: list[dict[str, str]], role: str) -> Any:
    response = api.client.put(
        f"/v1/flights/{flight_id}/manifest", json={"travelers": rows}, headers=api.headers(role)
    )
    assert response.status_code == 200, response.text
    return response.json()


def listed(api: Api, flight_id: str) -> dict[str, tuple[str, str]]:
    response = api.client.get(f"/v1/flights/{flight_id}/manifest", headers=api.headers("admin"))
    assert response.status_code == 200, response.text
    return {
        t["document"]["number"]: (t["surname"], t["citizenship_class"]) for t in response.json()
    }


def test_a_partner_cannot_rewrite_another_carriers_traveler(api: Api) -> None:
    api.keys["officer_zz"] = api.services.keys.create(Role.OFFICER, "ZZ desk", carrier="ZZ")[1]
    theirs = api.create_flight(carrier="EE")["id"]
    upload(api, theirs, [manifest_row("EEA111", "REAL"), manifest_row("EEA222", "OTHER")], "admin")
    mine = api.create_flight(carrier="ZZ", role="officer_zz")["id"]

    forged = {**manifest_row("EEA111", "HACKED"), "citizenship_class": "citizen"}
    change = upload(api, mine, [forged, manifest_row("ZZB333", "OWN")], "officer_zz")

    assert change["details_kept"] == 1
    assert listed(api, theirs)["EEA111"] == ("REAL", "foreign_national")
    assert listed(api, mine)["EEA111"] == ("REAL", "foreign_national")
    (event,) = [
        e.entry
        for e in api.services.audit.all_events()
        if e.entry.action == "manifest replace" and e.entry.resource_id == mine
    ]
    assert event.details["details_kept"] == 1


def test_a_partner_still_corrects_its_own_travelers_and_the_agency_anyones(api: Api) -> None:
    api.keys["officer_zz"] = api.services.keys.create(Role.OFFICER, "ZZ desk", carrier="ZZ")[1]
    theirs = api.create_flight(carrier="EE")["id"]
    upload(api, theirs, [manifest_row("EEA111", "REAL")], "admin")
    mine = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    upload(api, mine, [manifest_row("ZZB333", "TYPO")], "officer_zz")

    change = upload(api, mine, [manifest_row("ZZB333", "FIXED")], "officer_zz")
    assert change["details_kept"] == 0
    assert listed(api, mine)["ZZB333"] == ("FIXED", "foreign_national")

    # The agency's own (unbound) key is not a partner: its correction applies everywhere.
    upload(api, mine, [manifest_row("EEA111", "CORRECTED")], "admin")
    assert listed(api, theirs)["EEA111"] == ("CORRECTED", "foreign_national")
