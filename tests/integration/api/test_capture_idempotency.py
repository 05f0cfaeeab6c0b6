"""A gate that retries a capture under its ``Idempotency-Key`` gets the first attempt's
outcome, whichever instance answers, and nothing is recorded twice (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from entryexit.bootstrap import SqlServices
from entryexit.services.ports import IdempotencyClaim
from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, staged_flight

pytestmark = [pytest.mark.models, pytest.mark.lfw]


def send(
    client: TestClient, api: Api, flight_id: str, photo: bytes, key: str, role: str = "gate"
) -> Any:
    return client.post(
        f"/v1/flights/{flight_id}/captures",
        files={"photo": ("capture.jpg", photo, "image/jpeg")},
        data={"gate": "G7", "device": "cam-1"},
        headers={**api.headers(role), "Idempotency-Key": key},
    )


def capture_records(services: SqlServices, flight_id: str) -> int:
    return len(services.boards.recent_captures(flight_id, 1000))


def capture_events(services: SqlServices) -> int:
    return sum(1 for _ in services.audit.all_events("capture"))


def test_a_retry_under_the_same_key_gets_the_first_outcome_and_records_nothing_new(
    api: Api, lfw_dir: Path
) -> None:
    flight_id, refs = staged_flight(api, lfw_dir, ("Colin_Powell", "Ariel_Sharon"))
    photo = lfw_image(lfw_dir, "Colin_Powell", 2).read_bytes()
    first = send(api.client, api, flight_id, photo, "gate-7-0001")
    assert first.status_code == 200, first.text
    assert first.json()["decision"] == "match"
    assert "Idempotent-Replayed" not in first.headers
    events_before = len(list(api.services.audit.all_events()))

    retry = send(api.client, api, flight_id, photo, "gate-7-0001")

    assert retry.status_code == 200, retry.text
    assert retry.json() == first.json()  # same capture id, decision, already_processed False
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert capture_records(api.services, flight_id) == 1
    assert len(api.services.flights.encounters(flight_id)) == 1
    assert capture_events(api.services) == 1
    # Only the retry's access event was added, recorded by the API's audit middleware.
    added = list(api.services.audit.all_events())[events_before:]
    assert [(e.entry.action, e.entry.outcome) for e in added] == [
        ("POST /v1/flights/{flight_id}/captures", "ok")
    ]
    assert api.services.audit.verify().ok
    # Without a key, the same photo is a new capture (already processed).
    again = api.client.post(
        f"/v1/flights/{flight_id}/captures",
        files={"photo": ("capture.jpg", photo, "image/jpeg")},
        data={"gate": "G7", "device": "cam-1"},
        headers=api.headers("gate"),
    )
    assert again.json()["already_processed"] is True
    assert again.json()["capture_id"] != first.json()["capture_id"]
    assert refs  # the flight had its gallery


def test_the_same_key_for_a_different_capture_is_refused_and_keys_are_each_callers_own(
    api: Api, lfw_dir: Path
) -> None:
    flight_id, _ = staged_flight(api, lfw_dir, ("Colin_Powell", "Ariel_Sharon"))
    colin = lfw_image(lfw_dir, "Colin_Powell", 2).read_bytes()
    ariel = lfw_image(lfw_dir, "Ariel_Sharon", 2).read_bytes()
    assert send(api.client, api, flight_id, colin, "k-1").status_code == 200

    reused = send(api.client, api, flight_id, ariel, "k-1")

    assert reused.status_code == 409, reused.text
    assert reused.json()["type"].endswith("idempotency-key-reused")
    assert capture_records(api.services, flight_id) == 1
    # The same key string from another caller (the officer's key) is that caller's own.
    officer = send(api.client, api, flight_id, ariel, "k-1", role="officer")
    assert officer.status_code == 200, officer.text
    assert officer.json()["decision"] == "match"
    assert capture_records(api.services, flight_id) == 2
    # A key that is not visible ASCII is a clear 422, nothing stored.
    bad = send(api.client, api, flight_id, colin, "two words")
    assert bad.status_code == 422, bad.text
    assert capture_records(api.services, flight_id) == 2


def test_concurrent_retries_on_two_instances_resolve_to_one_capture(
    two_instances: tuple[Api, TestClient], lfw_dir: Path
) -> None:
    first, second = two_instances
    people = ("Colin_Powell", "Ariel_Sharon", "Alvaro_Uribe")
    flight_id, _ = staged_flight(first, lfw_dir, people)
    requests = [
        (client, person, f"retry-{index}")
        for index, person in enumerate(people)
        for client in (first.client, second)
    ]
    start = threading.Barrier(len(requests))

    def attempt(request: tuple[TestClient, str, str]) -> Any:
        client, person, key = request
        photo = lfw_image(lfw_dir, person, 2).read_bytes()
        start.wait()
        return send(client, first, flight_id, photo, key)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        responses = list(pool.map(attempt, requests))

    assert [r.status_code for r in responses] == [200] * len(requests), [r.text for r in responses]
    for index in range(len(people)):
        pair = responses[2 * index : 2 * index + 2]
        assert pair[0].json() == pair[1].json()
        assert pair[0].json()["already_processed"] is False
    assert capture_records(first.services, flight_id) == len(people)
    assert len(first.services.flights.encounters(flight_id)) == len(people)
    assert capture_events(first.services) == len(people)
    assert first.services.audit.verify().ok


def test_a_concurrent_claim_waits_for_the_first_and_then_reads_its_outcome(
    two_instances: tuple[Api, TestClient],
) -> None:
    """The store's part, step by step: the second claim of a key blocks until the first
    claim's transaction commits, then returns what it stored."""
    uow = two_instances[0].services.uow
    now = datetime.now(UTC)
    claim = IdempotencyClaim("gate-key", "k", "flight", "digest", "capture-1", now)
    second_result: list[object] = []
    with uow() as holder:
        assert holder.captures.claim_idempotency(claim) is None

        def contender() -> None:
            with uow() as other:
                second_result.append(
                    other.captures.claim_idempotency(
                        IdempotencyClaim("gate-key", "k", "flight", "digest", "capture-2", now)
                    )
                )
                other.commit()

        thread = threading.Thread(target=contender)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waiting on the first claim
        holder.captures.settle_idempotency("gate-key", "k", '{"decision": "match"}', now)
        holder.commit()
    thread.join(timeout=30)
    assert not thread.is_alive()
    [stored] = second_result
    assert getattr(stored, "capture_id", None) == "capture-1"
    assert getattr(stored, "outcome", None) == '{"decision": "match"}'


def test_keys_expire_with_the_capture_record(two_instances: tuple[Api, TestClient]) -> None:
    uow = two_instances[0].services.uow
    now = datetime.now(UTC)
    with uow() as writing:
        writing.captures.claim_idempotency(
            IdempotencyClaim("gate-key", "old", "flight", "digest", "capture-1", now)
        )
        writing.captures.settle_idempotency("gate-key", "old", "{}", now - timedelta(seconds=1))
        writing.captures.claim_idempotency(
            IdempotencyClaim("gate-key", "new", "flight", "digest", "capture-2", now)
        )
        writing.captures.settle_idempotency("gate-key", "new", "{}", now + timedelta(days=1))
        writing.commit()
    with uow() as purging:
        assert (
            purging.retention.purge_expired(now, two_instances[0].services.policies.in_force(now))[
                "idempotency_keys"
            ]
            == 1
        )
        purging.commit()
    with uow(read_only=True) as reading:
        assert reading.captures.find_idempotency("gate-key", "old") is None
        assert reading.captures.find_idempotency("gate-key", "new") is not None
