"""The fingerprint store's flight query over SQLite and PostgreSQL: which travelers of a
flight have enrolled prints (the console's "prints possible" marking), without opening any
template; a traveler erased (their data key shredded) no longer counts, nor one taken off
the manifest."""

from __future__ import annotations

from dataclasses import replace

from entryexit.domain.model import CitizenshipClass, DocumentKey
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
