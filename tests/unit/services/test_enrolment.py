"""Enrolment: a reference photo becomes a sealed template (and its image, for the console),
kept as long as the policy keeps its traveler's class's reference templates."""

from __future__ import annotations

from datetime import timedelta

import pytest

from entryexit.biometrics.quality import QualityReason
from entryexit.domain.model import CitizenshipClass, DocumentKey, PhotoSource
from entryexit.errors import ImageDecodeError, NoFaceError
from tests.fake_storage import InjectedCommitError
from tests.unit.services.world import OFFICER, World, traveler

DOC = DocumentKey("UTO", "N1")


def test_a_new_document_gets_a_traveler_and_its_template() -> None:
    world = World()
    enrolment = world.enrolment.enrol(DOC, b"face:1", PhotoSource.PASSPORT, OFFICER)
    assert enrolment.model == "fake-model"
    assert enrolment.quality.acceptable
    row = world.uow.tables.templates[enrolment.template_id]
    assert (row.traveler_id, row.source, row.model) == (
        enrolment.traveler_id,
        PhotoSource.PASSPORT,
        "fake-model",
    )
    assert row.vector == world.engine.analyse(b"face:1").template.to_bytes()
    assert row.image == b"face:1"  # kept for the console's side-by-side view
    assert world.traveler_id("N1") == enrolment.traveler_id
    event = world.uow.tables.audit_events[-1].entry
    assert (event.action, event.actor_key_id, event.policy_version) == (
        "reference enrol",
        OFFICER.key_id,
        "default-2",
    )
    assert event.details == {"source": "passport", "model": "fake-model"}  # nothing personal

    again = world.enrolment.enrol(DOC, b"face:2", PhotoSource.VISA)
    assert again.traveler_id == enrolment.traveler_id
    assert again.template_id != enrolment.template_id


@pytest.mark.parametrize(
    ("citizenship", "hours"),
    [
        (None, 12),  # not on any manifest yet: the shortest period of any class
        (CitizenshipClass.CITIZEN, 12),
        (CitizenshipClass.FOREIGN_NATIONAL, 336),
    ],
)
def test_a_template_expires_with_its_classs_retention(
    citizenship: CitizenshipClass | None, hours: int
) -> None:
    world = World()
    if citizenship is not None:
        world.flight(travelers=[traveler("N1", citizenship)])
    # A citizen's document is the home state's, a foreign national's a foreign state's.
    document = world.document(DOC.number)
    enrolment = world.enrolment.enrol(document, b"face:1", PhotoSource.PASSPORT)
    row = world.uow.tables.templates[enrolment.template_id]
    assert row.expires_at == row.created_at + timedelta(hours=hours)


def test_a_poor_photo_is_enrolled_with_its_quality_reported() -> None:
    world = World()
    enrolment = world.enrolment.enrol(DOC, b"blurred:3", PhotoSource.PASSPORT)
    assert not enrolment.quality.acceptable
    assert QualityReason.BLUR in enrolment.quality.reasons
    stored = world.uow.tables.templates[enrolment.template_id].vector
    assert stored == world.engine.analyse(b"face:3").template.to_bytes()


@pytest.mark.parametrize(
    ("photo", "error"), [(b"empty", NoFaceError), (b"\x00x", ImageDecodeError)]
)
def test_a_photo_without_a_face_enrols_nothing(photo: bytes, error: type[Exception]) -> None:
    world = World()
    events = len(world.uow.tables.audit_events)
    with pytest.raises(error):
        world.enrolment.enrol(DOC, photo, PhotoSource.PASSPORT)
    assert world.uow.tables.templates == {}
    assert world.uow.tables.documents == {}
    assert len(world.uow.tables.audit_events) == events


def test_an_enrolment_that_fails_to_commit_leaves_no_traveler() -> None:
    world = World()
    world.uow.fail_commit_after(0)
    with pytest.raises(InjectedCommitError):
        world.enrolment.enrol(DOC, b"face:1", PhotoSource.PASSPORT)
    tables = world.uow.tables
    assert (tables.templates, tables.documents, tables.travelers) == ({}, {}, {})
