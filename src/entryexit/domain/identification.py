"""The 1:N decision rule for a gate capture against a flight's staged gallery. Pure numpy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    and goes to an officer rather than to a coin toss.

    ``thresholds_by_references[r - 1]``, where given, replaces ``threshold`` for an entry
    fused from r reference photos: an entry's impostor scores rise with the photos it fuses
    (the mean of several photos sits nearer the person's centre, and so nearer their
    look-alikes), so one threshold cannot hold the target for both. An entry with more
    references than the tuple covers, or of unknown count, is held to ``threshold``, which
    the calibration makes the strictest of them. The count is a property of the enrolment,
    never of the traveler: no demographic attribute chooses a threshold.
    """

    threshold: float
    ambiguity_margin: float
    thresholds_by_references: tuple[float, ...] = ()

    def threshold_for(self, references: int | None) -> float:
        """The threshold an entry fused from ``references`` photos must reach."""
        if references is None or not 1 <= references <= len(self.thresholds_by_references):
            return self.threshold
        return self.thresholds_by_references[references - 1]


@dataclass(frozen=True, slots=True)
class Identification:
    index: int | None
    score: float | None
    runner_up_score: float | None
    reason: NoMatchReason | None
    # The threshold the top candidate was held to (its reference count's).
    threshold: float | None = None

    @property
    def matched(self) -> bool:
        return self.index is not None


def identify(
    scores: NDArray[np.floating],
    rule: IdentificationRule,
    related: Callable[[int, int], bool] | None = None,
    reference_counts: Sequence[int] | None = None,
) -> Identification:
    """Decide on one probe's similarity to every gallery entry (one traveler per entry).

    ``related(i, j)`` says whether entries i and j are related travelers (one booking, or
    twins): when the runner-up reaches the threshold too and is related to the top
    candidate, the capture is ambiguous whatever the margin, because a sibling who would
    match on their own is exactly the confident wrong match an officer must settle. (A
    related runner-up below the threshold is not: on simulated flights that variant sent a
    fifth of all right matches to officers and stopped no wrong one; docs/operating-point.md.)

    ``reference_counts[i]`` is how many reference photos entry i fuses: the top candidate
    must reach the threshold of its own count (``IdentificationRule.threshold_for``), and a
    related runner-up counts when it reaches its own. The candidates are ranked by raw score
    either way; a threshold never reorders them.
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

    def threshold_of(index: int) -> float:
        if reference_counts is None:
            return rule.threshold
        return rule.threshold_for(int(reference_counts[index]))

    threshold = threshold_of(top_index)
    if top < threshold:
        return Identification(None, top, runner_up, NoMatchReason.BELOW_THRESHOLD, threshold)
    if runner_up is not None and top - runner_up < rule.ambiguity_margin:
        return Identification(None, top, runner_up, NoMatchReason.AMBIGUOUS, threshold)
    if (
        related is not None
        and runner_up is not None
        and runner_up >= threshold_of(second_index)
        and related(top_index, second_index)
    ):
        return Identification(None, top, runner_up, NoMatchReason.AMBIGUOUS, threshold)
    return Identification(top_index, top, runner_up, None, threshold)
