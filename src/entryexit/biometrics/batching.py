"""Micro-batching of concurrent captures' embeddings into one forward pass (issue 17).

A capture is *locating* from the start of its detection until it reaches its embedding step.
When a capture reaches that step while another capture is locating, it opens a batch and
waits a bounded time (``max_wait_seconds``) for those peers: each peer that arrives hands its
crops over (and frees its worker, so a third capture can detect meanwhile), and the opener
runs ONE forward pass over every member's crops, then gives each member its own rows back.
A capture that finds no other capture locating embeds at once: a lone capture never waits.

Bounded on every side: a batch holds at most ``max_faces`` crops, the opener waits at most
``max_wait_seconds`` (and no longer than it takes every locating peer to arrive or give up),
members are served in arrival order, and a model failure fails every member with its own
:class:`~entryexit.errors.BiometricError`. Decoding is not locating: nobody waits for a capture
still decoding its image.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from entryexit.errors import BiometricError

DEFAULT_BATCH_MAX_FACES = 8

Embed = Callable[[Sequence[NDArray[np.uint8]]], NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class BatchStats:
    """Counters since start: forward passes run through the batcher, how many of them held
    more than one capture, captures and crops embedded, and the openers' total wait."""

    passes: int = 0
    shared_passes: int = 0
    captures: int = 0
    faces: int = 0
    wait_seconds: float = 0.0
    largest_batch: int = 0


@dataclass(slots=True)
class _Batch:
    crops: list[NDArray[np.uint8]] = field(default_factory=list)
    # (first row, row count) of each member, in arrival order.
    members: list[tuple[int, int]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    rows: NDArray[np.float32] | None = None
    failure: str | None = None

    def add(self, crops: Sequence[NDArray[np.uint8]]) -> int:
        self.members.append((len(self.crops), len(crops)))
        self.crops.extend(crops)
        return len(self.members) - 1

    def result(self, member: int) -> NDArray[np.float32]:
        if self.rows is None:
            # Each member gets its own error (never one object shared across threads).
            raise BiometricError(self.failure or "the batched forward pass failed")
        start, count = self.members[member]
        return self.rows[start : start + count]


class Locating:
    """One capture's stay in the locating state; leaving twice is harmless."""

    __slots__ = ("_batcher", "active")

    def __init__(self, batcher: EmbedBatcher) -> None:
        self._batcher = batcher
        self.active = True

    def __enter__(self) -> Locating:
        return self

    def __exit__(self, *_: object) -> None:
        self._batcher.leave(self)


class EmbedBatcher:
    """Joins concurrent captures' embedding steps into shared forward passes (thread-safe)."""

    def __init__(
        self,
        max_wait_seconds: float,
        max_faces: int = DEFAULT_BATCH_MAX_FACES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_wait_seconds <= 0 or max_faces < 2:
            raise BiometricError("an embedding batcher needs a positive wait and room for 2")
        self._max_wait = max_wait_seconds
        self._max_faces = max_faces
        self._clock = clock
        self._condition = threading.Condition()
        self._locating = 0
        self._open: _Batch | None = None
        self._stats = BatchStats()

    @property
    def stats(self) -> BatchStats:
        with self._condition:
            return self._stats

    @property
    def waiting(self) -> int:
        """Captures in the batch now open for joiners (0: none open)."""
        with self._condition:
            return len(self._open.members) if self._open is not None else 0

    def locating(self) -> Locating:
        """Call when a capture starts its detection; use as a context manager so that a
        capture that fails before its embedding step stops counting as a peer."""
        with self._condition:
            self._locating += 1
        return Locating(self)

    def leave(self, ticket: Locating) -> None:
        with self._condition:
            if ticket.active:
                ticket.active = False
                self._locating -= 1
                self._condition.notify_all()

    def embed(
        self,
        ticket: Locating,
        crops: Sequence[NDArray[np.uint8]],
        run: Embed,
        release: Callable[[], None],
    ) -> NDArray[np.float32]:
        """The rows of ``crops`` (in order), embedded alone or with concurrent captures'.

        ``run`` is this capture's own model instance; ``release`` frees it (called, before
        waiting, when another capture's instance will run the pass instead).
        """
        with self._condition:
            if ticket.active:
                ticket.active = False
                self._locating -= 1
            batch = self._open
            if batch is not None and len(batch.crops) + len(crops) <= self._max_faces:
                member = batch.add(crops)
                if len(batch.crops) >= self._max_faces:
                    self._open = None
                self._condition.notify_all()
                role = "member"
            elif self._locating == 0 or len(crops) >= self._max_faces:
                role = "alone"
            else:
                batch = _Batch()
                member = batch.add(crops)
                self._open = batch
                role = "opener"
        if role == "alone":
            rows = run(crops)
            self._count(1, len(crops), 0.0)
            return rows
        assert batch is not None
        if role == "member":
            release()
            batch.done.wait()
            return batch.result(member)
        return self._lead(batch, run)

    def _lead(self, batch: _Batch, run: Embed) -> NDArray[np.float32]:
        started = self._clock()
        deadline = started + self._max_wait
        with self._condition:
            while self._open is batch and self._locating > 0:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            if self._open is batch:
                self._open = None
        waited = self._clock() - started
        try:
            batch.rows = run(batch.crops)
        except BiometricError as exc:
            batch.failure = str(exc)
        except BaseException:
            batch.failure = "the batched forward pass failed"
            raise
        finally:
            batch.done.set()
            self._count(len(batch.members), len(batch.crops), waited)
        return batch.result(0)

    def _count(self, captures: int, faces: int, waited: float) -> None:
        with self._condition:
            stats = self._stats
            self._stats = BatchStats(
                passes=stats.passes + 1,
                shared_passes=stats.shared_passes + (captures > 1),
                captures=stats.captures + captures,
                faces=stats.faces + faces,
                wait_seconds=stats.wait_seconds + waited,
                largest_batch=max(stats.largest_batch, captures),
            )
