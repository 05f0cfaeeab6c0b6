"""A capture arriving while the service shuts down (review L14): the pool that runs the
capture's read beside the model may be shut down between the capture taking it and giving it
the read. The capture must then be answered as any refusal is (503, or decided as usual),
never with an unexpected error (``RuntimeError: cannot schedule new futures after shutdown``,
a 500)."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from entryexit.domain.model import Decision
from entryexit.errors import WorkerUnavailableError
from entryexit.services import captures
from tests.unit.services.world import GATE, World, traveler


class ClosedWhileSubmitting(ThreadPoolExecutor):
    """The read pool, with a shutdown let in just as a capture gives it the read: ``submit``
    waits (bounded) for the service's ``close()`` to finish on another thread. A capture that
    holds off the shutdown until its read is given (the fix: submit under the lock) makes
    that wait run out, and carries on."""

    closing = threading.Event()
    closed = threading.Event()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        type(self).closing.set()
        type(self).closed.wait(timeout=2.0)
        return super().submit(fn, *args, **kwargs)


def test_a_capture_racing_the_shutdown_is_refused_busy_or_decided_never_a_500(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()
    flight = world.boarding(travelers=[traveler("P1")], seeds={"P1": 1})
    service = world.captures
    first = service.process(GATE, flight.id, b"face:1", "G1", "cam")  # the carrier remembered
    assert first.decision is Decision.MATCH
    monkeypatch.setattr(captures, "ThreadPoolExecutor", ClosedWhileSubmitting)
    ClosedWhileSubmitting.closing.clear()
    ClosedWhileSubmitting.closed.clear()

    def shut_down() -> None:
        if ClosedWhileSubmitting.closing.wait(timeout=10.0):
            service.close()
            ClosedWhileSubmitting.closed.set()

    stopping = threading.Thread(target=shut_down)
    stopping.start()
    try:
        outcome = service.submit_burst(
            lambda _uow: (GATE, None),
            flight.id,
            [b"face:1"],
            "G1",
            "cam",
            early=lambda: GATE,
        )[1]
        assert outcome.decision is Decision.MATCH
    except WorkerUnavailableError:
        pass  # refused busy, with a time to retry: as good an answer at shutdown
    finally:
        ClosedWhileSubmitting.closed.set()
        stopping.join(timeout=10.0)
    # The path under test was taken: the read was given to the pool.
    assert ClosedWhileSubmitting.closing.is_set()
