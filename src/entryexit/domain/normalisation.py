"""Attractor-aware 1:N scores and the related-travelers ambiguity rule. Pure numpy, no I/O.

**Score normalisation.** Some templates draw high scores from many strangers (the "wolves"
and "lambs" of the biometric menagerie: a face photographed in a common pose and light, a
fused two-photo reference near the centre of face space). A raw cosine threshold then
lets those entries take far more than their share of false matches. Normalisation measures
each template against a *cohort* of impostor templates (reference templates of persons other
than the one scored) and expresses a score in units of that template's own impostor spread:

- Z-norm: ``(s - mean_e) / std_e`` with the statistics of the enrolled entry ``e``;
- adaptive S-norm (AS-norm): the average of the entry's and the probe's Z-scores, each using
  the mean and standard deviation of only its ``top_k`` highest cohort scores (the part of
  the impostor distribution a threshold at a low false-match rate lives in).

The statistics of an enrolled entry can be computed once (at enrolment or staging, off the
gate's clock) and kept with it; a probe's cost one product with the cohort matrix. With too
small a cohort the statistics are noise: :func:`cohort_is_usable` says when to fall back to
raw scores (and to the raw threshold: normalised scores live on another scale and have their
own calibrated thresholds).

**Related travelers.** Siblings, twins and parents with children travel together and look
alike; when a capture's two best candidates are related (one booking, or the same surname and
date of birth: the pattern of twins), a confident answer is a coin toss between them, so the
capture is ambiguous and goes to an officer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# The fewest cohort templates whose top-k statistics are worth using; below it, raw scores.
MIN_COHORT = 200
# How many of a template's highest cohort scores describe its impostor tail.
DEFAULT_TOP_K = 100
# A floor on a cohort standard deviation (a degenerate cohort must not blow a score up).
MIN_STD = 1e-3


@dataclass(frozen=True, slots=True)
class CohortStatistics:
    """Mean and standard deviation of each template's ``top_k`` highest cohort scores
    (one row per template), and the size of the cohort they came from."""

    mean: NDArray[np.float64]
    std: NDArray[np.float64]
    cohort_size: int
    top_k: int

    def __post_init__(self) -> None:
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise ValueError("cohort statistics need one mean and one std per template")

    def __len__(self) -> int:
        return int(self.mean.size)

    def subset(self, rows: NDArray[np.integer] | Sequence[int]) -> CohortStatistics:
        index = np.asarray(rows, dtype=np.int64)
        return CohortStatistics(self.mean[index], self.std[index], self.cohort_size, self.top_k)


def cohort_is_usable(cohort_size: int, minimum: int = MIN_COHORT) -> bool:
    """Whether a cohort is large enough for normalised scores (else: raw scores)."""
    return cohort_size >= minimum


def top_k_statistics(
    cohort_scores: NDArray[np.floating],
    top_k: int = DEFAULT_TOP_K,
    excluded: NDArray[np.bool_] | None = None,
) -> CohortStatistics:
    """Statistics of each row of an N x C matrix of scores against C cohort templates.

    ``excluded`` (N x C) marks cohort templates that must not count for a row (the same
    person's own templates: a genuine score is not an impostor score). Every row needs at
    least ``top_k`` (at least 2) cohort scores left; fewer is an error, never a silent 0.
    """
    scores = np.atleast_2d(np.asarray(cohort_scores, dtype=np.float64))
    rows, cohort = scores.shape
    if top_k < 2:
        raise ValueError("top_k must be at least 2")
    if not np.all(np.isfinite(scores)):
        raise ValueError("cohort scores contain non-finite values")
    if excluded is not None:
        mask = np.asarray(excluded, dtype=bool)
        if mask.shape != scores.shape:
            raise ValueError("the exclusion mask must have the shape of the cohort scores")
        left = cohort - mask.sum(axis=1)
        scores = np.where(mask, -np.inf, scores)
    else:
        left = np.full(rows, cohort)
    if rows and int(left.min()) < top_k:
        raise ValueError(f"a template has {int(left.min())} cohort scores, fewer than {top_k}")
    if rows == 0:
        empty = np.empty(0, dtype=np.float64)
        return CohortStatistics(empty, empty.copy(), cohort, top_k)
    top = -np.partition(-scores, top_k - 1, axis=1)[:, :top_k]
    mean = top.mean(axis=1)
    std = np.maximum(top.std(axis=1), MIN_STD)
    return CohortStatistics(mean, std, cohort, top_k)


def cohort_statistics(
    templates: NDArray[np.floating],
    cohort: NDArray[np.floating],
    top_k: int = DEFAULT_TOP_K,
    excluded: NDArray[np.bool_] | None = None,
) -> CohortStatistics:
    """:func:`top_k_statistics` of unit-length ``templates`` (rows) against unit-length
    ``cohort`` templates (rows): what the service keeps with an enrolled template."""
    left = np.atleast_2d(np.asarray(templates, dtype=np.float32))
    right = np.atleast_2d(np.asarray(cohort, dtype=np.float32))
    if left.shape[1] != right.shape[1]:
        raise ValueError(f"cannot compare {left.shape[1]}-D with {right.shape[1]}-D templates")
    return top_k_statistics(left @ right.T, top_k, excluded)


def z_norm(raw: NDArray[np.floating], entries: CohortStatistics) -> NDArray[np.float64]:
    """Z-normalised scores of a P x E raw matrix (probes x enrolled entries)."""
    scores = np.atleast_2d(np.asarray(raw, dtype=np.float64))
    if scores.shape[1] != len(entries):
        raise ValueError("one set of cohort statistics per enrolled entry is needed")
    return np.asarray((scores - entries.mean) / entries.std, dtype=np.float64)


def s_norm(
    raw: NDArray[np.floating], entries: CohortStatistics, probes: CohortStatistics
) -> NDArray[np.float64]:
    """Symmetric (adaptive, with top-k statistics) S-norm of a P x E raw matrix: the mean of
    the entry-side and the probe-side Z-scores."""
    scores = np.atleast_2d(np.asarray(raw, dtype=np.float64))
    if scores.shape != (len(probes), len(entries)):
        raise ValueError("one set of cohort statistics per probe and per entry is needed")
    entry_side = (scores - entries.mean[np.newaxis, :]) / entries.std[np.newaxis, :]
    probe_side = (scores - probes.mean[:, np.newaxis]) / probes.std[:, np.newaxis]
    return np.asarray(0.5 * (entry_side + probe_side), dtype=np.float64)


# --- related travelers -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TravelerFacts:
    """What a manifest says about a gallery entry's traveler that can relate two entries.
    ``date_of_birth`` is ISO ``YYYY-MM-DD`` (partial dates such as ``1980-00-00`` never
    count as a shared birth date)."""

    booking_reference: str | None = None
    surname: str | None = None
    date_of_birth: str | None = None


def _key(value: str | None) -> str | None:
    if value is None:
        return None
    folded = " ".join(value.split()).casefold()
    return folded or None


def _full_date(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    parts = text.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    if int(parts[1]) == 0 or int(parts[2]) == 0:
        return None
    return text


def are_related(first: TravelerFacts, second: TravelerFacts) -> bool:
    """Two travelers are related when they share a booking reference, or a surname and a
    full date of birth (the pattern of twins). Missing facts never relate anyone."""
    booking = _key(first.booking_reference)
    if booking is not None and booking == _key(second.booking_reference):
        return True
    surname = _key(first.surname)
    birth = _full_date(first.date_of_birth)
    return (
        surname is not None
        and birth is not None
        and surname == _key(second.surname)
        and birth == _full_date(second.date_of_birth)
    )


def top_two(scores: NDArray[np.floating]) -> tuple[int, int] | None:
    """Indices of the highest and the second-highest score (None with fewer than two)."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    if values.size < 2:
        return None
    order = np.argsort(-values, kind="stable")[:2]
    return int(order[0]), int(order[1])


def related_ambiguity(
    scores: NDArray[np.floating],
    facts: Sequence[TravelerFacts],
    threshold: float,
    runner_up_floor: float | None = None,
) -> bool:
    """Whether one probe's decision must be ``ambiguous`` because its two best candidates
    are related travelers.

    Applies only where the top score reaches ``threshold`` (below it the answer is no match
    anyway). With ``runner_up_floor`` the runner-up must also reach that score (for example
    the threshold itself, so that only a relative who would have matched on their own makes
    the capture ambiguous); without it, any related runner-up does.
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    if values.size != len(facts):
        raise ValueError("one set of traveler facts per gallery entry is needed")
    best = top_two(values)
    if best is None:
        return False
    top, second = best
    if values[top] < threshold:
        return False
    if runner_up_floor is not None and values[second] < runner_up_floor:
        return False
    return are_related(facts[top], facts[second])
