"""Whose word a traveler's class is (session 8's "noticed, not fixed"), on both databases.

The attacker is a partner whose key is bound to carrier ZZ. "First carrier wins" keeps a
document's details in force when ZZ listed the passport first; ZZ's stated class then must not
decide anything on another carrier's (EE's) flight: not how long EE's encounter records are
kept, and not whether EE's traveler may decline the camera (the rule the flight's gallery
staging follows since P4). A carrier's word that a foreign passport holder is a citizen deletes
no prints (review H1); the agency's manifest restating that class, unchanged, is the agency's
word, and does. And a carrier's key staging its flight's gallery is not told whom the agency
holds a photo of.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from entryexit.adapters.storage.tables import CaptureRow
from entryexit.services.policies import shipped_policy_text
from tests.conftest import lfw_image
from tests.integration.api.conftest import FOREIGN_STATE, Api, capture, enrol, manifest_row
from tests.integration.api.test_carrier_privacy import carrier_keys, upload
from tests.integration.api.test_fingerprints import fvc, prints, send, stored_prints

__all__ = ["fvc"]  # the data set's fixture, used here by name


def purges(api: Api) -> list[Any]:
    return [
        e.entry
        for e in api.services.audit.events(limit=200)
        if e.entry.action == "fingerprint purge"
    ]


def test_the_agency_restating_a_carriers_citizen_class_deletes_the_prints_a_carrier_cannot(
    api: Api, fvc: Path
) -> None:
    carrier_keys(api)
    flight = api.create_flight(carrier="EE", role="officer_ee")["id"]
    visitor = manifest_row("FP1", "VISITOR")
    upload(api, flight, [visitor], "officer_ee")
    enrolled = send(api, "/v1/documents/fingerprints", prints(fvc, "101_1"), [2], "FP1")
    assert enrolled.status_code == 201, enrolled.text
    traveler = enrolled.json()["traveler_ref"]

    # EE says he is a citizen (a dual national on the foreign passport); EE says it again;
    # ZZ says the same on its own flight. A carrier's word deletes nothing (review H1).
    dual = {**visitor, "citizenship_class": "citizen"}
    upload(api, flight, [dual], "officer_ee")
    upload(api, flight, [dual], "officer_ee")
    rival = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    upload(api, rival, [dual], "officer_zz")
    assert stored_prints(api) == 1
    assert purges(api) == []

    # The agency's manifest states the same class, unchanged: its word now, so the prints go
    # in that upload's transaction, audited with the agency's key as actor.
    upload(api, flight, [dual], "admin")
    assert stored_prints(api) == 0
    (gone,) = purges(api)
    assert (gone.outcome, gone.resource_id, gone.details["templates"], gone.details["cause"]) == (
        "ok",
        traveler,
        1,
        "manifest",
    )
    assert gone.actor_role == "admin"


def listed_first_by_a_rival(api: Api, rows: list[dict[str, str]], ee: list[dict[str, str]]) -> str:
    """ZZ lists the passports first (its details in force), then EE lists them on EE's
    flight with its own details (a conflict for the agency); returns EE's flight."""
    carrier_keys(api)
    squatter = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
    upload(api, squatter, rows, "officer_zz")
    real = api.create_flight(carrier="EE", role="officer_ee")["id"]
    upload(api, real, ee, "officer_ee")
    return str(real)


def test_a_rivals_class_does_not_set_how_long_anothers_encounters_are_kept(
    api: Api, lfw_dir: Path
) -> None:
    """ZZ states EE's foreign passenger a citizen: EE's encounter and capture records would
    be kept 336 and 12 hours (a citizen's) instead of 43,800 and 336 (EE's foreign national)."""
    foreign = manifest_row("P6666666", "REAL")
    real = listed_first_by_a_rival(api, [{**foreign, "citizenship_class": "citizen"}], [foreign])
    enrol(api, "P6666666", lfw_image(lfw_dir, "Colin_Powell", 1))
    staged = api.client.post(f"/v1/flights/{real}/gallery", headers=api.headers("admin"))
    assert staged.json()["with_photo"] == 1, staged.text

    decided = capture(api, real, lfw_image(lfw_dir, "Colin_Powell", 8))
    assert decided.json()["decision"] == "match", decided.text

    (encounter,) = api.services.flights.encounters(real)
    assert encounter.expires_at is not None
    assert encounter.expires_at - encounter.occurred_at == timedelta(hours=43800)
    with api.services.uow.engine.connect() as connection:
        ((received, expires),) = connection.execute(
            select(CaptureRow.received_at, CaptureRow.expires_at).where(
                CaptureRow.flight_id == real
            )
        ).all()
    assert expires is not None
    assert expires - received == timedelta(hours=336)


def opt_out(api: Api, flight_id: str, number: str) -> Any:
    return api.client.post(
        f"/v1/flights/{flight_id}/opt-outs",
        json={"issuing_state": FOREIGN_STATE, "number": number, "gate": "B7"},
        headers=api.headers("officer"),
    )


def test_a_rivals_class_does_not_decide_who_may_decline_on_anothers_flight(api: Api) -> None:
    """Under a policy that requires foreign nationals' capture: ZZ states EE's foreign
    passenger a citizen (he could decline) and EE's dual national a foreign national (he
    could not). EE's flight goes by what EE sent."""
    api.services.policies.load(shipped_policy_text("noncitizens-mandatory.toml"))
    foreign, dual = manifest_row("F1111111", "FOREIGN"), manifest_row("D2222222", "DUAL")
    dual_ee = {**dual, "citizenship_class": "citizen"}
    real = listed_first_by_a_rival(
        api, [{**foreign, "citizenship_class": "citizen"}, dual], [foreign, dual_ee]
    )

    refused = opt_out(api, real, "F1111111")
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == "urn:entryexit:problem:opt-out-refused"
    declined = opt_out(api, real, "D2222222")
    assert declined.status_code == 201, declined.text


def test_a_carriers_staging_answer_tells_nothing_of_whom_the_agency_holds_photos(
    api: Api, lfw_dir: Path
) -> None:
    """ZZ lists one passport number a time on its own flight and stages: the answer is the
    same whether the agency enrolled a photo for it or not. The agency's key is told."""
    carrier_keys(api)
    agencys = api.create_flight(carrier="EE")["id"]
    upload(api, agencys, [manifest_row("P6666666", "ENROLLED")], "admin")
    enrol(api, "P6666666", lfw_image(lfw_dir, "Colin_Powell", 1))

    answers = {}
    for number in ("P6666666", "X7654321"):
        probe = api.create_flight(carrier="ZZ", role="officer_zz")["id"]
        upload(api, probe, [manifest_row(number, "X")], "officer_zz")
        staged = api.client.post(f"/v1/flights/{probe}/gallery", headers=api.headers("officer_zz"))
        assert staged.status_code == 200, staged.text
        body = staged.json()
        assert body.pop("flight_id") == probe
        answers[number] = body
        agency = api.client.post(f"/v1/flights/{probe}/gallery", headers=api.headers("admin"))
        assert agency.json()["with_photo"] == (1 if number == "P6666666" else 0)
    assert (
        answers["P6666666"]
        == answers["X7654321"]
        == {
            "gallery_version": 1,
            "travelers": 1,
            "with_photo": None,
            "added": None,
            "removed": None,
            "unchanged": None,
            "without_photo": None,
        }
    )
