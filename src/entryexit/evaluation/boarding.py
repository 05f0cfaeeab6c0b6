"""Simulated boarding through the real HTTP API, from a folder of labelled photos.

Each chosen person is a traveler on the manifest: their first photo is enrolled as the
passport photo, their other photos are gate captures. People not on the manifest try to board
too. Every request goes over HTTP, exactly as a gate camera's would.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from entryexit.documents.manifest import parse_json_manifest
from entryexit.documents.paxlst import export_paxlst
from entryexit.errors import DatasetError, EntryExitError
from entryexit.evaluation.datasets import LabelledImages

ISSUING_STATE = "UTO"  # ICAO 9303's specimen state, never a real one: the home state
# The state of the travelers who are not citizens (a made-up code: a home-state passport
# holder or national is a citizen whatever a manifest declares).
FOREIGN_STATE = "XYZ"


@dataclass(frozen=True, slots=True)
class BoardingPlan:
    data_dir: Path
    travelers: int = 300
    impostors: int = 30
    captures_per_traveler: int = 10
    clients: int = 4
    seed: int = 0
    manifest_format: str = "json"  # or "paxlst": sent as a UN/EDIFACT message


@dataclass(slots=True)
class BoardingResult:
    mated: int = 0
    matched_correctly: int = 0
    matched_wrong_traveler: int = 0
    non_mated: int = 0
    non_mated_matched: int = 0
    no_match: int = 0
    recapture: int = 0
    manual: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    staging_seconds: float = 0.0
    enrolled: int = 0

    @property
    def captures(self) -> int:
        return self.mated + self.non_mated

    def summary(self) -> dict[str, Any]:
        latencies = np.array(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        false_accepts = self.matched_wrong_traveler + self.non_mated_matched
        return {
            "travelers_enrolled": self.enrolled,
            "captures": self.captures,
            "mated_captures": self.mated,
            "non_mated_captures": self.non_mated,
            "match_rate": self.matched_correctly / self.mated if self.mated else 0.0,
            "false_accepts": false_accepts,
            "false_accept_rate": false_accepts / self.captures if self.captures else 0.0,
            "fpir": self.non_mated_matched / self.non_mated if self.non_mated else 0.0,
            "misidentified_mated": self.matched_wrong_traveler,
            "no_match": self.no_match,
            "recapture": self.recapture,
            "manual": self.manual,
            "latency_ms": {
                "p50": float(np.percentile(latencies, 50)),
                "p95": float(np.percentile(latencies, 95)),
                "p99": float(np.percentile(latencies, 99)),
            },
            "captures_per_minute": self.captures / self.wall_seconds * 60
            if self.wall_seconds
            else 0.0,
            "staging_seconds": self.staging_seconds,
        }


class ApiError(EntryExitError):
    code = "simulation-api"


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", "")
        except ValueError:
            detail = response.text[:200]
        raise ApiError(f"{what} failed with HTTP {response.status_code}: {detail}")
    body: dict[str, Any] = response.json()
    return body


def run_boarding(
    plan: BoardingPlan,
    base_url: str,
    api_key: str,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BoardingResult:
    dataset = LabelledImages.scan(plan.data_dir)
    rng = random.Random(plan.seed)  # noqa: S311 - a seeded simulation, not security
    with_captures = sorted(p for p, imgs in dataset.persons.items() if len(imgs) >= 2)
    if len(with_captures) < plan.travelers:
        raise DatasetError(
            f"{plan.data_dir} has {len(with_captures)} persons with two or more photos;"
            f" {plan.travelers} travelers were asked for"
        )
    travelers = rng.sample(with_captures, plan.travelers)
    on_manifest = set(travelers)
    others = sorted(p for p in dataset.persons if p not in on_manifest)
    impostors = rng.sample(others, min(plan.impostors, len(others)))
    documents = {person: f"L{index:08d}" for index, person in enumerate(travelers)}

    headers = {"X-API-Key": api_key}
    result = BoardingResult()
    with httpx.Client(base_url=base_url, headers=headers, timeout=60.0) as client:
        departure = datetime.now(UTC) + timedelta(hours=2)
        flight = _check(
            client.post(
                "/v1/flights",
                json={
                    "carrier": "EE",
                    "number": "1",
                    "scheduled_departure": departure.isoformat(),
                    "origin": "AAA",
                    "destination": "BBB",
                    "direction": "exit",
                },
            ),
            "creating the flight",
        )
        manifest = [_manifest_row(person, documents[person], rng) for person in travelers]
        states = {
            person: row["issuing_state"] for person, row in zip(travelers, manifest, strict=True)
        }
        if plan.manifest_format == "paxlst":
            message = export_paxlst(
                "EE",
                "1",
                "AAA",
                "BBB",
                departure.date(),
                parse_json_manifest(json.dumps(manifest).encode(), departure.date(), ISSUING_STATE),
            )
            response = client.put(
                f"/v1/flights/{flight['id']}/manifest",
                content=message.encode(),
                headers={"content-type": "application/edifact"},
            )
        else:
            response = client.put(
                f"/v1/flights/{flight['id']}/manifest", json={"travelers": manifest}
            )
        _check(response, "sending the manifest")

        def enrol(person: str) -> tuple[str, str]:
            photo = dataset.persons[person][0]
            body = _check(
                client.post(
                    f"/v1/documents/{states[person]}/{documents[person]}/photos",
                    files={"photo": (photo.name, photo.read_bytes(), "image/jpeg")},
                    data={"source": "passport"},
                ),
                "enrolling a reference photo",
            )
            return person, str(body["traveler_ref"])

        with ThreadPoolExecutor(max_workers=plan.clients) as pool:
            reference_of = dict(pool.map(enrol, travelers))
        result.enrolled = len(reference_of)
        started = time.perf_counter()
        _check(client.post(f"/v1/flights/{flight['id']}/gallery"), "staging the gallery")
        result.staging_seconds = time.perf_counter() - started

        attempts: list[tuple[str | None, Path]] = []
        for person in travelers:
            for photo in dataset.persons[person][1 : 1 + plan.captures_per_traveler]:
                attempts.append((person, photo))
        attempts += [(None, dataset.persons[person][0]) for person in impostors]
        rng.shuffle(attempts)
        if on_total is not None:
            on_total(len(attempts))

        lock = threading.Lock()

        def board(attempt: tuple[str | None, Path]) -> None:
            person, photo = attempt
            data = photo.read_bytes()
            began = time.perf_counter()
            response = client.post(
                f"/v1/flights/{flight['id']}/captures",
                files={"photo": (photo.name, data, "image/jpeg")},
                data={"gate": "G1", "device": f"cam-{threading.get_ident() % 100}"},
            )
            elapsed = (time.perf_counter() - began) * 1000.0
            body = _check(response, "sending a capture")
            with lock:
                result.latencies_ms.append(elapsed)
                _tally(result, body, None if person is None else reference_of[person])
            if on_progress is not None:
                on_progress(1)

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=plan.clients) as pool:
            list(pool.map(board, attempts))
        result.wall_seconds = time.perf_counter() - began
    return result


def _tally(result: BoardingResult, body: dict[str, Any], expected: str | None) -> None:
    decision = body["decision"]
    if expected is None:
        result.non_mated += 1
        if decision == "match":
            result.non_mated_matched += 1
    else:
        result.mated += 1
        if decision == "match":
            if body.get("traveler_ref") == expected:
                result.matched_correctly += 1
            else:
                result.matched_wrong_traveler += 1
    if decision == "no_match":
        result.no_match += 1
    elif decision == "recapture":
        result.recapture += 1
    elif decision == "manual":
        result.manual += 1


def _manifest_row(person: str, number: str, rng: random.Random) -> dict[str, str]:
    parts = person.split("_")
    # Adults of 18 to 75: travelers every default policy expects to be photographed.
    birth = datetime.now(UTC) - timedelta(days=rng.randrange(18 * 366, 75 * 365))
    sex = rng.choice(["F", "M"])
    citizenship = rng.choice(["citizen", "permanent_resident", "foreign_national"])
    # Citizens hold the home state's passport, the others a foreign state's.
    state = ISSUING_STATE if citizenship == "citizen" else FOREIGN_STATE
    return {
        "surname": parts[-1].upper(),
        "given_names": " ".join(parts[:-1]).upper(),
        "date_of_birth": birth.date().isoformat(),
        "sex": sex,
        "nationality": state,
        "citizenship_class": citizenship,
        "document_type": "passport",
        "document_number": number,
        "issuing_state": state,
        "document_expiry": (datetime.now(UTC) + timedelta(days=2000)).date().isoformat(),
    }
