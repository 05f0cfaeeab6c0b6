"""The integrator guide's example gate client (examples/gate_client.py), run as a program
against the service in a real HTTP server with the real face engine and lfw-dev photos."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.conftest import REPO_ROOT, lfw_image
from tests.e2e.test_console_browser import Running, running  # noqa: F401 (the fixture)
from tests.integration.api.conftest import FOREIGN_STATE, staged_flight

pytestmark = [pytest.mark.models, pytest.mark.lfw]

EXAMPLE = REPO_ROOT / "examples" / "gate_client.py"


def example_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gate_client", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gate_client"] = module
    spec.loader.exec_module(module)
    return module


def run_example(
    server: Running, key: str, flight_id: str, photo: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--url",
            server.url,
            "--key",
            key,
            "--flight",
            flight_id,
            "--gate",
            "B12",
            "--device",
            "cam-1",
            str(photo),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_example_gate_client_boards_a_flight(running: Running, lfw_dir: Path) -> None:  # noqa: F811
    flight_id, _ = staged_flight(running.api, lfw_dir)
    gate_key = running.api.keys["gate"]
    boarded = run_example(running, gate_key, flight_id, lfw_image(lfw_dir, "Colin_Powell", 2))
    assert boarded.returncode == 0, boarded.stderr
    assert boarded.stdout.strip() == "match: open the gate"
    stranger = run_example(running, gate_key, flight_id, lfw_image(lfw_dir, "Donald_Rumsfeld", 1))
    assert stranger.returncode == 0, stranger.stderr
    assert stranger.stdout.startswith("no_match")
    assert stranger.stdout.strip().endswith("send the traveler to the officer")
    assert "RUMSFELD" not in stranger.stdout.upper()
    refused = run_example(
        running, "eex_000000000000_nope", flight_id, lfw_image(lfw_dir, "Colin_Powell", 2)
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith("refused: 401")

    # In a program: the opt-out, recorded against the document.
    gate_client = example_module()
    client = gate_client.GateClient(running.url, gate_key)
    try:
        encounter = client.opt_out(flight_id, FOREIGN_STATE, "D0000003", "B12")
        assert encounter
        with pytest.raises(gate_client.GateError) as refusal:
            client.opt_out(flight_id, FOREIGN_STATE, "D0000003", "B12")  # already processed
        assert refusal.value.status == 409
    finally:
        client.close()


def test_the_example_retries_with_the_same_idempotency_key_and_gives_up_on_refusals() -> None:
    gate_client = example_module()
    seen: list[tuple[str, str | None]] = []
    answers = iter(
        [
            httpx.Response(503, json={"title": "Storage unavailable"}),
            httpx.Response(429, headers={"Retry-After": "0"}, json={"title": "Too many"}),
            httpx.Response(
                200,
                json={
                    "capture_id": "c1",
                    "decision": "match",
                    "reasons": [],
                    "already_processed": False,
                },
            ),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers.get("Idempotency-Key")))
        return next(answers)

    client = gate_client.GateClient(
        "http://gate.test", "eex_a_b", attempts=3, transport=httpx.MockTransport(handler)
    )
    decision = client.capture("F1", [b"jpeg"], "B12", "cam-1")
    assert decision.decision == "match"
    assert len(seen) == 3
    assert len({key for _, key in seen}) == 1  # the same capture, whatever the retries
    assert seen[0][1]

    refused = gate_client.GateClient(
        "http://gate.test",
        "eex_a_b",
        transport=httpx.MockTransport(
            lambda _: httpx.Response(401, json={"title": "Unauthenticated", "detail": "bad key"})
        ),
    )
    with pytest.raises(gate_client.GateError, match="401"):
        refused.capture("F1", [b"jpeg"], "B12", "cam-1")
