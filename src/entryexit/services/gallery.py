"""Staged galleries: each flight's reference templates, fused per traveler, held in memory."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from entryexit.biometrics.compare import Template, l2_normalise
from entryexit.domain.model import DocumentKey, Flight, StagingReport
from entryexit.errors import ConflictError, NotFoundError
from entryexit.services.ports import Clock, Store


@dataclass(frozen=True, slots=True)
class StagedGallery:
    """One row per traveler: the L2-normalised mean of their reference templates."""

    flight_id: str
    version: int
    model: str
    traveler_ids: tuple[str, ...]
    matrix: NDArray[np.float32]
    staged_at: datetime

    def __len__(self) -> int:
        return len(self.traveler_ids)


def fuse_templates(
    vectors_by_traveler: dict[str, list[NDArray[np.float32]]],
) -> tuple[tuple[str, ...], NDArray[np.float32]]:
    """Mean template per traveler (better than keeping the max of several; see issue 7)."""
    traveler_ids = tuple(sorted(vectors_by_traveler))
    if not traveler_ids:
        return (), np.empty((0, 0), dtype=np.float32)
    means = np.stack([np.mean(vectors_by_traveler[t], axis=0) for t in traveler_ids])
    return traveler_ids, l2_normalise(means)


class GalleryService:
    """Builds galleries from the store and keeps them; a process that finds its copy older
    than the flight's ``gallery_version`` (another worker restaged) rebuilds it."""

    def __init__(self, store: Store, clock: Clock, model: str, dimension: int) -> None:
        self._store = store
        self._clock = clock
        self._model = model
        self._dimension = dimension
        self._galleries: dict[str, StagedGallery] = {}
        self._lock = threading.Lock()

    def stage(self, flight_id: str) -> StagingReport:
        flight = self._store.get_flight(flight_id)
        if flight is None:
            raise NotFoundError(f"flight {flight_id} does not exist")
        previous = self._galleries.get(flight_id)
        statuses = self._store.manifest_status(flight_id, self._model)
        version = self._store.mark_gallery_staged(flight_id, self._clock())
        gallery = self._build(flight_id, version)
        with self._lock:
            self._galleries[flight_id] = gallery
        before = set(previous.traveler_ids) if previous else set()
        after = set(gallery.traveler_ids)
        without_photo: tuple[DocumentKey, ...] = tuple(
            s.document for s in statuses if not s.has_photo
        )
        return StagingReport(
            flight_id=flight_id,
            gallery_version=version,
            travelers=len(statuses),
            with_photo=len(after),
            added=len(after - before),
            removed=len(before - after),
            unchanged=len(after & before),
            without_photo=without_photo,
        )

    def gallery_for(self, flight: Flight) -> StagedGallery:
        if not flight.staged:
            raise ConflictError(f"the gallery of flight {flight.id} has not been staged")
        cached = self._galleries.get(flight.id)
        if cached is not None and cached.version == flight.gallery_version:
            return cached
        rebuilt = self._build(flight.id, flight.gallery_version)
        with self._lock:
            self._galleries[flight.id] = rebuilt
        return rebuilt

    def _build(self, flight_id: str, version: int) -> StagedGallery:
        vectors: dict[str, list[NDArray[np.float32]]] = {}
        for stored in self._store.gallery_templates(flight_id, self._model):
            template = Template.from_bytes(stored.vector, stored.model, self._dimension)
            vectors.setdefault(stored.traveler_id, []).append(template.vector)
        traveler_ids, matrix = fuse_templates(vectors)
        return StagedGallery(flight_id, version, self._model, traveler_ids, matrix, self._clock())

    def forget(self, flight_id: str) -> None:
        with self._lock:
            self._galleries.pop(flight_id, None)
