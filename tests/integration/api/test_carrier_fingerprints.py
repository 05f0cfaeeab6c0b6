"""A carrier's word does not decide the agency's biometric collection (session 9's probe, C1;
and L1).

The attacker is a partner whose desk key is bound to carrier ZZ. It lists a passport number
on its own flight before EE lists the same traveler, with a birth date of its choosing: an
adult's for EE's 7-year-old (so that the officer takes the child's prints, which stay enrolled
and matched after the agency corrects the date), or an 80-year-old's for a traveler it
colludes with (so that the agency can take no prints from him on EE's flight). The agency's
own officer enrols; a supervisor resolves conflicts; real engine, real FVC2002 prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from entryexit.adapters.storage.tables import FingerprintTemplateRow
from tests.integration.api.conftest import HOME_STATE, Api, manifest_row
from tests.integration.api.test_carrier_manifests import carrier_keys, conflicts, resolve
from tests.integration.api.test_carrier_privacy import upload
from tests.integration.api.test_errors_and_roles import assert_problem
from tests.integration.api.test_fingerprints import fvc, prints, send, stored_prints

__all__ = ["fvc"]  # the data set fixture, shared

NUMBER = "C7777777"


def row(born: str, surname: str = "TRAVELER", **changes: str) -> dict[str, str]:
    return {**manifest_row(NUMBER, surname), "date_of_birth": born, **changes}


def first_claim(api: Api, squatter_born: str, real_born: str) -> tuple[str, str]:
    """ZZ lists the passport first with its date; EE then lists its real passenger (a
    conflict opens). Returns (EE's flight, the conflict's id)."""
    carrier_keys(api)
    squatter = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    upload(api, squatter, [row(squatter_born, "SQUATTER")], "officer_zz")
    real = api.create_flight(carrier="EE", role="officer_ee")["id"]
    upload(api, real, [row(real_born, "REAL")], "officer_ee")
    (conflict,) = conflicts(api)
    return real, str(conflict["id"])


def enrol(api: Api, fvc: Path, name: str = "103_1") -> Any:
    return send(api, "/v1/documents/fingerprints", prints(fvc, name), [2], NUMBER)


def verify(api: Api, fvc: Path, name: str = "103_2") -> Any:
    return send(api, "/v1/fingerprint-verifications", prints(fvc, name), [2], NUMBER)


def purge_events(api: Api) -> list[dict[str, Any]]:
    return [
        dict(e.entry.details)
        for e in api.services.audit.events(limit=200)
        if e.entry.action == "fingerprint purge"
    ]


def test_a_child_listed_as_an_adult_by_another_carrier_is_not_fingerprinted(
    api: Api, fvc: Path
) -> None:
    """The probe's c1-child-prints.sh: ZZ says 1990, EE says 2019. While the conflict is open
    the strictest side wins (no prints); once the agency applies EE's date, still none."""
    _, conflict_id = first_claim(api, "1990-03-03", "2019-03-03")
    refused = enrol(api, fvc)
    assert_problem(refused, 409, "conflict")
    assert f"resolve manifest conflict {conflict_id} first" in refused.json()["detail"]
    assert stored_prints(api) == 0
    assert resolve(api, conflict_id, "proposed").status_code == 200
    assert_problem(enrol(api, fvc), 409, "conflict")
    assert stored_prints(api) == 0


def test_a_carrier_claiming_first_cannot_exempt_a_rivals_passenger_for_good(
    api: Api, fvc: Path
) -> None:
    """The other direction: ZZ pre-claims EE's passenger born 1940 (over the policy's max age).
    The enrolment waits for the agency, which applies EE's 1990 date: prints are taken."""
    _, conflict_id = first_claim(api, "1940-03-03", "1990-03-03")
    assert_problem(enrol(api, fvc), 409, "conflict")
    assert resolve(api, conflict_id, "proposed").status_code == 200
    assert enrol(api, fvc).status_code == 201
    assert verify(api, fvc).json()["decision"] == "match"


def test_the_agencys_own_details_decide_alone(api: Api, fvc: Path) -> None:
    """A document the agency listed (details_by AGENCY): a carrier's proposal of an exempt
    birth date opens a conflict but does not stop the enrolment."""
    carrier_keys(api)
    agencys = api.create_flight(carrier="EE")["id"]
    upload(api, agencys, [row("1990-03-03")], "admin")
    squatter = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    upload(api, squatter, [row("2019-03-03", "SQUATTER")], "officer_zz")
    assert len(conflicts(api)) == 1
    assert enrol(api, fvc).status_code == 201


