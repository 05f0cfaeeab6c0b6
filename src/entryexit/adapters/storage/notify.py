"""Pushed news of shared state changed anywhere in the fleet: PostgreSQL ``LISTEN/NOTIFY``.

A writer that bumps a cache generation (``uow.generations.bump``) also says
``pg_notify('entryexit_changes', <name>)`` in the same transaction; PostgreSQL delivers it to
every listening session when, and only if, the transaction commits. One listener thread per
process holds its own connection (outside the pool), counts the news per name and hands out
tokens (:class:`~entryexit.services.ports.ChangeFeed`): a cache whose token has not moved has
not been changed by anyone, and skips the read of its generation.

While the listener is not connected every token is ``None`` (callers read the generation, as
on SQLite); each (re)connect starts a new epoch, so news missed meanwhile cannot be mistaken
for no news.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Engine

from entryexit.adapters.storage.repositories.captures import CHANGES_CHANNEL

logger = logging.getLogger(__name__)

CHANNEL = CHANGES_CHANNEL
# How long the listener waits for news before looking at its stop flag, and how long it waits
# before reconnecting after losing its connection.
POLL_SECONDS = 1.0
RECONNECT_SECONDS = 1.0
MAX_RECONNECT_SECONDS = 30.0


def conninfo(engine: Engine) -> str:
    """The engine's database as a libpq connection string (psycopg, not SQLAlchemy)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresChangeListener:
    def __init__(
        self, dsn: str, connect: Callable[[str], psycopg.Connection] | None = None
    ) -> None:
        self._dsn = dsn
        self._connect = connect or (lambda dsn: psycopg.connect(dsn, autocommit=True))
        self._lock = threading.Lock()
        self._epoch = 0
        self._connected = False
        self._counts: dict[str, int] = {}
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._connection: psycopg.Connection | None = None
        self._thread = threading.Thread(target=self._run, name="change-listener", daemon=True)

    def start(self, wait_seconds: float = 5.0) -> bool:
        """Start listening; ``True`` once the first LISTEN is in place (else it keeps trying
        in the background, and callers read generations meanwhile)."""
        self._thread.start()
        return self._listening.wait(wait_seconds)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=POLL_SECONDS * 3)

    def token(self, name: str) -> object | None:
        with self._lock:
            if not self._connected:
                return None
            return (self._epoch, self._counts.get(name, 0))

    def drop_connection(self) -> None:
        """Close the listening connection under the thread (tests: a lost connection)."""
        connection = self._connection
        if connection is not None:
            connection.close()

    def _run(self) -> None:
        failures = 0  # in a row, without a connection in between
        while not self._stop.is_set():
            try:
                with self._connect(self._dsn) as connection:
                    self._connection = connection
                    connection.execute(f"LISTEN {CHANNEL}")
                    with self._lock:
                        self._epoch += 1
                        self._connected = True
                    self._listening.set()
                    failures = 0
                    while not self._stop.is_set():
                        for notice in connection.notifies(timeout=POLL_SECONDS):
                            with self._lock:
                                self._counts[notice.payload] = (
                                    self._counts.get(notice.payload, 0) + 1
                                )
                        if connection.closed:
                            raise psycopg.OperationalError("the listening connection closed")
            except psycopg.errors.InvalidCatalogName:
                # The database itself is gone (dropped): nothing to follow any more.
                logger.error("change listener stopped: the database no longer exists")
                self._stop.set()
            except Exception as exc:  # reconnect; meanwhile callers read generations
                if not self._stop.is_set():
                    logger.log(
                        logging.WARNING if failures == 0 else logging.DEBUG,
                        "change listener disconnected (%s); reconnecting",
                        type(exc).__name__,
                    )
                failures += 1
            finally:
                self._connection = None
                with self._lock:
                    self._connected = False
            # Back off while the server stays away (1, 2, 4 ... 30 s); caches read meanwhile.
            delay = RECONNECT_SECONDS * 2 ** min(max(failures - 1, 0), 5)
            self._stop.wait(min(delay, MAX_RECONNECT_SECONDS))
