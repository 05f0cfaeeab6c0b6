"""The one way a service runs the face engine for a caller: :func:`for_caller`.

The engine decodes at most a few images at once (``biometrics.decode.DecodeSlots``) and
shares those slots fairly between their owners: a freed slot goes to the waiting owner that
holds the fewest. Work run for nobody shares a single owner, so an endpoint that forgot to
name its caller would queue every other such endpoint's callers behind one partner's largest
images (probe s9 D1: a gate key's 16 MP 1:1 photos held every carrier's 1:1 verifications
and every kiosk's guidance 10 s). Every engine call a use case makes for a principal (an API
key, a console account, a kiosk's device) runs inside ``with for_caller(principal):``;
``tests/unit/services/test_callers.py`` reads the services' source and fails on an engine
call outside one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from entryexit.biometrics.decode import slot_owner
from entryexit.domain.access import Principal


@contextlib.contextmanager
def for_caller(caller: Principal | None) -> Iterator[None]:
    """Engine work in this block takes ``caller``'s share of the decode slots (its key id;
    a kiosk's is its device id). ``None``: work for nobody (a command-line tool, a job)."""
    with slot_owner(caller.key_id if caller is not None else None):
        yield


__all__ = ["for_caller"]
