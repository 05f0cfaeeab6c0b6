"""A minimal gate client for EntryExit's HTTP API: send a camera frame, get a decision.

    python examples/gate_client.py --url https://entryexit.example --key eex_... \\
        --flight FLIGHT_ID --gate B12 --device cam-1 photo.jpg

Only ``httpx`` (installed with EntryExit) and the standard library. See
docs/gate-integration.md for what each decision means and what a gate may show.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

# The decisions a gate acts on; the service never sends a name, score or photo to a gate key.
ACTIONS = {
    "match": "open the gate",
    "no_match": "send the traveler to the officer",
    "manual": "send the traveler to the officer",
    "recapture": "ask the traveler to look at the camera again",
}
RETRIABLE = {429, 502, 503, 504}


@dataclass(frozen=True)
class Decision:
    capture_id: str
    decision: str
    reasons: list[str]
    already_processed: bool

    @property
    def action(self) -> str:
        return ACTIONS.get(self.decision, "send the traveler to the officer")


class GateError(Exception):
    """A refusal that retrying will not change (bad key, unknown flight, unreadable image)."""

    def __init__(self, status: int, problem: dict[str, object]) -> None:
        super().__init__(f"{status} {problem.get('title')}: {problem.get('detail')}")
        self.status = status
        self.problem = problem


class GateClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        attempts: int = 4,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            headers={"X-API-Key": api_key},
            timeout=timeout,
            transport=transport,
        )
        self._attempts = attempts

    def close(self) -> None:
        self._client.close()

    def capture(self, flight_id: str, frames: Sequence[bytes], gate: str, device: str) -> Decision:
        """One capture; retried on a rate limit (after ``Retry-After``), a busy or unreachable
        service, each time with the same ``Idempotency-Key`` so that a capture the service
        did record is not recorded twice (the header is being added to the service; until
        it lands a retry after a lost answer can be reported as ``already_processed``)."""
        if not frames:
            raise ValueError("send at least one frame")
        key = str(uuid.uuid4())
        # One frame today. When the service accepts a burst, send every frame as a
        # ``photos`` part of the same request (docs/gate-integration.md, "Bursts").
        files = {"photo": ("frame-1.jpg", frames[0], "image/jpeg")}
        data = {"gate": gate, "device": device}
        response = self._post(f"/v1/flights/{flight_id}/captures", key, files=files, data=data)
        body = response.json()
        return Decision(
            body["capture_id"], body["decision"], body["reasons"], body["already_processed"]
        )

    def opt_out(self, flight_id: str, issuing_state: str, number: str, gate: str) -> str:
        """The traveler declines the photo: recorded against their document; returns the
        encounter's id. A refusal reads the same whatever the reason (the gate learns nothing
        about who is on the flight)."""
        response = self._post(
            f"/v1/flights/{flight_id}/opt-outs",
            str(uuid.uuid4()),
            json={"issuing_state": issuing_state, "number": number, "gate": gate},
        )
        return str(response.json()["encounter_id"])

    def _post(self, path: str, idempotency_key: str, **kwargs: object) -> httpx.Response:
        delay = 0.5
        for attempt in range(1, self._attempts + 1):
            try:
                response = self._client.post(
                    path,
                    headers={"Idempotency-Key": idempotency_key},
                    **kwargs,  # type: ignore[arg-type]
                )
            except httpx.TransportError:
                if attempt == self._attempts:
                    raise
                time.sleep(delay)
                delay *= 2
                continue
            if response.status_code < 400:
                return response
            if response.status_code in RETRIABLE and attempt < self._attempts:
                wait = response.headers.get("Retry-After")
                time.sleep(float(wait) if wait and wait.isdigit() else delay)
                delay *= 2
                continue
            raise GateError(response.status_code, _problem(response))
        raise AssertionError("unreachable")


def _problem(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {"title": response.reason_phrase, "detail": response.text[:200]}
    return body if isinstance(body, dict) else {"title": response.reason_phrase}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True, help="a gate API key (eex_...)")
    parser.add_argument("--flight", required=True)
    parser.add_argument("--gate", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("photos", nargs="+", type=Path, help="JPEG or PNG frames (a burst)")
    args = parser.parse_args(argv)
    client = GateClient(args.url, args.key)
    try:
        decision = client.capture(
            args.flight, [p.read_bytes() for p in args.photos], args.gate, args.device
        )
    except GateError as error:
        print(f"refused: {error}", file=sys.stderr)  # noqa: T201 (a program's output)
        return 2
    finally:
        client.close()
    reasons = f" ({', '.join(decision.reasons)})" if decision.reasons else ""
    print(f"{decision.decision}{reasons}: {decision.action}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
