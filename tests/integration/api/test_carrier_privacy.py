"""A carrier sees, and its flight decides by, only what the carrier itself sent (session 8's
probe, P1 and P4).

"First carrier wins" keeps a document's details in force when another carrier (or the agency)
set them first. The attacker is a partner whose key is bound to carrier ZZ and who holds a
passport number, from a breach or a codeshare: it lists the number on its own flight with
made-up details and reads its own flight's manifest back (P1: the name another carrier set,
whether the agency enrolled a photo, and in the upload's answer whether the number is known at
all); or it lists the passport first, before EE does, with a birth date that makes the
traveler exempt, so that EE's gallery leaves him out and every EE gate capture is manual (P4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from entryexit.domain.access import Role
from tests.conftest import lfw_image
from tests.integration.api.conftest import FOREIGN_STATE, Api, capture, enrol, manifest_row


def carrier_keys(api: Api) -> None:
    for carrier in ("EE", "ZZ"):
        api.keys[f"officer_{carrier.lower()}"] = api.services.keys.create(
            Role.OFFICER, f"{carrier} desk", carrier=carrier
        )[1]


def upload(api: Api, flight_id: str, rows: list[dict[str, str]], role: str) -> Any:
    response = api.client.put(
        f"/v1/flights/{flight_id}/manifest", json={"travelers": rows}, headers=api.headers(role)
    )
    assert response.status_code == 200, response.text
    return response.json()


def listing(api: Api, flight_id: str, role: str, path: str = "manifest") -> dict[str, Any]:
    response = api.client.get(f"/v1/flights/{flight_id}/{path}", headers=api.headers(role))
    assert response.status_code == 200, response.text
    return {t["traveler_ref"]: t for t in response.json()}


def by_number(rows: dict[str, Any]) -> dict[str, Any]:
    return {t["document"]["number"]: t for t in rows.values()}


def test_a_carrier_reads_back_only_what_it_sent_never_anothers_details(
    api: Api, lfw_dir: Path
) -> None:
    carrier_keys(api)
    theirs = api.create_flight(carrier="EE", role="officer_ee")["id"]
    upload(api, theirs, [manifest_row("X1234567", "DOE")], "officer_ee")
    # A traveler the agency itself listed, and enrolled a reference photo for.
    agencys = api.create_flight(carrier="EE")["id"]
    upload(api, agencys, [manifest_row("P6666666", "AGENCY")], "admin")
    enrol(api, "P6666666", lfw_image(lfw_dir, "Colin_Powell", 1))

    mine = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    made_up = {**manifest_row("X1234567", "X"), "given_names": "Y", "date_of_birth": "2000-01-01"}
    made_up_too = {**manifest_row("P6666666", "X"), "given_names": "Y"}
    unknown = {**manifest_row("X7654321", "X"), "given_names": "Y"}
    answer = upload(api, mine, [made_up, made_up_too, unknown], "officer_zz")

    # The answer is the same whether the numbers are known elsewhere or not.
    assert answer == {
        "added": 3,
        "removed": 0,
        "updated": 0,
        "total": 3,
        "flagged": [],
        "details_kept": None,
        "conflicts": None,
    }
    fresh = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    assert upload(api, fresh, [unknown], "officer_zz") == {**answer, "added": 1, "total": 1}
    known = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    assert upload(api, known, [made_up], "officer_zz") == {**answer, "added": 1, "total": 1}

    for path in ("manifest", "outstanding"):
        seen = by_number(listing(api, mine, "officer_zz", path))
        assert {n: (t["surname"], t["given_names"]) for n, t in seen.items()} == {
            "X1234567": ("X", "Y"),
            "P6666666": ("X", "Y"),
            "X7654321": ("X", "Y"),
        }, path
        # Whether the agency holds a photo is not the carrier's to know.
        assert {t["has_photo"] for t in seen.values()} == {None}
        assert "DOE" not in str(seen)
        assert "AGENCY" not in str(seen)

    # The agency sees the details in force, the photo, and the conflicts it must settle.
    agency_view = by_number(listing(api, mine, "admin"))
    assert agency_view["X1234567"]["surname"] == "DOE"
    assert agency_view["P6666666"]["has_photo"] is True
    open_conflicts = api.client.get("/v1/manifest-conflicts", headers=api.headers("admin"))
    assert {c["document"]["number"] for c in open_conflicts.json()} == {"X1234567", "P6666666"}
    # EE's own listing still shows what EE sent.
    assert by_number(listing(api, theirs, "officer_ee"))["X1234567"]["surname"] == "DOE"


def test_a_carrier_sees_nothing_of_a_listing_it_did_not_send(api: Api) -> None:
    """The agency sent the manifest of ZZ's flight itself: ZZ's key sees its travelers' refs
    and documents' states only, not the agency's details."""
    carrier_keys(api)
    flight = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    upload(api, flight, [manifest_row("Q1234567", "SECRET")], "admin")

    (row,) = listing(api, flight, "officer_zz").values()
    assert row["document"] == {"issuing_state": FOREIGN_STATE, "number": ""}
    assert (row["surname"], row["given_names"], row["citizenship_class"]) == ("", "", "")
    assert row["has_photo"] is None
    # ZZ sends its own manifest: it sees that, while the agency's details stay in force.
    upload(api, flight, [manifest_row("Q1234567", "OWN")], "officer_zz")
    (row,) = listing(api, flight, "officer_zz").values()
    assert (row["surname"], row["document"]["number"]) == ("OWN", "Q1234567")
    (row,) = listing(api, flight, "admin").values()
    assert row["surname"] == "SECRET"


def test_a_carrier_that_claims_a_passport_first_cannot_make_a_rivals_traveler_exempt(
    api: Api, lfw_dir: Path
) -> None:
    """The probe's p4-preclaim.sh: ZZ lists EE's traveler first, born 1940 (exempt by age);
    EE's true manifest says 1990. EE's gallery holds him and EE's gate matches him."""
    carrier_keys(api)
    squatter = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    old = {**manifest_row("P6666666", "REAL"), "date_of_birth": "1940-05-05"}
    upload(api, squatter, [old], "officer_zz")
    real = api.create_flight(carrier="EE", role="officer_ee")["id"]
    upload(api, real, [{**old, "date_of_birth": "1990-05-05"}], "officer_ee")
    enrol(api, "P6666666", lfw_image(lfw_dir, "Colin_Powell", 1))

    # Staged by the agency: a carrier's key is not told who has a photo (the gallery is the
    # same whoever stages it: the flight's carrier decides).
    staged = api.client.post(f"/v1/flights/{real}/gallery", headers=api.headers("admin"))
    assert staged.status_code == 200, staged.text
    assert (staged.json()["travelers"], staged.json()["with_photo"]) == (1, 1)
    decided = capture(api, real, lfw_image(lfw_dir, "Colin_Powell", 8))
    assert decided.status_code == 200, decided.text
    assert decided.json()["decision"] == "match"
    # ZZ's own flight still goes by ZZ's details (exempt), and the agency's view is unchanged.
    zz = api.client.post(f"/v1/flights/{squatter}/gallery", headers=api.headers("admin"))
    assert zz.json()["with_photo"] == 0
    (row,) = listing(api, real, "admin").values()
    assert row["surname"] == "REAL"


