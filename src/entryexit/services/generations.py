"""Is a per-process copy of shared state still current? (the policies, the watchlist)

A copy is stamped with the generation it was read under (``uow.generations``, bumped by every
writer in its transaction) and, where the store pushes news of changes (PostgreSQL ``NOTIFY``,
a :class:`~entryexit.services.ports.ChangeFeed`), with the feed's token for it. A copy whose
token has not moved is current without any read; otherwise the generation is read (one row)
and compared. The token is taken *before* the generation is read, so a change committed after
the read moves the token later and is never missed.
"""

from __future__ import annotations

from dataclasses import dataclass

from entryexit.services.ports import ChangeFeed
from entryexit.services.unit_of_work import UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class Stamp:
    generation: int
    token: object | None


class GenerationCheck:
    def __init__(self, uow: UnitOfWorkFactory, name: str, feed: ChangeFeed | None = None) -> None:
        self._uow = uow
        self._name = name
        self._feed = feed

    @property
    def pushed(self) -> bool:
        """Whether news is pushed now (a listener connected): no read is needed to trust a
        copy whose token has not moved."""
        return self._feed is not None and self._feed.token(self._name) is not None

    def check(self, stamp: Stamp | None, within: UnitOfWork | None = None) -> tuple[bool, Stamp]:
        """``(True, stamp)`` if the copy stamped ``stamp`` is current; else ``(False, new)``:
        read the state after this call and stamp the copy with ``new``. ``within``: read the
        generation in the caller's (read) unit of work instead of a transaction of its own."""
        token = self._feed.token(self._name) if self._feed is not None else None
        if stamp is not None and token is not None and stamp.token == token:
            return True, stamp
        if within is not None:
            generation = within.generations.current(self._name)
        else:
            with self._uow(read_only=True) as uow:
                generation = uow.generations.current(self._name)
        fresh = Stamp(generation, token)
        return stamp is not None and stamp.generation == generation, fresh