def test_prints_enrolled_before_the_agency_corrects_the_age_are_never_used_again(
    api: Api, fvc: Path
) -> None:
    """Prints enrolled under ZZ's adult date (before EE listed the child): matched while that
    date is in force; the agency applying EE's 2019 date deletes them in the same
    transaction (audited with a count), so nothing is compared afterwards."""
    carrier_keys(api)
    squatter = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    upload(api, squatter, [row("1990-03-03", "SQUATTER")], "officer_zz")
    assert enrol(api, fvc).status_code == 201
    real = api.create_flight(carrier="EE", role="officer_ee")["id"]
    upload(api, real, [row("2019-03-03", "REAL")], "officer_ee")
    (conflict,) = conflicts(api)
    assert resolve(api, conflict["id"], "proposed").status_code == 200
    assert stored_prints(api) == 0
    (event,) = purge_events(api)
    assert (event["templates"], event["reason"]) == (1, "exempt")
    assert_problem(verify(api, fvc), 404, "not-found")


def test_a_carriers_own_correction_refuses_the_prints_but_deletes_none(api: Api, fvc: Path) -> None:
    """EE lists its adult passenger, the officer enrols him; EE's desk then re-sends the
    manifest with a child's date (its own details: no conflict). Review H1: a carrier's word
    alone deletes nothing the agency enrolled, so the purge keeps the prints; but no 1:1 and
    no flight search uses them. Once the agency states the date, the purge deletes them and
    counts them in the privacy report."""
    carrier_keys(api)
    flight = api.create_flight(carrier="EE", role="officer_ee")["id"]
    upload(api, flight, [row("1990-03-03")], "officer_ee")
    assert enrol(api, fvc).status_code == 201
    assert verify(api, fvc).json()["decision"] == "match"
    upload(api, flight, [row("2019-03-03")], "officer_ee")

    refused = verify(api, fvc)
    assert_problem(refused, 409, "conflict")
    assert "takes no fingerprints" in refused.json()["detail"]
    searched = api.client.post(
        f"/v1/flights/{flight}/fingerprint-searches",
        files=prints(fvc, "103_2"),
        data={"fingers": ["2"], "ppi": "500"},
        headers=api.headers("officer"),
    )
    assert searched.status_code == 200, searched.text
    assert (searched.json()["searched"], searched.json()["candidates"]) == (0, [])

    assert "exempt_fingerprint_templates" not in api.services.purge.run()
    assert stored_prints(api) == 1
    # The agency lists the traveler on its own flight (its details now): they decide.
    agencys = api.create_flight(carrier="EE")["id"]
    upload(api, agencys, [row("2019-03-03", "CHECKED")], "admin")
    assert api.services.purge.preview(api.services.clock())["exempt_fingerprint_templates"] == 1
    assert api.services.purge.run()["exempt_fingerprint_templates"] == 1
    assert stored_prints(api) == 0
    report = api.client.get("/v1/privacy/report", headers=api.headers("auditor")).json()
    assert report["purges"]["deleted"]["exempt_fingerprint_templates"] == 1


@pytest.mark.parametrize(
    ("document_type", "taken"),
    [("id_card", False), ("passport", False), ("visa", True), ("permanent_resident_card", True)],
)
def test_a_home_state_identity_card_shows_its_holder_a_citizen(
    api: Api, fvc: Path, document_type: str, taken: bool
) -> None:
    """Review L1: a carrier declares a home-state-issued identity card foreign (nationality
    and class); the holder is a citizen and gives no prints, as with the home state's
    passport. A visa or a residence card the home state issued shows no citizenship."""
    carrier_keys(api)
    flight = api.create_flight(carrier="EE", role="officer_ee")["id"]
    listed = {
        **row("1990-03-03"),
        "issuing_state": HOME_STATE,
        "document_type": document_type,
        "nationality": "FRA",
    }
    answer = api.client.put(
        f"/v1/flights/{flight}/manifest",
        json={"travelers": [listed]},
        headers=api.headers("officer_ee"),
    )
    if not taken:
        # Refused at the upload: a home-state passport makes its holder a citizen (declared
        # foreign), and a home-state identity card held by a foreign national is
        # contradictory (an identity card is issued to the state's nationals).
        assert answer.status_code == 422, answer.text
        field = "nationality" if document_type == "id_card" else "citizenship_class"
        assert f"'{field}' must be" in answer.json()["detail"]
        return
    assert answer.status_code == 200, answer.text
    enrolled = send(
        api,
        "/v1/documents/fingerprints",
        prints(fvc, "103_1"),
        [2],
        NUMBER,
        issuing_state=HOME_STATE,
    )
    assert enrolled.status_code == (201 if taken else 409), enrolled.text
    with api.services.uow.engine.connect() as connection:
        held = connection.scalars(select(FingerprintTemplateRow.id)).all()
    assert len(held) == (1 if taken else 0)