def test_the_agencys_details_still_govern_every_flight(api: Api, lfw_dir: Path) -> None:
    """What the agency set is not a rival's claim: a carrier's own copy does not override it
    (here the agency knows the traveler is exempt; EE's manifest says otherwise)."""
    carrier_keys(api)
    agencys = api.create_flight(carrier="EE")["id"]
    old = {**manifest_row("P6666666", "REAL"), "date_of_birth": "1940-05-05"}
    upload(api, agencys, [old], "admin")
    real = api.create_flight(carrier="EE", role="officer_ee")["id"]
    upload(api, real, [{**old, "date_of_birth": "1990-05-05"}], "officer_ee")
    enrol(api, "P6666666", lfw_image(lfw_dir, "Colin_Powell", 1))

    staged = api.client.post(f"/v1/flights/{real}/gallery", headers=api.headers("admin"))
    assert staged.status_code == 200, staged.text
    assert staged.json()["with_photo"] == 0


def opt_out(api: Api, flight_id: str, number: str) -> None:
    response = api.client.post(
        f"/v1/flights/{flight_id}/opt-outs",
        json={"issuing_state": FOREIGN_STATE, "number": number, "gate": "G1"},
        headers=api.headers("gate"),
    )
    assert response.status_code in (200, 201), response.text


def opt_out_event(api: Api, flight_id: str) -> dict[str, Any]:
    (event,) = [
        e.entry
        for e in api.services.audit.all_events()
        if e.entry.action == "opt-out" and e.entry.resource_id == flight_id
    ]
    return dict(event.details)


def test_a_rivals_listing_does_not_keep_an_opted_out_travelers_templates(
    api: Api, lfw_dir: Path
) -> None:
    """The probe's P2: ZZ lists EE's traveler on a ZZ flight still to depart (refused: EE set
    the details); he opts out at EE's gate. His templates go, and the event says why ZZ's
    listing kept nothing."""
    carrier_keys(api)
    real = api.create_flight(carrier="EE", role="officer_ee")["id"]
    upload(api, real, [manifest_row("X1234567", "DOE")], "officer_ee")
    rival = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    upload(api, rival, [manifest_row("X1234567", "X")], "officer_zz")
    enrol(api, "X1234567", lfw_image(lfw_dir, "Colin_Powell", 1))

    opt_out(api, real, "X1234567")

    details = opt_out_event(api, real)
    assert details["deleted_reference_templates"] == 1
    assert "kept_reference_templates" not in details
    assert details["disputed_listings"] == rival
    assert "DOE" not in str(details)
    assert "X1234567" not in str(details)


def test_a_first_claim_a_carrier_disputes_does_not_keep_templates_either(
    api: Api, lfw_dir: Path
) -> None:
    """ZZ claims the passport first (its details in force), EE's manifest disputes them: EE's
    traveler opts out at EE's gate, and ZZ's listing keeps nothing."""
    carrier_keys(api)
    rival = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    upload(api, rival, [manifest_row("X1234567", "X")], "officer_zz")
    real = api.create_flight(carrier="EE", role="officer_ee")["id"]
    upload(api, real, [manifest_row("X1234567", "DOE")], "officer_ee")
    enrol(api, "X1234567", lfw_image(lfw_dir, "Colin_Powell", 1))

    opt_out(api, real, "X1234567")

    details = opt_out_event(api, real)
    assert details["deleted_reference_templates"] == 1
    assert details["disputed_listings"] == rival


def test_an_undisputed_later_flight_still_keeps_the_templates_and_the_event_says_so(
    api: Api, lfw_dir: Path
) -> None:
    carrier_keys(api)
    real = api.create_flight(carrier="EE", role="officer_ee")["id"]
    upload(api, real, [manifest_row("X1234567", "DOE")], "officer_ee")
    onward = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    upload(api, onward, [manifest_row("X1234567", "DOE")], "officer_zz")  # the same details
    enrol(api, "X1234567", lfw_image(lfw_dir, "Colin_Powell", 1))

    opt_out(api, real, "X1234567")

    details = opt_out_event(api, real)
    assert details["deleted_reference_templates"] == 0
    assert details["kept_reference_templates"] == 1
    assert details["kept_for_flights"] == onward
    assert "disputed_listings" not in details
