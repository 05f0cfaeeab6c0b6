"""A carrier's manifest cannot rewrite what another carrier (or the agency) said of a
document: first carrier wins, and the other's details wait for the agency as a conflict.

Documents are shared across flights (a traveler connects from one carrier to another), so a
manifest may name a document another carrier's flight holds. The attacker is a partner whose
key is bound to carrier ZZ: it lists an EE traveler's document on its own flight with a new
name and citizenship class, to mislead EE's officers or shorten the traveler's retention; or
it lists the passport first, before EE does, so that its details are the ones in force.
"""

from __future__ import annotations

from typing import Any

from entryexit.api.metrics_registry import REGISTRY
from entryexit.domain.access import Role
from entryexit.domain.model import AGENCY
from tests.integration.api.conftest import FOREIGN_STATE, Api, manifest_row


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
    before = conflicts_counted()
    change = upload(api, mine, [forged, manifest_row("ZZB333", "OWN")], "officer_zz")

    # The carrier is not told (see the P1 tests below); the agency's trail and metric are.
    assert (change["details_kept"], change["conflicts"]) == (None, None)
    assert conflicts_counted() == before + 1  # the metric an alert watches
    assert listed(api, theirs)["EEA111"] == ("REAL", "foreign_national")
    assert listed(api, mine)["EEA111"] == ("REAL", "foreign_national")
    (event,) = [
        e.entry
        for e in api.services.audit.all_events()
        if e.entry.action == "manifest replace" and e.entry.resource_id == mine
    ]
    assert event.details["details_kept"] == 1
    assert event.details["conflicts"] == 1
    (conflict,) = conflicts(api)
    assert (conflict["proposed_by"], conflict["held_by"]) == ("ZZ", AGENCY)
    assert conflict["kept"]["surname"] == "REAL"
    assert conflict["proposed"]["surname"] == "HACKED"


def test_a_partner_still_corrects_its_own_travelers_and_the_agency_anyones(api: Api) -> None:
    api.keys["officer_zz"] = api.services.keys.create(Role.OFFICER, "ZZ desk", carrier="ZZ")[1]
    theirs = api.create_flight(carrier="EE")["id"]
    upload(api, theirs, [manifest_row("EEA111", "REAL")], "admin")
    mine = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    upload(api, mine, [manifest_row("ZZB333", "TYPO")], "officer_zz")

    upload(api, mine, [manifest_row("ZZB333", "FIXED")], "officer_zz")
    assert conflicts(api) == []
    assert listed(api, mine)["ZZB333"] == ("FIXED", "foreign_national")

    # The agency's own (unbound) key is not a partner: its correction applies everywhere.
    upload(api, mine, [manifest_row("EEA111", "CORRECTED")], "admin")
    assert listed(api, theirs)["EEA111"] == ("CORRECTED", "foreign_national")


def conflicts_counted() -> float:
    return REGISTRY.get_sample_value("entryexit_manifest_conflicts_total") or 0.0


def conflicts(api: Api, role: str = "admin", status: str = "open") -> list[dict[str, Any]]:
    response = api.client.get(
        "/v1/manifest-conflicts", params={"status": status}, headers=api.headers(role)
    )
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def resolve(api: Api, conflict_id: str, side: str, role: str = "admin") -> Any:
    return api.client.post(
        f"/v1/manifest-conflicts/{conflict_id}/resolution",
        json={"apply": side},
        headers=api.headers(role),
    )


def carrier_keys(api: Api) -> None:
    for carrier in ("EE", "ZZ"):
        api.keys[f"officer_{carrier.lower()}"] = api.services.keys.create(
            Role.OFFICER, f"{carrier} desk", carrier=carrier
        )[1]


