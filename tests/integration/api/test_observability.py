"""Request ids, JSON logs and Prometheus metrics, with no personal or biometric data in any
log line or metric label."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from entryexit.api.observability import configure_logging
from entryexit.cli.worker import PurgeScheduler
from entryexit.domain.access import Role
from tests.conftest import REPO_ROOT, lfw_image
from tests.integration.api.conftest import Api, capture
from tests.integration.api.test_privacy_api import board_mixed_flight
from tests.logging_state import logging_restored

pytestmark = [pytest.mark.models]
PERSONAL = ("POWELL", "SHARON", "URIBE", "C0000001", "F0000002", "K0000003", "1970-01-01")
# A run of base64 long enough to be a template, a photo or a key (ids and hashes are hex).
BASE64_BLOB = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
HEX_ONLY = re.compile(r"^[0-9a-f]+$")


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    with logging_restored():
        configure_logging("json", "DEBUG", stream)
        logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)
        yield stream


def log_events(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_request_id_is_kept_or_made_echoed_and_recorded(api: Api, json_logs: io.StringIO) -> None:
    given = api.client.get(
        "/v1/flights/nope", headers={**api.headers("officer"), "X-Request-ID": "lb-4f2a.7"}
    )
    assert given.headers["x-request-id"] == "lb-4f2a.7"
    for hostile in ("a b", "x" * 500, "id\tx", "<script>", ""):
        answer = api.client.get("/healthz", headers={"X-Request-ID": hostile})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"]), hostile
    made = api.client.get("/v1/flights/nope", headers=api.headers("auditor"))
    made_id = made.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made_id)
    # In the access log line of each request...
    lines = [e for e in log_events(json_logs) if e["message"] == "request"]
    assert {"lb-4f2a.7", made_id} <= {e.get("request_id") for e in lines}
    line = next(e for e in lines if e.get("request_id") == "lb-4f2a.7")
    assert line["http"] == {**line["http"], "route": "/v1/flights/{flight_id}", "status": 404}  # type: ignore[dict-item]
    # ...and in the audit event of the request.
    events = api.client.get("/v1/audit/events?limit=1000", headers=api.headers("auditor")).json()
    assert any(e["details"].get("request_id") == "lb-4f2a.7" for e in events)


def test_every_log_line_of_a_request_carries_its_id(api: Api, json_logs: io.StringIO) -> None:
    api.client.get(
        "/v1/flights/x", headers={"X-API-Key": "eex_000000000000_nope", "X-Request-ID": "rid-1"}
    )
    warned = [e for e in log_events(json_logs) if e["message"] == "failed API authentication"]
    assert [e.get("request_id") for e in warned] == ["rid-1"]


def test_a_boarding_run_logs_nothing_personal(
    api: Api, lfw_dir: Path, json_logs: io.StringIO
) -> None:
    flight_id = board_mixed_flight(api, lfw_dir)
    photos = [lfw_image(lfw_dir, "Colin_Powell", 2), lfw_image(lfw_dir, "Donald_Rumsfeld", 1)]
    for photo in photos:
        assert capture(api, flight_id, photo).status_code == 200
    api.client.get(f"/v1/flights/{flight_id}/manifest", headers=api.headers("officer"))
    api.client.get("/v1/documents/UTO/C0000001/photos", headers=api.headers("officer"))
    # The test's own HTTP client (httpx) logs the URLs it calls: the caller's log, not the
    # service's. Every line the service side writes is searched.
    events = [
        e for e in log_events(json_logs) if not str(e["logger"]).startswith(("httpx", "httpcore"))
    ]
    text = "\n".join(json.dumps(e) for e in events)
    assert len(events) > 20
    assert any(str(e["logger"]).startswith("sqlalchemy") for e in events)
    for secret in PERSONAL:
        assert secret not in text
    blobs = [b for b in BASE64_BLOB.findall(text) if not HEX_ONLY.match(b)]
    assert blobs == []
    for photo in photos:
        data = photo.read_bytes()
        assert data[100:140].hex() not in text


def test_metrics_need_a_monitor_key_and_hold_no_personal_data(api: Api, lfw_dir: Path) -> None:
    monitor = api.services.keys.create(Role.MONITOR, "prometheus")[1]
    assert api.client.get("/metrics").status_code == 401
    for role in ("gate", "officer", "auditor"):
        assert api.client.get("/metrics", headers=api.headers(role)).status_code == 403
    flight_id = board_mixed_flight(api, lfw_dir)
    assert (
        capture(api, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2)).json()["decision"] == "match"
    )
    assert PurgeScheduler(api.services.jobs, api.services.purge, 300.0).run_once() is not None
    scrape = api.client.get("/metrics", headers={"Authorization": f"Bearer {monitor}"})
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    captures = 'route="/v1/flights/{flight_id}/captures"'
    assert re.search(
        r'entryexit_http_requests_total\{method="POST",'
        + re.escape(captures)
        + r',status="200"\} [1-9]',
        text,
    )
    assert re.search(r'entryexit_capture_decisions_total\{decision="match"\} [1-9]', text)
    for stage in ("decode", "locate", "embed"):
        assert re.search(
            rf'entryexit_capture_stage_duration_seconds_count\{{stage="{stage}"\}} [1-9]', text
        )
    assert re.search(r'entryexit_outbox_messages\{state="pending"\} \d', text)
    assert "entryexit_audit_chain_ok 1.0" in text
    assert re.search(r'entryexit_db_pool_connections\{state="idle"\} [1-9]', text)
    assert re.search(r"entryexit_audit_chain_length [1-9]", text)
    assert re.search(r"entryexit_gallery_templates_loaded [1-9]", text)
    assert re.search(r"entryexit_gallery_staged_templates_count [1-9]", text)
    # The fleet's jobs as recorded in the database, and this process's last checkpoint.
    assert re.search(
        r'entryexit_job_last_success_timestamp_seconds\{job="purge"\} 1\.\d+e\+09', text
    )
    assert re.search(r'entryexit_job_last_run_ok\{job="purge"\} 1\.0', text)
    assert re.search(r'entryexit_job_runs\{job="purge"\} 1\.0', text)
    assert re.search(r'entryexit_job_last_run_items\{job="purge",kind="capture_records"\} \d', text)
    assert re.search(r"entryexit_audit_last_checkpoint_age_seconds \d", text)
    assert re.search(r"entryexit_audit_events_since_checkpoint \d", text)
    assert flight_id not in text  # labels are templates, never values
    for secret in PERSONAL:
        assert secret not in text
    # Scrapes are not audited (they would flood the log); a refused one is.
    events = api.client.get("/v1/audit/events?limit=1000", headers=api.headers("auditor")).json()
    metrics_events = [
        (e["outcome"], e["actor_role"]) for e in events if e["action"] == "GET /metrics"
    ]
    assert ("ok", "monitor") not in metrics_events
    assert ("denied", "gate") in metrics_events
    # The shipped alert rules watch series this scrape exposes (a renamed metric would leave
    # an alert silently watching nothing).
    rules = yaml.safe_load(
        (REPO_ROOT / "deploy" / "prometheus" / "entryexit-alerts.yml").read_text()
    )
    for rule in rules["groups"][0]["rules"]:
        for series, matchers in re.findall(r"(entryexit_[a-z_]+)(?:\{([^}]*)\})?", rule["expr"]):
            lines = re.findall(rf"^{series}[{{ ].*$", text, re.M)
            assert lines, (rule["alert"], series)
            for label in re.findall(r'[a-z_]+="[^"]*"', matchers):  # exact matchers only
                assert any(label in line for line in lines), (rule["alert"], series, label)


def test_uvicorn_follows_the_log_settings() -> None:
    stream = io.StringIO()
    with logging_restored():
        configure_logging("json", "WARNING", stream)
        for name in ("uvicorn", "uvicorn.error"):
            target = logging.getLogger(name)
            assert target.level == logging.WARNING
            assert target.propagate
            assert not target.handlers
        logging.getLogger("uvicorn.error").warning("shutting down")
        logging.getLogger("uvicorn.error").info("not at this level")
        [event] = log_events(stream)
    assert (event["logger"], event["level"], event["message"]) == (
        "uvicorn.error",
        "WARNING",
        "shutting down",
    )


def test_made_up_http_methods_add_no_metric_series(api: Api) -> None:
    # Without a key, a client once added 18 series (~3.4 KiB of memory) per made-up method.
    monitor = {"Authorization": f"Bearer {api.services.keys.create(Role.MONITOR, 'scrape')[1]}"}
    other = re.compile(r'entryexit_http_requests_total\{method="OTHER",[^}]*\} ([0-9.]+)')

    def others() -> float:  # the registry is the process's: count what this test adds
        return sum(
            float(n) for n in other.findall(api.client.get("/metrics", headers=monitor).text)
        )

    before = others()
    for number in range(5):
        api.client.request(f"BREW{number}", "/v1/flights")
    assert "BREW" not in api.client.get("/metrics", headers=monitor).text
    assert others() - before == 5
