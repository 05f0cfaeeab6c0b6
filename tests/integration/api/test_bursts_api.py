"""Bursts through the API, on the real engine and database: one capture per burst, bad frames
named, too many or only unreadable frames refused with a problem and nothing stored."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from entryexit.adapters.storage.tables import AuditEventRow, CaptureRow, EncounterRow
from entryexit.biometrics.embed import SFACE_MANIFEST
from tests.conftest import lfw_image
from tests.integration.api.conftest import Api, staged_flight

pytestmark = [pytest.mark.models, pytest.mark.lfw]

GATE_FIELDS = {"capture_id", "decision", "reasons", "already_processed"}


def send(api: Api, flight_id: str, frames: list[bytes], role: str = "gate") -> Any:
    return api.client.post(
        f"/v1/flights/{flight_id}/captures",
        files=[("photo", (f"frame{i}.jpg", data, "image/jpeg")) for i, data in enumerate(frames)],
        data={"gate": "G7", "device": "cam-1"},
        headers=api.headers(role),
    )


def stored(api: Api) -> dict[str, int]:
    engine = api.services.uow.engine
    with engine.connect() as connection:

        def count(query: Any) -> int:
            return int(connection.scalar(query) or 0)

        return {
            "captures": count(select(func.count()).select_from(CaptureRow)),
            "encounters": count(select(func.count()).select_from(EncounterRow)),
            "capture_events": count(
                select(func.count())
                .select_from(AuditEventRow)
                .where(AuditEventRow.action == "capture")
            ),
        }


def photo(lfw: Path, person: str, number: int) -> bytes:
    return lfw_image(lfw, person, number).read_bytes()


def blank() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 200, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def fused_threshold(frames: int) -> float:
    """The threshold a probe of ``frames`` frames meets against a one-photo entry (every
    traveler of ``staged_flight`` enrols one)."""
    return SFACE_MANIFEST.calibration("flip").gallery_threshold(1e-3, frames, references=1)


def test_a_burst_of_one_and_of_three_frames_each_make_one_capture(api: Api, lfw_dir: Path) -> None:
    flight_id, refs = staged_flight(api, lfw_dir)
    one = send(api, flight_id, [photo(lfw_dir, "Colin_Powell", 2)])
    assert one.status_code == 200, one.text
    assert set(one.json()) == GATE_FIELDS
    assert one.json()["decision"] == "match"
    assert stored(api) == {"captures": 1, "encounters": 1, "capture_events": 1}

    frames = [photo(lfw_dir, "Ariel_Sharon", n) for n in (2, 3, 4)]
    gate = send(api, flight_id, frames)
    assert gate.status_code == 200, gate.text
    assert set(gate.json()) == GATE_FIELDS  # a gate learns nothing more from a burst
    assert gate.json()["decision"] == "match"
    assert stored(api) == {"captures": 2, "encounters": 2, "capture_events": 2}

    officer = send(api, flight_id, frames, role="officer").json()
    assert officer["traveler_ref"] == refs["Ariel_Sharon"]
    assert officer["frames_fused"] == 3
    assert officer["threshold"] == fused_threshold(3)
    assert officer["threshold"] != fused_threshold(1)
    assert officer["already_processed"] is True
    assert stored(api) == {"captures": 3, "encounters": 2, "capture_events": 3}


def test_a_bad_frame_among_good_ones_is_named_in_the_outcome(api: Api, lfw_dir: Path) -> None:
    flight_id, refs = staged_flight(api, lfw_dir)
    frames = [photo(lfw_dir, "Colin_Powell", 2), blank(), b"not an image at all"]
    response = send(api, flight_id, frames, role="officer")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == "match"
    assert body["traveler_ref"] == refs["Colin_Powell"]
    assert body["reasons"] == ["frame_2_no_face", "frame_3_unreadable"]
    assert body["frames_fused"] == 1
    assert body["threshold"] == fused_threshold(1)
    assert stored(api)["captures"] == 1


def test_all_bad_frames_and_too_many_frames_are_refused_and_nothing_is_stored(
    api: Api, lfw_dir: Path
) -> None:
    flight_id, _ = staged_flight(api, lfw_dir)
    unreadable = send(api, flight_id, [b"junk", b"\xff\xd8\xff more junk", b"x"])
    assert unreadable.status_code == 422, unreadable.text
    assert unreadable.headers["content-type"].startswith("application/problem+json")

    too_many = send(api, flight_id, [photo(lfw_dir, "Colin_Powell", n) for n in (2, 3, 4, 5)])
    assert too_many.status_code == 422, too_many.text
    assert "at most 3 frames" in too_many.json()["detail"]
    assert stored(api) == {"captures": 0, "encounters": 0, "capture_events": 0}

    no_face = send(api, flight_id, [blank(), blank()])
    assert no_face.status_code == 200
    assert no_face.json()["decision"] == "recapture"
    assert no_face.json()["reasons"] == ["no_face"]
    assert stored(api) == {"captures": 1, "encounters": 0, "capture_events": 1}
