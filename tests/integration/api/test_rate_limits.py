"""Rate limits a noisy neighbour cannot turn against gates: unauthenticated traffic is limited
per client address, authenticated traffic per key, and the client address comes from
X-Forwarded-For only when a trusted proxy says so."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import ip_network
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from entryexit.api import limits as api_limits
from entryexit.api.app import create_app
from entryexit.api.limits import WarningThrottle
from entryexit.api.observability import REGISTRY
from entryexit.biometrics import FaceEngine
from entryexit.bootstrap import SqlServices
from entryexit.config import Settings
from entryexit.domain.access import Role
from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, build_api, capture

pytestmark = [pytest.mark.models]
BAD_KEY = {"X-API-Key": "eex_000000000000_not-a-key"}
PROXY = "10.1.2.3"
REJECTIONS = "entryexit_rate_limit_rejections_total"


@pytest.fixture
def limited(engine: FaceEngine, tmp_path: Path) -> Iterator[tuple[Api, SqlServices]]:
    settings = Settings(
        data_dir=tmp_path / "data",
        sign_in_failures_before_block=20,
        trusted_proxies=(ip_network("10.1.2.0/24"),),
    )
    built, services = build_api(settings, engine)
    try:
        yield built, services
    finally:
        built.client.close()
        services.uow.engine.dispose()


def client_at(services: SqlServices, address: str) -> TestClient:
    return TestClient(create_app(services), client=(address, 40000))


def test_a_neighbours_bad_keys_do_not_lock_out_a_gate_at_the_same_address(
    limited: tuple[Api, SqlServices], lfw_dir: Path
) -> None:
    api, services = limited
    flight = api.create_flight()
    staged = api.client.post(f"/v1/flights/{flight['id']}/gallery", headers=api.headers("officer"))
    assert staged.status_code == 200
    rejections = {"route": "/v1/flights/{flight_id}"}
    counted_before = REGISTRY.get_sample_value(REJECTIONS, rejections) or 0.0
    with client_at(services, "198.51.100.7") as nat:
        statuses = [nat.get("/v1/flights/x", headers=BAD_KEY).status_code for _ in range(100)]
        assert statuses[:20] == [401] * 20
        assert set(statuses[20:]) == {429}  # the neighbour itself is throttled
        # /metrics counts each refusal, by route template.
        assert REGISTRY.get_sample_value(REJECTIONS, rejections) == counted_before + 80
        photo = lfw_image(lfw_dir, "Colin_Powell", 1).read_bytes()
        answer = nat.post(
            f"/v1/flights/{flight['id']}/captures",
            files={"photo": ("c.jpg", photo, "image/jpeg")},
            data={"gate": "G1", "device": "cam"},
            headers=api.headers("gate"),
        )
        assert answer.status_code == 200, answer.text
        assert nat.get("/v1/policies/current", headers=api.headers("admin")).status_code == 200
        # ...and the gate's successes do not reset the neighbour's lock-out either.
        assert nat.get("/v1/flights/x", headers=BAD_KEY).status_code == 429


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    limited: tuple[Api, SqlServices],
) -> None:
    _, services = limited
    with client_at(services, "203.0.113.9") as attacker:
        statuses = [
            attacker.get(
                "/v1/flights/x", headers={**BAD_KEY, "X-Forwarded-For": f"192.0.2.{n}"}
            ).status_code
            for n in range(25)
        ]
    # A fresh claimed address per request bought nothing: the peer itself was counted.
    assert statuses == [401] * 20 + [429] * 5


UNTRUSTED_FORWARDED = "entryexit_untrusted_forwarded_requests_total"


def test_forwarded_for_from_an_unlisted_peer_is_counted_and_warned_about_without_addresses(
    limited: tuple[Api, SqlServices],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Behind a load balancer missing from ENTRYEXIT_TRUSTED_PROXIES, every client shares the
    balancer's lock-out: the operator must hear of it (a metric, and a warning rate-limited
    so that a busy balancer does not flood the log), without any address in the log."""
    _, services = limited
    now = [0.0]
    throttle = WarningThrottle(3600.0, lambda: now[0])
    monkeypatch.setattr(api_limits, "untrusted_forwarded_warnings", throttle)

    def counted() -> float:
        return REGISTRY.get_sample_value(UNTRUSTED_FORWARDED) or 0.0

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "entryexit.api.limits"]

    before = counted()
    with (
        caplog.at_level(logging.WARNING, logger="entryexit.api.limits"),
        client_at(services, "203.0.113.9") as balancer,
    ):
        for n in range(5):
            forwarded = {**BAD_KEY, "X-Forwarded-For": f"192.0.2.{n}"}
            assert balancer.get("/v1/flights/x", headers=forwarded).status_code == 401
        assert counted() == before + 5
        assert len(warnings()) == 1
        assert "ENTRYEXIT_TRUSTED_PROXIES" in warnings()[0]
        now[0] += 3601  # an hour later, one more warning, saying how many went unsaid
        balancer.get("/v1/flights/x", headers={**BAD_KEY, "X-Forwarded-For": "192.0.2.9"})
        assert len(warnings()) == 2
        assert "(4 more such requests" in warnings()[1]
        assert "203.0.113" not in caplog.text
        assert "192.0.2" not in caplog.text
        # Neither a listed proxy's header nor a request without one is counted.
        with client_at(services, PROXY) as proxy:
            forwarded = {**BAD_KEY, "X-Forwarded-For": "198.51.100.30"}
            assert proxy.get("/v1/flights/x", headers=forwarded).status_code == 401
        assert balancer.get("/v1/flights/x", headers=BAD_KEY).status_code == 401
        assert counted() == before + 6
        assert len(warnings()) == 2


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(
    limited: tuple[Api, SqlServices],
) -> None:
    _, services = limited
    with client_at(services, PROXY) as proxy:
        noisy = {**BAD_KEY, "X-Forwarded-For": "198.51.100.20"}
        assert [proxy.get("/v1/flights/x", headers=noisy).status_code for _ in range(21)] == [
            401
        ] * 20 + [429]
        # Another client behind the same balancer is not affected.
        other = {**BAD_KEY, "X-Forwarded-For": "198.51.100.21"}
        assert proxy.get("/v1/flights/x", headers=other).status_code == 401
        # The noisy client cannot escape by prepending an address: only the hop the trusted
        # proxy appended (the right-most untrusted one) counts.
        spoofed = {**BAD_KEY, "X-Forwarded-For": "192.0.2.99, 198.51.100.20"}
        assert proxy.get("/v1/flights/x", headers=spoofed).status_code == 429


