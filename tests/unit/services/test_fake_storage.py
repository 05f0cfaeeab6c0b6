"""The in-memory unit of work behaves as the services may rely on: transactions, read-only
units, reruns on conflicts, the audit chain, and the SQL store's repository semantics."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from entryexit.domain.admission import ExitLink
from entryexit.domain.audit import AuditEntry, verify_chain
from entryexit.domain.model import (
    CitizenshipClass,
    Direction,
    DocumentKey,
    DocumentType,
    Encounter,
    EncounterMethod,
    Flight,
    ManifestTraveler,
    PhotoSource,
    Sex,
)
from entryexit.domain.policy import parse_policy
from entryexit.errors import ConflictError, TransactionConflictError
from entryexit.services.policies import shipped_policy_text
from entryexit.services.ports import AlertRecord, CaptureRecord, NewAdmission
from entryexit.services.unit_of_work import ATTEMPTS, UnitOfWork, in_transaction
from tests.fake_storage import (
    ERASED,
    TEST_AUDIT_KEY,
    DatabaseUnreachableError,
    FakeBoardQueries,
    FakeReportQueries,
    FakeUnitOfWorkFactory,
    InjectedCommitError,
)
from tests.fakes import StaticKeyProvider

DEFAULT_POLICY = parse_policy(shipped_policy_text("default.toml"))

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def flight(flight_id: str = "f1", direction: Direction = Direction.EXIT) -> Flight:
    return Flight(flight_id, "XA", "100", NOW + timedelta(hours=2), "JFK", "LHR", direction, NOW)


def traveler(number: str, surname: str = "DOE", sex: Sex = Sex.FEMALE) -> ManifestTraveler:
    return ManifestTraveler(
        surname=surname,
        given_names="JANE",
        date_of_birth=date(1990, 1, 2),
        sex=sex,
        nationality="XYZ",
        citizenship_class=CitizenshipClass.FOREIGN_NATIONAL,
        document_type=DocumentType.PASSPORT,
        document=DocumentKey("XYZ", number),
        document_expiry=date(2030, 1, 1),
    )


def encounter(
    encounter_id: str, traveler_id: str, flight_id: str = "f1", **changes: object
) -> Encounter:
    fields: dict[str, object] = {
        "id": encounter_id,
        "flight_id": flight_id,
        "traveler_id": traveler_id,
        "direction": Direction.EXIT,
        "method": EncounterMethod.BIOMETRIC,
        "gate": "A1",
        "device": "cam",
        "occurred_at": NOW,
        "score": 0.8,
        "model": "m",
        "policy_version": "p1",
        "capture_id": None,
    }
    fields.update(changes)
    return Encounter(**fields)  # type: ignore[arg-type]


def capture(capture_id: str, decision: str = "no_match", **changes: object) -> CaptureRecord:
    fields: dict[str, object] = {
        "id": capture_id,
        "flight_id": "f1",
        "gate": "A1",
        "device": "cam",
        "received_at": NOW,
        "decision": decision,
        "reason": None,
        "score": None,
        "traveler_id": None,
        "model": "m",
    }
    fields.update(changes)
    return CaptureRecord(**fields)  # type: ignore[arg-type]


def audit(action: str = "test") -> AuditEntry:
    return AuditEntry(occurred_at=NOW, action=action, outcome="ok")


@pytest.fixture
def factory() -> FakeUnitOfWorkFactory:
    return FakeUnitOfWorkFactory()


# --- transactions --------------------------------------------------------------------------


def test_commit_publishes_and_leaving_without_commit_discards(
    factory: FakeUnitOfWorkFactory,
) -> None:
    with factory() as uow:
        uow.flights.add(flight("f1"))
        uow.commit()
    with factory() as uow:
        uow.flights.add(flight("f2"))
        assert uow.flights.get("f2") is not None  # a unit of work sees its own writes
    assert set(factory.tables.flights) == {"f1"}
    assert (factory.commits, factory.rollbacks) == (1, 1)


def test_an_exception_rolls_everything_back(factory: FakeUnitOfWorkFactory) -> None:
    class BoomError(Exception):
        pass

    def use_case() -> None:
        with factory() as uow:
            uow.flights.add(flight())
            uow.audit.append(audit())
            raise BoomError

    with pytest.raises(BoomError):
        use_case()
    assert factory.tables.flights == {}
    assert factory.tables.audit_events == []


def test_uncommitted_writes_are_invisible_to_others(factory: FakeUnitOfWorkFactory) -> None:
    reports = FakeBoardQueries(factory.database)
    with factory() as writer:
        writer.flights.add(flight())
        with factory(read_only=True) as reader:
            assert reader.flights.get("f1") is None
        assert reports.flight_board(NOW, NOW + timedelta(days=1)) == []
        writer.commit()
    assert len(reports.flight_board(NOW, NOW + timedelta(days=1))) == 1


def test_after_commit_runs_only_after_a_successful_commit(
    factory: FakeUnitOfWorkFactory,
) -> None:
    ran: list[str] = []
    with factory() as uow:
        uow.flights.add(flight())
        uow.after_commit(lambda: ran.append("first"))
        uow.after_commit(lambda: ran.append(f"second sees {sorted(factory.tables.flights)}"))
        assert ran == []
        uow.commit()
    assert ran == ["first", "second sees ['f1']"]

    with factory() as uow:
        uow.flights.add(flight("f2"))
        uow.after_commit(lambda: ran.append("rolled back"))
    factory.fail_commit_after(0)
    with factory() as uow:
        uow.flights.add(flight("f3"))
        uow.after_commit(lambda: ran.append("failed commit"))
        with pytest.raises(InjectedCommitError):
            uow.commit()
        with pytest.raises(AssertionError):
            uow.flights.add(flight("f4"))  # a failed unit of work is finished
    assert set(factory.tables.flights) == {"f1"}
    assert ran == ["first", "second sees ['f1']"]


def test_a_read_only_unit_of_work_refuses_writes(factory: FakeUnitOfWorkFactory) -> None:
    factory.seed(lambda uow: uow.flights.add(flight()))
    with factory(read_only=True) as uow:
        assert uow.flights.get("f1") is not None
        with pytest.raises(AssertionError, match="read-only"):
            uow.audit.append(audit())
        with pytest.raises(AssertionError, match="read-only"):
            uow.captures.add_encounter(encounter("e1", "t1"))
        uow.commit()  # allowed: nothing to publish
    assert factory.tables.audit_events == []


def test_misuse_outside_the_with_block_or_after_commit_is_refused(
    factory: FakeUnitOfWorkFactory,
) -> None:
    uow = factory()
    with pytest.raises(AssertionError):
        uow.flights.get("f1")
    with uow:
        uow.flights.add(flight())
        uow.commit()
        assert uow.flights.get("f1") is not None  # reading after commit is fine
        with pytest.raises(AssertionError):
            uow.flights.add(flight("f2"))  # would be lost in SQL: refused
        with pytest.raises(AssertionError):
            uow.commit()
    with pytest.raises(AssertionError):
        uow.flights.get("f1")


def test_a_duplicate_encounter_returns_false_and_the_rest_stands(
    factory: FakeUnitOfWorkFactory,
) -> None:
    factory.seed(lambda uow: uow.captures.add_encounter(encounter("e1", "t1")))
    with factory() as uow:
        uow.captures.add_capture(capture("c1", "match", traveler_id="t1"))
        assert uow.captures.add_encounter(encounter("e2", "t1")) is False
        assert uow.captures.add_encounter(encounter("e3", "t1", flight_id="f2")) is True
        uow.audit.append(audit("capture"))
        uow.commit()
    assert set(factory.tables.captures) == {"c1"}
    assert set(factory.tables.encounters) == {"e1", "e3"}
    assert [e.entry.action for e in factory.tables.audit_events] == ["capture"]


def test_overlapping_writers_conflict_instead_of_losing_an_update(
    factory: FakeUnitOfWorkFactory,
) -> None:
    with factory() as first:
        first.audit.append(audit("first"))
        with factory() as second:
            second.audit.append(audit("second"))
            second.commit()
        with pytest.raises(TransactionConflictError):
            first.commit()
    assert [e.entry.action for e in factory.tables.audit_events] == ["second"]
    assert factory.conflicts == 1


# --- in_transaction and failure injection ----------------------------------------------------


def test_in_transaction_reruns_the_whole_transaction_on_a_conflict(
    factory: FakeUnitOfWorkFactory,
) -> None:
    calls: list[int] = []

    def work(uow: UnitOfWork) -> int:
        calls.append(1)
        uow.flights.add(flight())
        return uow.audit.append(audit()).sequence

    factory.conflict_on_commit(times=2)
    assert in_transaction(factory, work) == 1
    assert len(calls) == 3
    assert [e.sequence for e in factory.tables.audit_events] == [1]
    assert (factory.commits, factory.conflicts, factory.write_commit_attempts) == (1, 2, 3)


def test_in_transaction_gives_up_after_its_attempts(factory: FakeUnitOfWorkFactory) -> None:
    calls: list[int] = []

    def work(uow: UnitOfWork) -> None:
        calls.append(1)
        uow.audit.append(audit())

    factory.conflict_on_commit(times=ATTEMPTS)
    with pytest.raises(TransactionConflictError):
        in_transaction(factory, work)
    assert len(calls) == ATTEMPTS
    assert factory.tables.audit_events == []
    assert factory.commits == 0
    in_transaction(factory, work)  # the injection is used up
    assert len(factory.tables.audit_events) == 1


def test_fail_commit_after_lets_n_commits_through_then_fails_one(
    factory: FakeUnitOfWorkFactory,
) -> None:
    factory.fail_commit_after(1, ConflictError("disk full"))
    for flight_id in ("f1", "f2", "f3"):
        try:
            with factory() as uow:
                uow.flights.add(flight(flight_id))
                uow.commit()
        except ConflictError:
            assert flight_id == "f2"
    assert set(factory.tables.flights) == {"f1", "f3"}
    with factory(read_only=True) as uow:  # read-only commits never count
        uow.commit()
    assert factory.write_commit_attempts == 3


def test_seed_neither_counts_nor_triggers_injection(factory: FakeUnitOfWorkFactory) -> None:
    factory.fail_commit_after(0)
    factory.seed(lambda uow: uow.flights.add(flight()))
    assert factory.commits == 0
    with factory() as uow:
        uow.flights.add(flight("f2"))
        with pytest.raises(InjectedCommitError):
            uow.commit()


def test_ping(factory: FakeUnitOfWorkFactory) -> None:
    factory.ping()
    factory.reachable = False
    with pytest.raises(DatabaseUnreachableError):
        factory.ping()


# --- the audit chain -------------------------------------------------------------------------


def test_the_audit_chain_verifies_across_commits_rollbacks_and_reruns(
    factory: FakeUnitOfWorkFactory,
) -> None:
    assert StaticKeyProvider().audit_key() == TEST_AUDIT_KEY
    in_transaction(factory, lambda uow: uow.audit.append(audit("one")))
    with factory() as uow:
        uow.audit.append(audit("discarded"))
    factory.conflict_on_commit(times=1)
    in_transaction(factory, lambda uow: uow.audit.append(audit("two")))
    with factory(read_only=True) as uow:
        events = uow.audit.events(0, 100)
        head = uow.audit.head()
        assert [e.entry.action for e in uow.audit.events(action="two")] == ["two"]
    assert [e.sequence for e in events] == [1, 2]
    assert head is not None
    assert verify_chain(events, TEST_AUDIT_KEY, head[0], head[1]).ok
    assert not verify_chain(events, b"another key", head[0], head[1]).ok


# --- repository semantics (as the SQL store) ------------------------------------------------


def test_replace_manifest_counts_and_shredding_erases_details(
    factory: FakeUnitOfWorkFactory,
) -> None:
    with factory() as uow:
        uow.flights.add(flight())
        first = uow.flights.replace_manifest("f1", [traveler("1"), traveler("2")], NOW)
        second = uow.flights.replace_manifest("f1", [traveler("2", "ROE"), traveler("3")], NOW)
        _, t2 = uow.travelers.add_reference_template(
            DocumentKey("XYZ", "2"), PhotoSource.PASSPORT, b"\x01\x02", "m", NOW, image=b"jpg"
        )
        uow.commit()
    assert (first.added, first.removed, first.updated, first.total) == (2, 0, 0, 2)
    assert (second.added, second.removed, second.updated, second.total) == (1, 1, 1, 2)
    with factory() as uow:
        status = {s.document.number: s for s in uow.flights.manifest_status("f1", "m")}
        assert status["2"].surname == "ROE"
        assert status["2"].has_photo
        assert not status["3"].has_photo
        assert [t.vector for t in uow.travelers.gallery_templates("f1", "m")] == [b"\x01\x02"]
        assert uow.travelers.reference_photo(t2) == b"jpg"
        assert uow.travelers.shred(t2) == 1
        assert uow.travelers.reference_photo(t2) is None
        assert ERASED in {s.surname for s in uow.flights.manifest_status("f1", "m")}
        assert [t.document.number for t in uow.flights.manifest_travelers("f1")] == ["3"]
        assert uow.travelers.profile(t2).date_of_birth is None
        uow.commit()
    identities = FakeReportQueries(factory.database).traveler_identities([t2])
    assert identities[t2].surname == ERASED


def test_admissions_open_once_and_close_once(factory: FakeUnitOfWorkFactory) -> None:
    def new(admission_id: str) -> NewAdmission:
        return NewAdmission(
            admission_id, "t1", "WT", date(2026, 1, 1), date(2026, 3, 1), "e1", "f0", b"v", "m", NOW
        )

    with factory() as uow:
        assert uow.admissions.open(new("a1"))
        assert not uow.admissions.open(new("a2"))
        assert uow.admissions.open_templates("m", "someone else", 10) == [("a1", b"v")]
        assert uow.admissions.open_templates("m", "t1", 10) == []
        uow.commit()
    overstays = FakeReportQueries(factory.database).in_country_overstays(date(2026, 6, 1))
    assert [a.id for a in overstays] == ["a1"]
    with factory() as uow:
        args = ("x1", "f9", "t1", date(2026, 6, 1), ExitLink.DOCUMENT, None)
        assert uow.admissions.close("a1", *args)
        assert not uow.admissions.close("a1", *args)
        assert uow.admissions.open_templates("m", "someone else", 10) == []
        assert uow.admissions.open(new("a2"))  # the first stay is closed
        uow.commit()
    reports = FakeReportQueries(factory.database)
    assert [
        a.id for a in reports.out_of_country_overstays(date(2026, 1, 1), date(2026, 12, 1))
    ] == ["a1"]


def test_alerts_are_not_repeated_while_open(factory: FakeUnitOfWorkFactory) -> None:
    def alert(alert_id: str, traveler_id: str | None, capture_id: str | None) -> AlertRecord:
        return AlertRecord(
            alert_id, "staging", "f1", traveler_id, capture_id, "w1", 0.9, "m", "p1", NOW, "open"
        )

    with factory() as uow:
        assert uow.watchlist.add_alert(alert("a1", "t1", None))
        assert not uow.watchlist.add_alert(alert("a2", "t1", None))
        assert uow.watchlist.add_alert(alert("a3", None, "c1"))
        assert not uow.watchlist.add_alert(alert("a4", None, "c1"))
        assert uow.watchlist.add_alert(alert("a5", None, None))
        assert uow.watchlist.add_alert(alert("a6", None, None))  # SQL: NULL matches nothing
        assert uow.watchlist.disposition_alert("a1", "cleared", "r", "o1", NOW)
        assert not uow.watchlist.disposition_alert("a1", "cleared", "r", "o1", NOW)
        assert uow.watchlist.add_alert(alert("a7", "t1", None))
        uow.commit()


def test_resolving_a_case_twice(factory: FakeUnitOfWorkFactory) -> None:
    with factory() as uow:
        uow.captures.add_capture(capture("c1", image=b"img", image_expires_at=NOW))
        assert uow.cases.resolve("c1", "confirmed", "o1", NOW)
        assert not uow.cases.resolve("c1", "confirmed", "o2", NOW)
        summary = uow.cases.get("c1")
        assert summary is not None
        assert (summary.resolved_by, summary.has_image) == ("o1", True)
        uow.commit()


def test_purge_counts_per_kind_and_rotation(factory: FakeUnitOfWorkFactory) -> None:
    later = NOW + timedelta(days=1)
    with factory() as uow:
        uow.flights.add(flight())
        uow.flights.mark_gallery_staged("f1", NOW, expires_at=NOW)
        uow.captures.add_capture(capture("c1", image=b"img", image_expires_at=NOW))
        uow.captures.add_capture(capture("c2", expires_at=NOW))
        uow.captures.add_capture(capture("c3"))
        uow.captures.add_encounter(encounter("e1", "t1", expires_at=NOW))
        uow.travelers.add_reference_template(
            DocumentKey("XYZ", "1"), PhotoSource.CHIP, b"v", "m", NOW, expires_at=later
        )
        uow.commit()
    with factory(read_only=True) as uow:
        assert uow.data_keys.counts_by_kek() == {"k1": 2}
    factory.database.current_kek = "k2"
    with factory() as uow:
        assert uow.data_keys.rotate_batch(1) == 2  # one data key and one capture image key
        assert uow.data_keys.rotate_batch(1) == 0
        assert uow.retention.purge_expired(NOW, DEFAULT_POLICY) == {
            "capture_images": 1,
            "idempotency_keys": 0,
            "fingerprint_templates": 0,
            "case_fingerprints": 0,
            "capture_records": 1,
            "reference_templates": 0,
            "encounter_records": 1,
            "manifest_entries": 0,
            "admissions": 0,
            "traveler_documents": 0,
            "manifest_conflicts": 0,
            "data_keys": 0,
            "travelers": 0,
            "staged_galleries": 1,
        }
        uow.commit()
    assert FakeReportQueries(factory.database).retention_counts(later, DEFAULT_POLICY)[
        "reference_templates"
    ] == {
        "held": 1,
        "overdue": 1,
    }
    with factory(read_only=True) as uow:
        assert uow.data_keys.counts_by_kek() == {"k2": 1}
        assert uow.cases.capture_image("c1") is None


def test_board_and_report_read_models(factory: FakeUnitOfWorkFactory) -> None:
    with factory() as uow:
        uow.flights.add(flight())
        uow.flights.replace_manifest("f1", [traveler("1"), traveler("2", sex=Sex.MALE)], NOW)
        t1 = uow.travelers.traveler_for_document(DocumentKey("XYZ", "1"))
        assert t1 is not None
        uow.travelers.add_reference_template(
            DocumentKey("XYZ", "1"), PhotoSource.PASSPORT, b"v", "m", NOW
        )
        uow.flights.mark_gallery_staged("f1", NOW)
        uow.captures.add_capture(capture("c1", "no_match"))
        uow.captures.add_capture(capture("c2", "match", received_at=NOW + timedelta(seconds=1)))
        uow.captures.add_encounter(encounter("e1", t1))
        uow.commit()
    board = FakeBoardQueries(factory.database)
    [(_, counts)] = board.flight_board(NOW, NOW + timedelta(days=1))
    assert (counts.travelers, counts.matched, counts.no_matches, counts.outstanding) == (2, 1, 1, 1)
    assert counts.open_cases == 1
    assert [c.id for c in board.recent_captures("f1", 10)] == ["c2", "c1"]
    assert [c.id for c in board.recent_captures(None, 10, open_only=True)] == ["c1"]
    reports = FakeReportQueries(factory.database)
    assert reports.decision_counts(NOW, NOW + timedelta(hours=1)) == {
        "captures_no_match": 1,
        "captures_match": 1,
        "encounters_biometric": 1,
    }
    assert reports.outcomes_by_sex(NOW, NOW) == {"F": {"travelers_with_photo": 1, "biometric": 1}}
    [confirmation] = reports.exit_confirmations(NOW, NOW + timedelta(days=1))
    assert (confirmation.travelers, confirmation.confirmed) == (2, 1)
