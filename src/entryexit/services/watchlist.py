"""Watchlist screening with a human in the loop.

The watchlist is a separately keyed gallery kept by the ``watchlist_manager`` role. Staged
travelers' references and every live capture are searched against it; a score at or above the
threshold raises an alert with its evidence, and an officer must disposition every alert with
a reason. Nothing is denied automatically: the only effect on the gate is that a traveler with
an open alert is sent to ``manual``, an officer's desk, with no reason the gate could read.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics.compare import Template, l2_normalise
from entryexit.documents.text import excerpt
from entryexit.domain.access import Permission, Principal
from entryexit.domain.model import Flight
from entryexit.errors import ConflictError, InvalidInputError, NotFoundError
from entryexit.services.audit import AuditTrail
from entryexit.services.callers import for_caller
from entryexit.services.gallery import StagedGallery
from entryexit.services.generations import GenerationCheck, Stamp
from entryexit.services.policies import PolicyService
from entryexit.services.ports import (
    AlertRecord,
    ChangeFeed,
    Clock,
    FaceAnalyser,
    IndexBuilder,
    TemplateIndex,
    WatchlistEntry,
)
from entryexit.services.thresholds import OperatingThresholds
from entryexit.services.unit_of_work import UnitOfWork, UnitOfWorkFactory, in_transaction

# Every change to the list bumps this counter in its own transaction; each process compares
# it with its copy's before each use, so another instance's change is used by the next capture.
GENERATION = "watchlist"
_LABEL = 32


class Disposition(StrEnum):
    CONFIRMED = "confirmed"
    DISMISSED_DIFFERENT_PERSON = "dismissed_different_person"
    DISMISSED_OTHER = "dismissed_other"


@dataclass(frozen=True, slots=True)
class WatchlistSnapshot:
    """The list as this process holds it: its entries, their index, the generation read."""

    ids: tuple[str, ...]
    index: TemplateIndex
    stamp: Stamp


class WatchlistService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        engine: FaceAnalyser,
        clock: Clock,
        policies: PolicyService,
        thresholds: OperatingThresholds,
        audit: AuditTrail,
        build_index: IndexBuilder,
        threshold_override: float | None = None,
        changes: ChangeFeed | None = None,
    ) -> None:
        self._build_index = build_index
        self._generation = GenerationCheck(uow, GENERATION, changes)
        self._uow = uow
        self._engine = engine
        self._clock = clock
        self._policies = policies
        self._thresholds = thresholds
        self._audit = audit
        self._override = threshold_override
        self._lock = threading.Lock()
        self._loaded: WatchlistSnapshot | None = None

    # --- the list ------------------------------------------------------------------------
    def add(self, actor: Principal, photo: bytes, category: str, reason_code: str) -> str:
        actor.require(Permission.WATCHLIST_MANAGE)
        category, reason_code = _label(category, "category"), _label(reason_code, "reason code")
        with for_caller(actor):
            analysis = self._engine.analyse_reference(photo)
        entry = WatchlistEntry(
            str(uuid.uuid4()),
            category,
            reason_code,
            self._engine.model,
            actor.key_id,
            self._clock(),
        )

        def store(uow: UnitOfWork) -> None:
            uow.watchlist.add_entry(entry, analysis.template.to_bytes())
            uow.generations.bump(GENERATION)
            self._audit.record(
                uow,
                "watchlist add",
                "ok",
                actor,
                "watchlist_entry",
                entry.id,
                {"category": category, "reason_code": reason_code},
            )
            uow.after_commit(self._invalidate)

        in_transaction(self._uow, store)
        return entry.id

    def remove(self, actor: Principal, entry_id: str) -> None:
        actor.require(Permission.WATCHLIST_MANAGE)

        def remove(uow: UnitOfWork) -> None:
            if not uow.watchlist.remove_entry(entry_id, self._clock()):
                raise NotFoundError(
                    f"no watchlist entry {excerpt(entry_id)} (or it was removed already)"
                )
            uow.generations.bump(GENERATION)
            self._audit.record(uow, "watchlist remove", "ok", actor, "watchlist_entry", entry_id)
            uow.after_commit(self._invalidate)

        in_transaction(self._uow, remove)

    def entries(self, actor: Principal) -> list[WatchlistEntry]:
        actor.require(Permission.WATCHLIST_MANAGE)
        with self._uow(read_only=True) as uow:
            return uow.watchlist.entries()

    # --- screening -----------------------------------------------------------------------
    def screen_gallery(self, uow: UnitOfWork, flight: Flight, gallery: StagedGallery) -> int:
        """Search every staged traveler's reference against the list, raising alerts in the
        staging transaction; returns how many are new."""
        if len(gallery) == 0:
            return 0
        raised = 0
        for row, entry, score in self._hits(gallery.matrix):
            raised += self._raise(
                uow, "staging", flight, gallery.traveler_ids[row], None, entry, score
            )
        return raised

    def current(self, within: UnitOfWork | None = None) -> WatchlistSnapshot:
        """The list as it is now, checked (and reloaded if changed) in ``within``, the
        caller's read unit of work, when given: a capture checks it in the one read it makes
        before its model runs."""
        return self._load(within)

    def capture_hits(
        self, live: NDArray[np.float32], snapshot: WatchlistSnapshot | None = None
    ) -> list[tuple[str, float]]:
        """(entry, score) of every list entry a live capture reaches: memory only, so it runs
        before the capture's transaction opens. ``snapshot``: the list as :meth:`current`
        gave it for this capture (else checked now)."""
        return [(entry, score) for _, entry, score in self._hits(live[np.newaxis, :], snapshot)]

    def raise_capture_alerts(
        self,
        uow: UnitOfWork,
        flight: Flight,
        capture_id: str,
        traveler_id: str | None,
        hits: list[tuple[str, float]],
    ) -> None:
        for entry, score in hits:
            self._raise(uow, "gate", flight, traveler_id, capture_id, entry, score)

    @staticmethod
    def has_open_alert(uow: UnitOfWork, traveler_id: str) -> bool:
        return uow.watchlist.has_open_alert(traveler_id)

    def _hits(
        self, probes: NDArray[np.float32], snapshot: WatchlistSnapshot | None = None
    ) -> list[tuple[int, str, float]]:
        loaded = snapshot if snapshot is not None else self._load()
        if not loaded.ids:
            return []
        policy = self._policies.in_force(self._clock())
        threshold = (
            self._override
            if self._override is not None
            else self._thresholds.watchlist_threshold(policy.matching, len(loaded.ids))
        )
        return [
            (row, loaded.ids[column], score)
            for row, column, score in loaded.index.search(probes, threshold)
        ]

    def _raise(
        self,
        uow: UnitOfWork,
        source: str,
        flight: Flight,
        traveler_id: str | None,
        capture_id: str | None,
        entry_id: str,
        score: float,
    ) -> int:
        policy = self._policies.in_force(self._clock())
        alert = AlertRecord(
            id=str(uuid.uuid4()),
            source=source,
            flight_id=flight.id,
            traveler_id=traveler_id,
            capture_id=capture_id,
            watchlist_entry_id=entry_id,
            score=score,
            model=self._engine.model,
            policy_version=policy.version,
            created_at=self._clock(),
            status="open",
        )
        if not uow.watchlist.add_alert(alert):
            return 0
        self._audit.record(
            uow,
            "watchlist alert",
            "open",
            None,
            "alert",
            alert.id,
            {"source": source, "score": f"{score:.4f}", "entry": entry_id},
            policy_version=policy.version,
        )
        return 1

    def _load(self, within: UnitOfWork | None = None) -> WatchlistSnapshot:
        """The list as this process holds it, after one cheap read of the list's generation
        (none while PostgreSQL pushes news of changes and none came); rebuilt when another
        process (or this one) changed the list."""
        loaded = self._loaded
        current, stamp = self._generation.check(None if loaded is None else loaded.stamp, within)
        if loaded is not None and current:
            if stamp != loaded.stamp:
                loaded = self._loaded = replace(loaded, stamp=stamp)
            return loaded
        with self._lock:
            if self._loaded is not None and self._loaded.stamp.generation == stamp.generation:
                return self._loaded
            # Read after the generation: a change committed in between is read here and
            # labelled with the older generation, so the next use reloads (never the reverse).
            if within is not None:
                stored = within.watchlist.templates(self._engine.model)
            else:
                with self._uow(read_only=True) as uow:
                    stored = uow.watchlist.templates(self._engine.model)
            dimension = self._engine.dimension
            matrix = (
                l2_normalise(
                    np.stack([Template.from_bytes(t, "", dimension).vector for _, t in stored])
                )
                if stored
                else np.empty((0, dimension), dtype=np.float32)
            )
            self._loaded = WatchlistSnapshot(
                tuple(i for i, _ in stored), self._build_index(matrix), stamp
            )
            return self._loaded

    def _invalidate(self) -> None:
        with self._lock:
            self._loaded = None

    # --- alerts --------------------------------------------------------------------------
    def alerts(self, actor: Principal, status: str | None = "open") -> list[AlertRecord]:
        actor.require(Permission.ALERT_READ)
        with self._uow(read_only=True) as uow:
            return uow.watchlist.alerts(status, 200)

    def disposition(
        self, actor: Principal, alert_id: str, disposition: Disposition, reason: str
    ) -> AlertRecord:
        actor.require(Permission.ALERT_DISPOSITION)
        text = reason.strip()
        if not text or len(text) > 500:
            raise InvalidInputError("a disposition needs a reason (1-500 characters)")

        def decide(uow: UnitOfWork) -> AlertRecord:
            if uow.watchlist.get_alert(alert_id) is None:
                raise NotFoundError(f"alert {excerpt(alert_id)} does not exist")
            if not uow.watchlist.disposition_alert(
                alert_id, disposition.value, text, actor.key_id, self._clock()
            ):
                raise ConflictError("this alert has a disposition already")
            self._audit.record(
                uow, "alert disposition", disposition.value, actor, "alert", alert_id
            )
            updated = uow.watchlist.get_alert(alert_id)
            assert updated is not None
            return updated

        return in_transaction(self._uow, decide)


def _label(value: str, what: str) -> str:
    text = value.strip()
    if not text or len(text) > _LABEL or not text.replace("-", "").replace("_", "").isalnum():
        raise InvalidInputError(f"{what}: 1-{_LABEL} letters, digits, '-' or '_'")
    return text
