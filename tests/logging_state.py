"""Process-wide logging state that code under test may change (``configure_logging``, which
``entryexit serve`` calls before it checks anything else), and its restoration."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

# The loggers configure_logging touches: the root (handler and level) and uvicorn's.
CONFIGURED_LOGGERS = ("", "sqlalchemy.engine", "uvicorn", "uvicorn.error", "uvicorn.access")


@contextmanager
def logging_restored() -> Iterator[None]:
    """Put every configured logger's handlers, level, propagation and on/off state back as
    they were, so that nothing a test's code configured outlives the test (a handler left
    on the root logger writes to that test's captured stream after it is closed)."""
    saved = {
        name: (list(lg.handlers), lg.level, lg.propagate, lg.disabled)
        for name in CONFIGURED_LOGGERS
        for lg in [logging.getLogger(name)]
    }
    try:
        yield
    finally:
        for name, (handlers, level, propagate, disabled) in saved.items():
            target = logging.getLogger(name)
            for handler in list(target.handlers):
                target.removeHandler(handler)
            for handler in handlers:
                target.addHandler(handler)
            target.setLevel(level)
            target.propagate, target.disabled = propagate, disabled


def handlers_on_closed_streams() -> list[logging.Handler]:
    """Handlers that can only fail ("--- Logging error --- I/O operation on closed file")."""
    return [
        handler
        for name in CONFIGURED_LOGGERS
        for handler in logging.getLogger(name).handlers
        if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, "closed", False)
    ]
