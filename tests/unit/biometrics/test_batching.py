"""The embedding batcher with a fake model and real threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from entryexit.biometrics.batching import EmbedBatcher, Locating
from entryexit.errors import BiometricError


class FakeModel:
    """Returns, for each crop, a row holding the crop's first pixel value; records passes."""

    def __init__(self, fail: bool = False) -> None:
        self.passes: list[int] = []
        self.fail = fail
        self._lock = threading.Lock()

    def __call__(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        with self._lock:
            self.passes.append(len(crops))
        if self.fail:
            raise BiometricError("the model failed on a batch")
        return np.array([[float(crop[0, 0, 0]), 1.0] for crop in crops], dtype=np.float32)


def crops(value: int, count: int = 2) -> list[NDArray[np.uint8]]:
    return [np.full((4, 4, 3), value + i, dtype=np.uint8) for i in range(count)]


class Capture(threading.Thread):
    """One capture's embedding step on its own thread (its locate already started)."""

    def __init__(self, batcher: EmbedBatcher, ticket: Locating, value: int, model: FakeModel):
        super().__init__()
        self.batcher, self.ticket, self.value, self.model = batcher, ticket, value, model
        self.rows: NDArray[np.float32] | None = None
        self.error: BaseException | None = None
        self.released = threading.Event()
        self.seconds = 0.0

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.rows = self.batcher.embed(
                self.ticket, crops(self.value), self.model, self.released.set
            )
        except BaseException as exc:
            self.error = exc
        self.seconds = time.monotonic() - started


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5.0
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_two_captures_in_flight_share_one_forward_pass_and_get_their_own_rows() -> None:
    batcher, model = EmbedBatcher(max_wait_seconds=5.0), FakeModel()
    first, second = batcher.locating(), batcher.locating()
    opener = Capture(batcher, first, 10, model)
    opener.start()
    wait_until(lambda: batcher.waiting == 1)
    joiner = Capture(batcher, second, 20, model)
    joiner.start()
    opener.join(5)
    joiner.join(5)
    assert model.passes == [4]
    assert opener.rows is not None
    assert joiner.rows is not None
    assert opener.rows[:, 0].tolist() == [10.0, 11.0]
    assert joiner.rows[:, 0].tolist() == [20.0, 21.0]
    # The joiner gave its worker back before waiting; the opener's worker ran the pass.
    assert joiner.released.is_set()
    assert not opener.released.is_set()
    # Not the 5 s bound: the opener stopped waiting when its only peer arrived.
    assert opener.seconds < 2.0
    stats = batcher.stats
    assert (stats.passes, stats.shared_passes, stats.captures, stats.faces) == (1, 1, 2, 4)


def test_a_lone_capture_does_not_wait() -> None:
    batcher, model = EmbedBatcher(max_wait_seconds=5.0), FakeModel()
    capture = Capture(batcher, batcher.locating(), 10, model)
    capture.start()
    capture.join(5)
    assert model.passes == [2]
    assert capture.seconds < 1.0
    assert not capture.released.is_set()
    assert batcher.stats.wait_seconds == 0.0


def test_the_wait_for_a_peer_still_locating_is_bounded() -> None:
    batcher, model = EmbedBatcher(max_wait_seconds=0.05), FakeModel()
    first, slow = batcher.locating(), batcher.locating()
    capture = Capture(batcher, first, 10, model)
    capture.start()
    capture.join(5)
    assert not capture.is_alive()
    assert model.passes == [2]
    assert 0.04 <= capture.seconds < 1.0
    # The slow peer arrives later, finds nobody locating and embeds alone.
    late = Capture(batcher, slow, 20, model)
    late.start()
    late.join(5)
    assert model.passes == [2, 2]
    assert late.rows is not None
    assert late.rows[:, 0].tolist() == [20.0, 21.0]


def test_a_peer_that_fails_before_its_embedding_stops_the_wait() -> None:
    batcher, model = EmbedBatcher(max_wait_seconds=5.0), FakeModel()
    first = batcher.locating()
    capture = Capture(batcher, first, 10, model)
    with batcher.locating():  # a peer whose detection raises (e.g. no face) leaves here
        capture.start()
        wait_until(lambda: batcher.waiting == 1)
    capture.join(5)
    assert not capture.is_alive()
    assert capture.seconds < 2.0
    assert model.passes == [2]


def test_a_model_failure_fails_every_member_with_its_own_error() -> None:
    batcher, model = EmbedBatcher(max_wait_seconds=5.0), FakeModel(fail=True)
    first, second = batcher.locating(), batcher.locating()
    opener = Capture(batcher, first, 10, model)
    opener.start()
    wait_until(lambda: batcher.waiting == 1)
    joiner = Capture(batcher, second, 20, model)
    joiner.start()
    opener.join(5)
    joiner.join(5)
    assert model.passes == [4]
    assert isinstance(opener.error, BiometricError)
    assert isinstance(joiner.error, BiometricError)
    assert opener.error is not joiner.error
    assert opener.rows is None
    assert joiner.rows is None


def test_a_full_batch_closes_and_the_next_capture_runs_its_own_pass() -> None:
    batcher, model = EmbedBatcher(max_wait_seconds=5.0, max_faces=4), FakeModel()
    first, second, third = batcher.locating(), batcher.locating(), batcher.locating()
    opener = Capture(batcher, first, 10, model)
    opener.start()
    wait_until(lambda: batcher.waiting == 1)
    joiner = Capture(batcher, second, 20, model)
    joiner.start()
    opener.join(5)
    joiner.join(5)
    # Full at 4 crops: the pass ran though a third capture was still locating.
    assert model.passes == [4]
    assert opener.seconds < 2.0
    last = Capture(batcher, third, 30, model)
    last.start()
    last.join(5)
    assert model.passes == [4, 2]
    assert last.rows is not None
    assert last.rows[:, 0].tolist() == [30.0, 31.0]


def test_batches_are_served_in_arrival_order() -> None:
    batcher, model = EmbedBatcher(max_wait_seconds=5.0), FakeModel()
    tickets = [batcher.locating() for _ in range(3)]
    captures = [Capture(batcher, ticket, 10 * (i + 1), model) for i, ticket in enumerate(tickets)]
    captures[0].start()
    wait_until(lambda: batcher.waiting == 1)
    captures[1].start()
    wait_until(lambda: batcher.waiting == 2)
    captures[2].start()
    for capture in captures:
        capture.join(5)
    assert model.passes == [6]
    for i, capture in enumerate(captures):
        assert capture.rows is not None
        assert capture.rows[:, 0].tolist() == [10.0 * (i + 1), 10.0 * (i + 1) + 1]


def test_a_batcher_needs_a_wait_and_room_for_two() -> None:
    with pytest.raises(BiometricError):
        EmbedBatcher(max_wait_seconds=0.0)
    with pytest.raises(BiometricError):
        EmbedBatcher(max_wait_seconds=0.004, max_faces=1)
