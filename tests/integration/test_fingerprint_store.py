"""The fingerprint store's flight query over SQLite and PostgreSQL: which travelers of a
flight have enrolled prints (the console's "prints possible" marking), without opening any
template; a traveler erased (their data key shredded) no longer counts, nor one taken off
the manifest."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import insert

from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import DocumentRow
from entryexit.domain.model import AGENCY, CitizenshipClass, DocumentKey, DocumentType
from tests.integration.test_erasure_storage import DEPARTURE, NUMBER, board, person, store
from tests.repository_driver import RepositoryDriver

__all__ = ["store"]


def enrol(store: RepositoryDriver, number: str) -> None:
    store.write(
        lambda uow: uow.fingerprints.enrol(
            DocumentKey("UTO" if number == "C1" else "XYZ", number),
            2,
            "nbis-mcc-v1",
            b"minutiae",
            40,
            DEPARTURE,
            DEPARTURE,
        )
    )


def test_a_flights_travelers_with_prints(store: RepositoryDriver) -> None:
    ids = board(store)
    assert store.read(lambda uow: uow.fingerprints.travelers_enrolled("f1")) == frozenset()
    enrol(store, NUMBER)
    assert store.read(lambda uow: uow.fingerprints.travelers_enrolled("f1")) == {ids["foreign"]}
    assert store.read(lambda uow: uow.fingerprints.travelers_enrolled("nope")) == frozenset()
    # Off the manifest in force: no longer one of the flight's travelers.
    store.replace_manifest("f1", [person("C1", CitizenshipClass.CITIZEN)], DEPARTURE)
    assert store.read(lambda uow: uow.fingerprints.travelers_enrolled("f1")) == frozenset()


def test_an_erased_traveler_no_longer_counts(store: RepositoryDriver) -> None:
    ids = board(store)
    enrol(store, NUMBER)
    store.write(lambda uow: uow.retention.erase_traveler(ids["foreign"]))
    assert store.read(lambda uow: uow.fingerprints.travelers_enrolled("f1")) == frozenset()


def test_citizens_prints_are_found_by_class_or_home_passport_and_purged(
    store: RepositoryDriver,
) -> None:
    """Prints enrolled before the citizen rule (the store takes them as it is told): the
    purge deletes a citizen's, batch by batch, and never a foreign national's."""
    ids = board(store)
    enrol(store, NUMBER)
    enrol(store, "C1")  # the home state's passport holder, class citizen
    assert store.write(lambda uow: uow.retention.purge_citizens_prints("UTO", 1)) == 1
    assert store.write(lambda uow: uow.retention.purge_citizens_prints("UTO", 1)) == 0
    left = store.read(lambda uow: uow.fingerprints.of_traveler(ids["foreign"], "nbis-mcc-v1"))
    assert [f.finger for f in left] == [2]
    # A manifest shows the foreign national to be a citizen (a dual national): by class.
    dual = replace(
        person(NUMBER, CitizenshipClass.FOREIGN_NATIONAL),
        citizenship_class=CitizenshipClass.CITIZEN,
    )
    store.replace_manifest("f1", [dual], DEPARTURE)
    assert store.read(lambda uow: uow.travelers.citizens({ids["foreign"]}, "UTO")) == {
        ids["foreign"]
    }
    assert store.write(lambda uow: uow.fingerprints.delete_of_traveler(ids["foreign"])) == 1
    enrol(store, NUMBER)
    assert store.write(lambda uow: uow.retention.purge_citizens_prints("UTO")) == 1
    assert store.read(lambda uow: uow.fingerprints.of_traveler(ids["foreign"], "nbis-mcc-v1")) == []


def test_the_flights_citizens_with_prints_are_found_without_opening_anything(
    store: RepositoryDriver,
) -> None:
    ids = board(store)
    enrol(store, NUMBER)
    citizens = lambda uow: uow.fingerprints.citizens_enrolled("f1", "UTO")  # noqa: E731
    assert store.read(citizens) == frozenset()  # the citizen C1 has no prints
    enrol(store, "C1")  # before the rule: a home passport holder's prints
    assert store.read(citizens) == {ids["citizen"]}
    dual = replace(
        person(NUMBER, CitizenshipClass.FOREIGN_NATIONAL),
        citizenship_class=CitizenshipClass.CITIZEN,
    )
    store.replace_manifest("f1", [person("C1", CitizenshipClass.CITIZEN), dual], DEPARTURE)
    assert store.read(citizens) == {ids["citizen"], ids["foreign"]}
    assert store.read(lambda uow: uow.fingerprints.citizens_enrolled("f1", "XYZ")) == {
        ids["citizen"],
        ids["foreign"],
    }
    assert store.read(lambda uow: uow.fingerprints.citizens_enrolled("nope", "UTO")) == frozenset()


def second_document(store: RepositoryDriver, traveler_id: str, details_by: str) -> None:
    """Another document of the traveler (an identity card of the foreign state), stored after
    their passport, whose class says citizen (a dual national), as ``details_by`` stated."""
    with store.engine.begin() as connection:
        connection.execute(
            insert(DocumentRow).values(
                id=str(uuid.uuid4()),
                traveler_id=traveler_id,
                issuing_state="XYZ",
                number_digest="0" * 64,
                document_type=DocumentType.ID_CARD.value,
                citizenship_class=CitizenshipClass.CITIZEN.value,
                details_by=details_by,
            )
        )


def test_a_citizen_document_beside_a_visitor_one_gets_one_answer_from_every_path(
    store: RepositoryDriver,
) -> None:
    """Review L11: the 1:1 read one described document (``LIMIT 1``, no order), the purge
    and a manifest's swap any document: a traveler with a foreign passport and a citizen's
    identity card could be compared by one and deleted by the other. Any document counts."""
    ids = board(store)
    enrol(store, NUMBER)
    foreign = ids["foreign"]
    asked = lambda uow: uow.travelers.citizens({foreign, ids["citizen"]}, "UTO")  # noqa: E731
    assert store.read(asked) == {ids["citizen"]}  # the foreign national alone: no citizen
    second_document(store, foreign, AGENCY)
    # The comparisons' question (the 1:1, a search, a case's prints), with and without the
    # sealed details, the manifest swap's and the purge's: one answer.
    assert store.read(asked) == {ids["citizen"], foreign}
    assert store.read(lambda uow: uow.travelers.citizens({foreign}, "UTO", sealed=False)) == {
        foreign
    }
    assert store.read(lambda uow: uow.fingerprints.citizens_enrolled("f1", "UTO")) == {foreign}
    assert store.write(lambda uow: uow.retention.purge_citizens_prints("UTO")) == 1


def test_a_carriers_word_refuses_comparisons_but_deletes_nothing(
    store: RepositoryDriver,
) -> None:
    ids = board(store)
    enrol(store, NUMBER)
    foreign = ids["foreign"]
    second_document(store, foreign, "EE")
    assert store.read(lambda uow: uow.travelers.citizens({foreign}, "UTO")) == {foreign}
    assert store.read(lambda uow: uow.fingerprints.citizens_enrolled("f1", "UTO")) == frozenset()
    assert store.write(lambda uow: uow.retention.purge_citizens_prints("UTO")) == 0


def test_the_comparisons_question_opens_only_what_clear_columns_leave(
    store: RepositoryDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review L10: one query on clear columns for the batch; sealed details are opened for
    the travelers it does not answer, and for none without ``sealed``."""
    ids = board(store)
    opened: list[str] = []
    original = Sealer.open_personal

    def spy(self: Sealer, doc: DocumentRow, *args: Any, **kwargs: Any) -> dict[str, str]:
        opened.append(doc.traveler_id)
        return original(self, doc, *args, **kwargs)

    monkeypatch.setattr(Sealer, "open_personal", spy)
    both = {ids["citizen"], ids["foreign"]}
    assert store.read(lambda uow: uow.travelers.citizens(both, "UTO", sealed=False)) == {
        ids["citizen"]
    }
    assert opened == []
    assert store.read(lambda uow: uow.travelers.citizens(both, "UTO")) == {ids["citizen"]}
    assert opened == [ids["foreign"]]
