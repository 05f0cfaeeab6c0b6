"""OpenCV's thread count, chosen by how many model runs are in progress.

OpenCV's thread count is one setting for the whole process, and its thread pool runs one
parallel loop at a time: while one capture's layer is spread over the cores, a second
capture's layer runs serially on its own thread. Two concurrent captures on a two-core machine
so keep three threads busy, and the one that got the pool waits at each layer's end for its
slower half. A lone capture should use every core (its forward pass is shorter); concurrent
captures should use one each (no oversubscription, no barrier waits). This policy switches
between the two as model runs start and end (benchmarks/RESULTS.md, issue 17, session 10).

Changing the count while another thread is inside a parallel loop is safe with the pthreads
backend that the ``opencv-python`` wheels use: the count is read when a loop starts, and the
pool's threads are only stopped when no loop is running.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class ThreadPolicy:
    """``alone`` threads while at most one model run is in progress, one each beyond that.

    ``set_threads`` applies a count (``cv2.setNumThreads`` in the service); it is called only
    when the wanted count changes, under this policy's lock, so two changes never cross.
    """

    def __init__(self, alone: int, set_threads: Callable[[int], None]) -> None:
        self._alone = alone
        self._set_threads = set_threads
        self._lock = threading.Lock()
        self._running = 0
        self._applied: int | None = None
        self._changes = 0
        with self._lock:
            self._apply()

    @property
    def running(self) -> int:
        return self._running

    @property
    def changes(self) -> int:
        """How many times the count was changed (the first setting included)."""
        return self._changes

    def started(self) -> None:
        with self._lock:
            self._running += 1
            self._apply()

    def finished(self) -> None:
        with self._lock:
            self._running = max(0, self._running - 1)
            self._apply()

    def _apply(self) -> None:
        wanted = self._alone if self._running <= 1 else 1
        if wanted != self._applied:
            self._set_threads(wanted)
            self._applied = wanted
            self._changes += 1
