# mypy: disable-error-code="unreachable"
# (mypy keeps an attribute narrowed by an assert across the call that changes it.)
"""The drain on SIGTERM: /readyz fails first, the server stops only after the drain, a second
signal (or SIGINT) stops it at once; and the process exits normally instead of dying of the
signal as uvicorn would have it."""

from __future__ import annotations

import gc
import signal
import time

import uvicorn
from fastapi import FastAPI

from entryexit.cli.serve import draining_server, freeze_startup_heap


def server(drain_seconds: float) -> tuple[uvicorn.Server, FastAPI]:
    app = FastAPI()
    return draining_server(uvicorn.Config(app), app, drain_seconds), app


def test_sigterm_marks_the_app_draining_and_stops_the_server_after_the_drain() -> None:
    stopping, app = server(0.3)
    stopping.handle_exit(signal.SIGTERM, None)
    assert app.state.draining is True
    assert stopping.should_exit is False  # still answering while the balancer moves away
    time.sleep(0.6)
    assert stopping.should_exit is True
    # Not recorded for uvicorn to re-raise after its shutdown: the process exits 0.
    assert stopping._captured_signals == []


def test_a_second_sigterm_or_a_sigint_stops_at_once() -> None:
    stopping, _ = server(60)
    stopping.handle_exit(signal.SIGTERM, None)
    stopping.handle_exit(signal.SIGTERM, None)
    assert stopping.should_exit is True
    interrupted, app = server(60)
    interrupted.handle_exit(signal.SIGINT, None)
    assert interrupted.should_exit is True
    assert getattr(app.state, "draining", False) is False


def test_without_a_drain_sigterm_stops_at_once() -> None:
    stopping, app = server(0)
    stopping.handle_exit(signal.SIGTERM, None)
    assert stopping.should_exit is True
    assert getattr(app.state, "draining", False) is False


def test_the_startup_heap_is_frozen_so_full_collections_skip_it() -> None:
    built_at_startup = [{"model": index} for index in range(10_000)]
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() >= len(built_at_startup)
        # A full collection no longer sees them.
        gc.collect()
        assert not any(item is built_at_startup[0] for item in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()
