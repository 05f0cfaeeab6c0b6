"""The 1:N decision rule for a gate capture against a flight's staged gallery. Pure numpy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray


class NoMatchReason(StrEnum):
    BELOW_THRESHOLD = "below_threshold"
    AMBIGUOUS = "ambiguous"
    EMPTY_GALLERY = "empty_gallery"


@dataclass(frozen=True, slots=True)
class IdentificationRule:
    """``threshold``: the top score must reach it. ``ambiguity_margin``: if the runner-up
    (another traveler) lies within this margin of the top score, the capture is ambiguous
    and goes to an officer rather than to a coin toss."""

    threshold: float
    ambiguity_margin: float


@dataclass(frozen=True, slots=True)
class Identification:
    index: int | None
    score: float | None
    runner_up_score: float | None
    reason: NoMatchReason | None

    @property
    def matched(self) -> bool:
        return self.index is not None


def identify(
    scores: NDArray[np.floating],
    rule: IdentificationRule,
    related: Callable[[int, int], bool] | None = None,
) -> Identification:
    """Decide on one probe's similarity to every gallery entry (one traveler per entry).

    ``related(i, j)`` says whether entries i and j are related travelers (one booking, or
    twins): when the runner-up reaches the threshold too and is related to the top
    candidate, the capture is ambiguous whatever the margin, because a sibling who would
    match on their own is exactly the confident wrong match an officer must settle. (A
    related runner-up below the threshold is not: on simulated flights that variant sent a
    fifth of all right matches to officers and stopped no wrong one; docs/operating-point.md.)
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    if values.size == 0:
        return Identification(None, None, None, NoMatchReason.EMPTY_GALLERY)
    if values.size == 1:
        top_index, second_index, runner_up = 0, 0, None
    else:
        top_two = np.argpartition(values, -2)[-2:]
        top_index, second_index = (
            (int(top_two[1]), int(top_two[0]))
            if values[top_two[1]] >= values[top_two[0]]
            else (int(top_two[0]), int(top_two[1]))
        )
        runner_up = float(values[second_index])
    top = float(values[top_index])
    if top < rule.threshold:
        return Identification(None, top, runner_up, NoMatchReason.BELOW_THRESHOLD)
    if runner_up is not None and top - runner_up < rule.ambiguity_margin:
        return Identification(None, top, runner_up, NoMatchReason.AMBIGUOUS)
    if (
        related is not None
        and runner_up is not None
        and runner_up >= rule.threshold
        and related(top_index, second_index)
    ):
        return Identification(None, top, runner_up, NoMatchReason.AMBIGUOUS)
    return Identification(top_index, top, runner_up, None)
