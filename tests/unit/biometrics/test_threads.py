"""The OpenCV thread policy: every core for a lone model run, one thread each beyond that."""

from __future__ import annotations

import itertools
import threading

from entryexit.biometrics.threads import ThreadPolicy


def test_a_lone_run_has_every_thread_and_concurrent_runs_one_each() -> None:
    applied: list[int] = []
    policy = ThreadPolicy(2, applied.append)
    assert applied == [2]
    policy.started()
    assert applied == [2]
    policy.started()
    assert applied == [2, 1]
    policy.started()
    assert applied == [2, 1]
    policy.finished()
    policy.finished()
    assert applied == [2, 1, 2]
    policy.finished()
    assert applied == [2, 1, 2]
    assert policy.running == 0
    assert policy.changes == 3


def test_the_count_is_set_only_when_it_changes_and_never_below_zero_runs() -> None:
    applied: list[int] = []
    policy = ThreadPolicy(4, applied.append)
    policy.finished()
    assert policy.running == 0
    policy.started()
    policy.finished()
    assert applied == [4]


def test_concurrent_starts_and_ends_leave_the_last_count_right() -> None:
    applied: list[int] = []
    policy = ThreadPolicy(2, applied.append)
    start = threading.Barrier(8)

    def run() -> None:
        start.wait()
        for _ in range(500):
            policy.started()
            policy.finished()

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert policy.running == 0
    assert applied[-1] == 2
    # Each change is a real change: the count alternates, never set twice in a row.
    assert all(a != b for a, b in itertools.pairwise(applied))