def test_a_carrier_that_lists_a_passport_first_does_not_get_the_last_word(api: Api) -> None:
    """ZZ lists EE's traveler before EE does, with its own details. EE's manifest does not
    silently yield to them, nor overwrite them: a conflict waits for the agency, which applies
    EE's; ZZ's later manifests cannot undo that."""
    carrier_keys(api)
    squatter = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    forged = {**manifest_row("EEA111", "SQUAT"), "citizenship_class": "citizen"}
    upload(api, squatter, [forged], "officer_zz")
    real = api.create_flight(carrier="EE", role="officer_ee")["id"]

    change = upload(api, real, [manifest_row("EEA111", "REAL")], "officer_ee")

    assert (change["details_kept"], change["conflicts"]) == (None, None)
    # Until the agency decides, nobody's rewrite applies: the details in force stay.
    assert listed(api, real)["EEA111"] == ("SQUAT", "citizen")
    (conflict,) = conflicts(api)
    assert (conflict["proposed_by"], conflict["held_by"]) == ("EE", "ZZ")
    assert conflict["document"] == {"issuing_state": FOREIGN_STATE, "number": "EEA111"}
    assert (conflict["kept"]["surname"], conflict["proposed"]["surname"]) == ("SQUAT", "REAL")
    # Carriers, and officers of the agency, may not see or settle the queue.
    for role in ("officer_ee", "officer_zz", "officer", "auditor"):
        assert resolve(api, conflict["id"], "proposed", role).status_code == 403
        listing = api.client.get("/v1/manifest-conflicts", headers=api.headers(role))
        assert listing.status_code == 403

    resolved = resolve(api, conflict["id"], "proposed")
    assert resolved.status_code == 200, resolved.text
    assert listed(api, real)["EEA111"] == ("REAL", "foreign_national")
    assert conflicts(api) == []
    assert [c["resolution"] for c in conflicts(api, status="all")] == ["proposed"]
    assert resolve(api, conflict["id"], "kept").status_code == 404  # closed
    (event,) = [
        e.entry
        for e in api.services.audit.all_events()
        if e.entry.action == "manifest conflict resolve"
    ]
    assert event.resource_id == conflict["id"]
    assert event.details["applied"] == "proposed"
    assert (event.details["proposed_by"], event.details["held_by"]) == ("EE", "ZZ")
    assert "REAL" not in str(event.details)
    assert "SQUAT" not in str(event.details)

    # The squatter sends its details again: they are a new conflict, not the details.
    again = upload(api, squatter, [forged], "officer_zz")
    assert again["conflicts"] is None
    assert listed(api, real)["EEA111"] == ("REAL", "foreign_national")
    (second,) = conflicts(api)
    assert (second["proposed_by"], second["held_by"]) == ("ZZ", "EE")
    assert resolve(api, second["id"], "kept").status_code == 200
    assert listed(api, squatter)["EEA111"] == ("REAL", "foreign_national")
    # EE set them now, so EE may correct them itself.
    upload(api, real, [manifest_row("EEA111", "REALER")], "officer_ee")
    assert listed(api, squatter)["EEA111"] == ("REALER", "foreign_national")


def test_an_honest_first_carriers_typo_is_fixed_by_it_or_the_agency(api: Api) -> None:
    carrier_keys(api)
    first = api.create_flight(carrier="EE", role="officer_ee")["id"]
    upload(api, first, [manifest_row("EEA111", "TYPP")], "officer_ee")
    second = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    # The connecting carrier has it right; it does not get to rewrite EE's record, but the
    # agency sees the disagreement.
    upload(api, second, [manifest_row("EEA111", "TYPO")], "officer_zz")
    assert len(conflicts(api)) == 1
    assert listed(api, first)["EEA111"] == ("TYPP", "foreign_national")
    # A conflict of the same carrier and document is brought up to date, not repeated.
    upload(api, second, [manifest_row("EEA111", "TYPO2")], "officer_zz")
    (conflict,) = conflicts(api)
    assert conflict["proposed"]["surname"] == "TYPO2"
    # The agency's own manifest corrects anyone, and settles the conflict with it.
    upload(api, first, [manifest_row("EEA111", "FIXED")], "admin")
    assert listed(api, second)["EEA111"] == ("FIXED", "foreign_national")
    assert conflicts(api) == []
    assert [c["resolution"] for c in conflicts(api, status="all")] == ["superseded"]


def test_a_supervisor_reviews_conflicts_and_the_cli_lists_and_resolves_them(
    api: Api,
) -> None:
    carrier_keys(api)
    api.keys["supervisor"] = api.services.keys.create(Role.SUPERVISOR, "shift lead")[1]
    theirs = api.create_flight(carrier="EE", role="officer_ee")["id"]
    upload(api, theirs, [manifest_row("EEA111", "REAL")], "officer_ee")
    mine = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    upload(api, mine, [manifest_row("EEA111", "OTHER")], "officer_zz")
    (conflict,) = conflicts(api, role="supervisor")
    assert resolve(api, conflict["id"], "kept", role="supervisor").status_code == 200
    assert listed(api, mine)["EEA111"] == ("REAL", "foreign_national")
    assert resolve(api, "no-such-conflict", "kept").status_code == 404


def test_erasing_a_traveler_takes_the_details_carriers_proposed_for_him(api: Api) -> None:
    # A conflict holds a carrier's details for the traveler's document (sealed) and names him:
    # an erasure that left it would leave a row of his behind.
    carrier_keys(api)
    api.keys["supervisor"] = api.services.keys.create(Role.SUPERVISOR, "shift")[1]
    upload(
        api,
        api.create_flight(carrier="ZZ", role="officer_zz")["id"],
        [manifest_row("EEA111", "SQUAT")],
        "officer_zz",
    )
    real = api.create_flight(carrier="EE", role="officer_ee")["id"]
    upload(api, real, [manifest_row("EEA111", "REAL")], "officer_ee")
    assert len(conflicts(api)) == 1
    erased = api.client.post(
        "/v1/erasures",
        json={"issuing_state": FOREIGN_STATE, "number": "EEA111", "reason": "court_order"},
        headers=api.headers("supervisor"),
    )
    assert erased.status_code == 201, erased.text
    assert erased.json()["erased"]["manifest_conflicts"] == 1
    assert conflicts(api, status="all") == []