def test_gate_keys_are_limited_per_key(limited: tuple[Api, SqlServices], lfw_dir: Path) -> None:
    api, services = limited
    settings = services.settings.model_copy(
        update={"gate_requests_per_second": 0.01, "gate_burst": 1}
    )
    throttled = replace(services, settings=settings)
    flight = api.create_flight()
    api.client.post(f"/v1/flights/{flight['id']}/gallery", headers=api.headers("officer"))
    photo = lfw_image(lfw_dir, "Colin_Powell", 1)
    with TestClient(create_app(throttled)) as client:
        one = Api(client, throttled, api.keys)
        assert capture(one, flight["id"], photo).status_code == 200
        assert capture(one, flight["id"], photo).status_code == 429
        # Another gate key is not throttled by the first one's budget.
        one.keys["gate2"] = services.keys.create(Role.GATE, "gate EE 2", carrier="EE")[1]
        assert capture(one, flight["id"], photo, role="gate2").status_code == 200


def test_every_keys_requests_are_limited_and_expensive_ones_cost_more(
    engine: FaceEngine, tmp_path: Path
) -> None:
    """Probe F6: only gate keys were rate limited; an auditor's key could ask for the audit
    check (once a walk of the whole log) in a loop, an officer's for print comparisons."""
    settings = Settings(data_dir=tmp_path / "data", key_requests_per_second=0.01, key_burst=400)
    api, services = build_api(settings, engine)
    try:
        with api.client:
            auditor = api.headers("auditor")
            # The audit check costs 100 of the 400 (review L10; it was 10): four, then 429
            # with how long to wait.
            statuses = [
                api.client.get("/v1/audit/verification", headers=auditor).status_code
                for _ in range(5)
            ]
            assert statuses == [200] * 4 + [429]
            refused = api.client.get("/v1/audit/events", headers=auditor)
            assert refused.status_code == 429
            assert int(refused.headers["Retry-After"]) >= 1
            # Per key: another key (and a gate, with its own limits) is not held up by it.
            assert api.client.get("/v1/audit/events", headers=api.headers("admin")).is_success
            gate = api.client.get("/v1/flights/x", headers=api.headers("gate"))
            assert gate.status_code != 429
    finally:
        services.uow.engine.dispose()
