"""Manifest worker processes: a manifest is read, validated, sealed and written into its
staging version in a process of its own, so that none of that work shares the serving
process's interpreter lock (and so its CPU) with the gates' captures.

A 10,000-traveler upload costs about 3 s of CPU in Python (parsing 0.25-0.6 s, sealing about
0.5 s, the rest building and running the batches' inserts): in the serving process each of
those seconds is taken from the gates in 5 ms slices of the interpreter lock. Here the
serving process only hands over the raw bytes and waits on a pipe; the worker writes the
batches through its own connection (short transactions, as before) and answers with the
count, and the serving process swaps the version in with its audit event.

The pool is small and bounded (``workers`` processes, started with the first upload, kept,
stopped with the service): an upload that finds every worker busy waits ``queue_wait``
seconds, then is refused with 503 and ``Retry-After``. Each carrier has at most one upload
in progress or waiting: another of its uploads meanwhile is refused at once (503,
``Retry-After``), so one carrier's stream of large manifests cannot fill the queue in front
of another carrier's upload. A worker that dies or runs past
``timeout`` is killed and replaced, the upload is refused with 503, and its staging rows are
dropped by the service: the manifest in force does not change.

Keys: the worker gets them the way the serving process did (the key directory's path, or
the environment it inherits), or, for a key provider that lives only in memory (development
mode, tests), a copy of it over the pipe: never through a file, never in a log.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from entryexit.adapters.crypto.keys import EnvironmentKeyProvider, FileKeyProvider
from entryexit.errors import EntryExitError, WorkerUnavailableError
from entryexit.services.flights import ManifestUpload, StagedManifest, stage_manifest
from entryexit.services.ports import KeyProvider

logger = logging.getLogger(__name__)
# Parsing and writing a 10,000-traveler manifest takes 5-30 s on a busy 2-core machine.
DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_QUEUE_WAIT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class KeySource:
    """How a worker obtains the service's keys: ``directory`` (it reads the key files
    itself), ``environment`` (it inherits ENTRYEXIT_KEK and the others), or ``provider`` (an
    in-memory provider, copied)."""

    directory: Path | None = None
    environment: bool = False
    provider: KeyProvider | None = None

    @classmethod
    def of(cls, keys: KeyProvider) -> KeySource:
        if isinstance(keys, FileKeyProvider):
            return cls(directory=keys.directory)
        if isinstance(keys, EnvironmentKeyProvider):
            return cls(environment=True)
        return cls(provider=keys)

    def open(self) -> KeyProvider:
        if self.directory is not None:
            return FileKeyProvider(self.directory)
        if self.environment:
            return EnvironmentKeyProvider(dict(os.environ))
        if self.provider is None:
            raise WorkerUnavailableError("the manifest worker has no keys", retry_after=1)
        return self.provider


# What a worker answers for one upload.
_STAGED, _REFUSED, _FAILED = "staged", "refused", "failed"


def _serve(connection: Connection, database_url: str, keys: KeySource, pause: float) -> None:
    """A worker's life: open the database, then stage each upload it is sent until the pipe
    closes. An EntryExitError (an invalid row, say) is sent back as it is, to be raised in
    the serving process with its own status and message; anything else is named only by its
    type (a message could quote the manifest)."""
    from entryexit.adapters.storage.database import create_database_engine
    from entryexit.adapters.storage.unit_of_work import SqlUnitOfWorkFactory

    engine = create_database_engine(database_url)
    factory = SqlUnitOfWorkFactory(engine, keys.open())
    # The cyclic garbage collector runs between batches, not inside one: a collection in a
    # batch's transaction doubled its worst time holding the write lock that gates wait for
    # (batches of 100: 81 -> 32 ms CPU at worst). This process does nothing else.
    gc.freeze()
    gc.disable()

    def collect_then_sleep(seconds: float) -> None:
        gc.collect()
        time.sleep(seconds)

    try:
        while True:
            try:
                upload: ManifestUpload = connection.recv()
            except EOFError:
                return
            try:
                staged = stage_manifest(factory, upload, pause=pause, sleep=collect_then_sleep)
                answer: tuple[str, Any] = (_STAGED, staged)
            except EntryExitError as exc:
                answer = (_REFUSED, exc)
            except Exception as exc:  # reported by type: the serving process raises it (a 500)
                answer = (_FAILED, type(exc).__name__)
            connection.send(answer)
            gc.collect()
    finally:
        engine.dispose()


class _Worker:
    def __init__(self, start: Callable[[], tuple[BaseProcess, Connection]]) -> None:
        self._start = start
        self.process, self.connection = start()

    def restart(self) -> None:
        self.stop(grace=0)
        self.process, self.connection = self._start()

    def stop(self, grace: float = 5.0) -> None:
        self.connection.close()  # the worker's recv ends: it returns
        self.process.join(grace)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class ManifestWorkers:
    """A bounded pool of manifest worker processes (a :class:`ManifestStager`)."""

    def __init__(
        self,
        database_url: str,
        keys: KeySource,
        workers: int = 1,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        queue_wait: float = DEFAULT_QUEUE_WAIT_SECONDS,
        pause: float | None = None,
    ) -> None:
        from entryexit.services.flights import MANIFEST_PAUSE_SECONDS

        self._database_url = database_url
        self._keys = keys
        self._size = max(1, workers)
        self._timeout = timeout
        self._queue_wait = queue_wait
        self._pause = MANIFEST_PAUSE_SECONDS if pause is None else pause
        self._context = multiprocessing.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        # The carriers with an upload in progress or waiting for a worker (one each).
        self._carriers: set[str] = set()
        self._carriers_lock = threading.Lock()

    def _spawn(self) -> tuple[BaseProcess, Connection]:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(theirs, self._database_url, self._keys, self._pause),
            name="entryexit-manifest-worker",
            daemon=True,
        )
        process.start()
        theirs.close()
        return process, ours

    def start(self) -> None:
        """Start the worker processes (once; the first upload does it if nobody did)."""
        with self._lock:
            while len(self._all) < self._size:
                worker = _Worker(self._spawn)
                self._all.append(worker)
                self._idle.put(worker)

    def stop(self) -> None:
        """Stop the worker processes (an upload after this starts new ones)."""
        with self._lock:
            workers, self._all = self._all, []
            self._idle = queue.Queue()
        for worker in workers:
            worker.stop()

    def pids(self) -> list[int]:
        """The worker processes' ids (tests show the work is not done in the server)."""
        return [w.process.pid for w in self._all if w.process.pid is not None]

    def stage(self, upload: ManifestUpload) -> StagedManifest:
        self.start()
        with self._carriers_lock:
            if upload.carrier in self._carriers:
                raise WorkerUnavailableError(
                    "another manifest upload of this carrier is being processed; send this one"
                    " when it is done (nothing was changed)",
                    retry_after=max(1.0, self._queue_wait),
                )
            self._carriers.add(upload.carrier)
        try:
            return self._stage(upload)
        finally:
            with self._carriers_lock:
                self._carriers.discard(upload.carrier)

    def _stage(self, upload: ManifestUpload) -> StagedManifest:
        try:
            worker = self._idle.get(timeout=self._queue_wait)
        except queue.Empty:
            raise WorkerUnavailableError(
                f"{self._size} manifest upload(s) are being processed; send this one again"
                " shortly (nothing was changed)",
                retry_after=max(1.0, self._queue_wait),
            ) from None
        try:
            return self._run(worker, upload)
        finally:
            with self._lock:
                if worker in self._all:  # not if the pool was stopped meanwhile
                    self._idle.put(worker)

    def _run(self, worker: _Worker, upload: ManifestUpload) -> StagedManifest:
        try:
            worker.connection.send(upload)
            if not worker.connection.poll(self._timeout):
                logger.error("manifest worker ran past %g s: stopped", self._timeout)
                worker.restart()
                raise WorkerUnavailableError(
                    f"the manifest was not processed within {self._timeout:g} s; nothing was"
                    " changed, send it again",
                    retry_after=5,
                )
            kind, value = worker.connection.recv()
        except (EOFError, OSError):
            if worker in self._all:  # else the pool was stopped: no replacement
                logger.error(
                    "manifest worker stopped (exit code %s): replaced", worker.process.exitcode
                )
                worker.restart()
            raise WorkerUnavailableError(
                "the manifest worker stopped; nothing was changed, send the manifest again",
                retry_after=1,
            ) from None
        if kind == _STAGED:
            staged: StagedManifest = value
            return staged
        if kind == _REFUSED:
            raise value
        raise RuntimeError(f"the manifest worker failed with {value}")
