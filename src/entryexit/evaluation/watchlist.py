"""Watchlist thresholds by list size, from the per-comparison false-match tail.

A search of one probe against N unrelated entries raises a false alert when any of the N
comparisons reaches the threshold. With a per-comparison false-match rate FMR(t) and
independent comparisons, FPIR(t, N) = 1 - (1 - FMR(t))^N, so the threshold for a target FPIR
is the one whose FMR is 1 - (1 - FPIR)^(1/N) (about FPIR / N). Comparisons of one probe are
not independent (a probe that looks like many people does so against every entry); by
Jensen's inequality that makes the formula *over*-state FPIR for a given mean FMR, so the
thresholds it gives err strict. Below the empirical resolution of the impostor pairs (a few
errors), the tail is extrapolated with a generalised Pareto distribution fitted to the
exceedances over a high quantile (probability-weighted moments, Hosking and Wallis 1987),
and its uncertainty is measured by resampling persons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from entryexit.errors import DatasetError


def fpir_from_fmr(fmr: float | NDArray[np.floating], entries: int) -> NDArray[np.float64]:
    """1 - (1 - FMR)^N, computed without loss of precision for tiny FMR."""
    rate = np.asarray(fmr, dtype=np.float64)
    return np.asarray(-np.expm1(entries * np.log1p(-rate)), dtype=np.float64)


def fmr_for_fpir(fpir: float, entries: int) -> float:
    """The per-comparison FMR that gives ``fpir`` per search of ``entries`` entries."""
    if not 0 < fpir < 1 or entries < 1:
        raise DatasetError("an FPIR in (0, 1) and at least one entry are needed")
    return float(-np.expm1(np.log1p(-fpir) / entries))


@dataclass(frozen=True, slots=True)
class ParetoTail:
    """P(score >= t) = rate_above_u * (1 - shape * (t - u) / scale) ** (1 / shape) for t >= u
    (Hosking-Wallis parameterisation; shape > 0 is a tail bounded at u + scale / shape)."""

    u: float
    rate_above_u: float
    shape: float
    scale: float
    exceedances: int

    def fmr(self, threshold: float) -> float:
        if threshold <= self.u:
            raise DatasetError("the tail model holds only above its threshold u")
        y = threshold - self.u
        if abs(self.shape) < 1e-9:
            return float(self.rate_above_u * np.exp(-y / self.scale))
        base = 1.0 - self.shape * y / self.scale
        if base <= 0:
            return 0.0
        return float(self.rate_above_u * base ** (1.0 / self.shape))

    def threshold(self, fmr: float) -> float:
        """The score whose modelled FMR is ``fmr`` (``fmr`` below ``rate_above_u``)."""
        if not 0 < fmr < self.rate_above_u:
            raise DatasetError("the tail model answers only for rates below its threshold's")
        ratio = fmr / self.rate_above_u
        if abs(self.shape) < 1e-9:
            return float(self.u - self.scale * np.log(ratio))
        return float(self.u + self.scale / self.shape * (1.0 - ratio**self.shape))


def fit_pareto_tail(
    impostor: NDArray[np.floating],
    tail_fraction: float = 1e-3,
    weights: NDArray[np.floating] | None = None,
    descending: bool = False,
) -> ParetoTail:
    """Fit the tail above the ``1 - tail_fraction`` quantile of the impostor scores (with
    optional bootstrap weights) by probability-weighted moments. ``descending``: the scores
    (and weights) are already sorted from the highest down (saves a sort per replicate)."""
    scores = np.asarray(impostor, dtype=np.float64)
    weight = np.ones_like(scores) if weights is None else np.asarray(weights, dtype=np.float64)
    if not descending:
        order = np.argsort(-scores, kind="stable")
        scores, weight = scores[order], weight[order]
    total = weight.sum()
    cumulative = np.cumsum(weight)
    cut = int(np.searchsorted(cumulative, tail_fraction * total))
    if cut < 20:
        raise DatasetError("too few impostor scores in the tail to fit it")
    u = float(scores[cut])
    above = scores[:cut] - u
    w = weight[:cut]
    keep = w > 0
    above, w = above[keep][::-1], w[keep][::-1]  # ascending
    position = (np.cumsum(w) - 0.35 * w) / w.sum()  # weighted plotting positions
    a0 = float(np.average(above, weights=w))
    a1 = float(np.average((1.0 - position) * above, weights=w))
    shape = a0 / (a0 - 2.0 * a1) - 2.0
    scale = 2.0 * a0 * a1 / (a0 - 2.0 * a1)
    return ParetoTail(u, float(w.sum() / total), shape, scale, int(keep.sum()))


@dataclass(frozen=True, slots=True)
class Band:
    max_entries: int
    target_fpir: float
    fmr: float
    threshold: float
    low: float
    high: float
    empirical_threshold: float | None
    empirical_errors: int


def empirical_threshold(
    impostor: NDArray[np.floating], fmr: float, minimum_errors: int = 10
) -> float | None:
    """The score above which a share ``fmr`` of impostor scores lie, where that is at least
    ``minimum_errors`` scores (else None: beyond the data's resolution)."""
    scores = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    allowed = int(np.floor(fmr * scores.size))
    if allowed < minimum_errors:
        return None
    return float(np.nextafter(scores[allowed], np.inf))


def watchlist_bands(
    impostor: NDArray[np.floating],
    probe_person: NDArray[np.int64],
    entry_person: NDArray[np.int64],
    sizes: tuple[int, ...],
    target_fpir: float,
    rng: np.random.Generator,
    tail_fraction: float = 1e-3,
    resamples: int = 200,
) -> list[Band]:
    """Per list size: the modelled threshold for ``target_fpir`` and its 95% interval over a
    person-level Poisson bootstrap, with the empirical threshold where the data reach it."""
    order = np.argsort(-np.asarray(impostor, dtype=np.float64), kind="stable")
    scores = np.asarray(impostor, dtype=np.float64)[order]
    probes, entries = np.asarray(probe_person)[order], np.asarray(entry_person)[order]
    tail = fit_pareto_tail(scores, tail_fraction, descending=True)
    persons = int(max(probes.max(), entries.max())) + 1
    replicates = []
    for _ in range(resamples):
        person_weight = rng.poisson(1.0, size=persons).astype(np.float64)
        weight = person_weight[probes] * person_weight[entries]
        replicates.append(fit_pareto_tail(scores, tail_fraction, weight, descending=True))
    bands = []
    for size in sizes:
        fmr = fmr_for_fpir(target_fpir, size)
        empirical = empirical_threshold(scores, fmr)  # sorts again; once per band
        if fmr >= tail.rate_above_u:
            # Inside the body of the distribution: the data answer directly.
            point = empirical if empirical is not None else tail.u
            low = high = point
        else:
            point = tail.threshold(fmr)
            values = np.array([r.threshold(fmr) for r in replicates if fmr < r.rate_above_u])
            low, high = (float(v) for v in np.percentile(values, [2.5, 97.5]))
        errors = int(np.count_nonzero(scores >= point))
        bands.append(Band(size, target_fpir, fmr, point, low, high, empirical, errors))
    return bands
